"""One meeting walked from `imier init` to the verdict, as the README shows it;
exported and imported into a second home, which then computes the same status."""

from __future__ import annotations

import pytest

from .cli_helpers import Imier

T0 = 1_800_000_000_000  # a fixed clock (IMIER_NOW), so the walk needs no sleeping
S = 1000


@pytest.fixture
def north(tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    n.now = T0
    n("init", "--name", "north-laptop")
    for name in ("ana", "ben", "cid"):
        n("key", "new", name)
    return n


def test_meeting_walk(north, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = north
    body = n("body", "found", "community", "North", "--charter", "discussion=5s",
             "--charter", "vote_window=60s", "--charter", "amendment_window=60s",
             "--charter", "contention_window=60s", as_="ana").out.strip()
    n.now += S
    n("member", "admit", "North", "ben", as_="ana")
    n("member", "admit", "North", "cid", as_="ana")
    n.now += S
    prop = n("propose", "North", "--title", "Tool library", "--text", "We open a tool library.",
             as_="ana").out.strip()
    assert len(prop) == 64 and len(body) == 64

    # still in discussion: a vote is refused, with the reason, and nothing is written
    before = n.store_digest()
    r = n("vote", prop, "yes", as_="ana", ok=False)
    assert r.code == 1 and "discussion" in r.err
    assert n.store_digest() == before

    n.now += 6 * S  # round 1 opens
    n("vote", prop[:10], "yes", as_="ana")
    n("vote", prop, "yes", as_="ben")
    n("vote", prop, "yes", as_="cid")
    mid = n("status", prop, "--json").json()
    assert mid["state"] == "round1" and mid["id"] == prop and mid["title"] == "Tool library"

    final = n("status", prop, "--as-of", "+3m", "--json").json()
    assert final["state"] == "carried" and final["decided_round"] == 1
    r1 = final["rounds"][0]
    assert r1["passed"] is True
    north_round = r1["bodies"]["North"]
    assert (north_round["yes"], north_round["no"], north_round["eligible"]) == (3, 0, 3)
    human = n("status", prop, "--as-of", "+3m").out
    assert "carried" in human.lower()

    # carry it to another laptop on a USB stick
    bundle = tmp_path / "north.bundle"
    n("export", str(bundle))
    south = Imier(tmp_path / "south", capsys, monkeypatch)
    south.now = n.now
    south("init", "--name", "south-laptop")
    doc = south("import", str(bundle), "--json").json()
    assert doc["rejected"] == [] and doc["new"] > 5
    assert south("status", prop, "--as-of", "+3m", "--json").json() == final
    everything_north = n("status", "--json", "--as-of", "+3m").json()
    everything_south = south("status", "--json", "--as-of", "+3m").json()
    assert everything_north == everything_south


def test_closed_round_refuses_votes(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    n("body", "found", "community", "North", "--charter", "discussion=5s",
      "--charter", "vote_window=60s", "--charter", "amendment_window=60s",
      "--charter", "contention_window=60s", as_="ana")
    prop = n("propose", "North", "--title", "T", "--text", "X", as_="ana").out.strip()
    n.now += 10 * 60 * S  # every window has closed: nobody voted, so it was rejected
    before = n.store_digest()
    r = n("vote", prop, "yes", as_="ana", ok=False)
    assert r.code == 1 and "rejected" in r.err
    assert n.store_digest() == before
