"""`imier status` for people: plain words, names, no number ever cut at any width."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from imier.api.render import Namer, at, pct, until
from imier.protocol.events import Profile, decode_event, sign_event
from imier.store.home import Home

from .cli_helpers import Imier

DAY = 86_400_000


def test_percentages_are_exact_or_cut_never_rounded_up() -> None:
    assert pct(12, 14) == "85.7%"
    assert pct(9, 10) == "90%"
    assert pct(2, 3) == "66.6%"
    assert pct(8999, 10000) == "89.9%"  # never shown as 90%
    assert pct(0, 0) == "-"


def test_names_always_carry_a_key_prefix() -> None:
    k = bytes.fromhex("3f9c" + "00" * 30)
    assert Namer({k: "Ana"}, {})(k) == "Ana (3f9c)"
    assert Namer({}, {k: "ana"})(k) == "ana (3f9c)"
    assert Namer({k: "Ana"}, {k: "local"})(k) == "Ana (3f9c)"  # the body's profile first
    assert Namer({}, {})(k) == "3f9c0000"


def test_times_read_as_a_clock_and_a_distance() -> None:
    now = 1_800_000_000_000
    assert until(now + 4 * 60_000, now).endswith("(in 4 minutes)")
    assert until(now - 2 * DAY, now).endswith("(2 days ago)")
    assert re.match(r"^\w{3} \d\d \w{3} \d\d:\d\d", at(now + 3 * DAY, now))


@pytest.fixture(scope="module")
def town() -> list[Any]:
    """Three communities of 1,200 (4-digit counts), one proposal in the municipality, all voting."""
    from bench.tally import municipality

    return [decode_event(e.raw, verify=False) for e in municipality(3, 1200)]


def _home(tmp_path: Path, capsys: Any, monkeypatch: Any, evs: list[Any]) -> Imier:
    n = Imier(tmp_path / "home", capsys, monkeypatch)
    n("init")
    h = Home(tmp_path / "home")
    h.store().ingest(evs)
    h.close()
    return n


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_numbers_are_never_cut_at_any_width(tmp_path: Path, capsys: Any, monkeypatch: Any,
                                            town: list[Any], columns: int) -> None:
    # the municipality's proposal (the communities' consent to it comes first, s.9.2)
    prop = next(e for e in town if e.kind == "propose" and e.data.proposal_kind == "general")
    n = _home(tmp_path, capsys, monkeypatch, town)
    monkeypatch.setenv("COLUMNS", str(columns))
    for as_of in (prop.ts + 3 * DAY + 1800, prop.ts + 5 * DAY + 1):  # round 1 open, then closed
        n.now = as_of
        doc = n("status", prop.id.hex(), "--json").json()
        human = n("status", prop.id.hex()).out
        assert "…" not in human
        assert max(len(line) for line in human.splitlines()) <= columns
        flat = " ".join(human.split())
        r1 = doc["rounds"][0]
        for body in r1["bodies"].values():
            assert f"{body['yes'] + body['no'] + body['abstain']} of {body['eligible']} voted" in flat
            assert f"{body['yes']} yes" in flat and f"({body['support']})" in flat
        assert "Round 1 of 3, temperature check: needs 90% (9/10) yes" in flat
        every = n("status").out  # every proposal, in full
        assert "…" not in every and max(len(line) for line in every.splitlines()) <= columns
        assert all(f"{p.id.hex()[:12]}" in every for p in town if p.kind == "propose")
        short = n("status", "--short").out
        # one proposal, one entry (wrapped between words on a narrow terminal, never cut)
        entries = [ln[:8] for ln in short.splitlines() if re.match(r"^[0-9a-f]{8} ", ln)]
        assert entries.count(prop.id.hex()[:8]) == 1
        assert len(entries) == sum(1 for e in town if e.kind == "propose")
        assert max(len(line) for line in short.splitlines()) <= columns


def test_an_open_round_never_says_passed(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    n = Imier(tmp_path / "home", capsys, monkeypatch)
    n.now = 1_800_000_000_000
    n("init")
    keys = {name: n("key", "new", name).out.strip().split()[-1] for name in ("ana", "ben", "cid")}
    n("body", "found", "community", "North", "--charter", "discussion=5s", "--charter", "vote_window=60s",
      "--charter", "amendment_window=60s", "--charter", "contention_window=60s", as_="ana")
    n.now += 1000
    n("member", "admit", "North", keys["ben"], as_="ana")
    n("member", "admit", "North", keys["cid"], as_="ana")
    prop = n("propose", "North", "--title", "Tool library", "--text", "We open a tool library.",
             as_="ana").out.strip()
    n.now += 6000
    n("vote", prop, "yes", as_="ana")
    n("vote", prop, "yes", as_="ben")
    doc = n("status", prop, "--json").json()
    assert doc["rounds"][0]["passed"] is False and doc["rounds"][0]["open"] is True
    assert doc["rounds_plain"][0]["so_far"] == "would pass"
    human = " ".join(n("status", prop).out.split())
    assert "passed" not in human
    assert "2 of 3 voted; 2 yes (100%, 2/2), 0 no" in human
    assert "Closes" in human and "so far it would pass" in human
    assert "you can vote, or change your vote, until" in human
    assert "not yet (1): cid (" in human
    assert "yes (2): ana (" in human and "ben (" in human
    assert "We open a tool library." in human
    opened = n("status", "--open", "--short").out
    assert prop[:8] in opened
    n.now += 60_000  # round 1 closed: contention
    human = " ".join(n("status", prop).out.split())
    assert "contention is open until" in human and f"imier stand {prop[:8]} no" in human
    assert prop[:8] in n("status", "--open", "--short").out
    n.now += 120_000  # carried: nothing open
    assert prop[:8] not in n("status", "--open", "--short").out
    assert "Verify: all 1 result(s) match" in n("status", "--verify").out
    assert n("status", "--body", "North", "--json").json()["proposals"][0]["id"] == prop


def test_profile_names_are_shown_with_the_key_prefix(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    from imier.protocol.events import Admit, Found, Propose, Vote

    from bench.common import key

    ana, ben = key(1, 77), key(2, 77)
    t = 1_800_000_000_000
    f = sign_event(ana, body=None, ts=t, seq=1, prev=[], data=Found(body_kind="community", name="North"))
    a = sign_event(ana, body=f.id, ts=t + 1, seq=2, prev=[f.id], data=Admit(member=bytes(ben.verify_key)))
    pr = sign_event(ben, body=f.id, ts=t + 2, seq=1, prev=[a.id], data=Profile(name="Benedikt"))
    p = sign_event(ana, body=f.id, ts=t + 3, seq=3, prev=[pr.id, a.id], data=Propose(title="Bench", text="A bench."))
    v = sign_event(ben, body=f.id, ts=t + 3 * DAY + 10, seq=2, prev=[p.id, pr.id], data=Vote(target=p.id, choice="yes"))
    n = _home(tmp_path, capsys, monkeypatch, [f, a, pr, p, v])
    n.now = t + 3 * DAY + 20
    human = " ".join(n("status", p.id.hex()).out.split())
    assert f"yes (1): Benedikt ({bytes(ben.verify_key).hex()[:4]})" in human
    assert f"not yet (1): {bytes(ana.verify_key).hex()[:8]}" in human


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_the_text_under_decision_and_what_each_adopted_amendment_changed(columns: int) -> None:
    from rich.console import Console

    from imier.api import read
    from imier.api.render import render_detail
    from imier.testing import A2, R1, R2, World

    w = World()
    w.body("a", 10)
    pid = w.propose("a", text="Rates are set street by street for every home.")
    w.votes("a", pid, R1[0], yes=5, no=5)  # round 1 fails: amendments open
    aid = w.amend("a0", pid, "Rates are set street by street for every home and shop.", A2[0])
    w.votes("a", aid, A2[0] + 1, yes=8, no=2)
    d = read.detail(w.store, pid, R2[0] + 10)  # round 2 open, on the amended text
    assert d.result.version == 2
    con = Console(width=columns, record=True, highlight=False, soft_wrap=False)
    render_detail(con, d.result, {}, read_namer(), R2[0] + 10, d.turnout,
                  original="Rates are set street by street for every home.")
    out = con.export_text()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= columns
    flat = " ".join(out.split())
    assert "Text under decision (version 2): Rates are set street by street for every home and shop." in flat
    assert f"amendment {aid.hex()[:8]} by" in flat and "adopted" in flat
    assert "changed: Rates are set ... street for every [-home.-] {+home and shop.+}" in flat


def read_namer() -> Namer:
    return Namer({}, {})


def test_late_arrivals_are_told_one_by_one_only_when_few() -> None:
    """A record imported long after its windows closed has every vote late: the warning
    is one line per window (count, longest delay, first names), never one per vote."""
    from imier.api.late import Late
    from imier.api.render import LIST_AT_MOST, late_lines

    close = 1_800_000_000_000

    def late(i: int) -> Late:
        return Late(id=i.to_bytes(32, "big"), author=(i + 1).to_bytes(32, "big"), kind="vote",
                    target=b"\x01" * 32, window="r1", close=close, ts=close - 5, arrived=close + 3_600_000 * (1 + i % 2))

    few = late_lines([late(0), late(1)], read_namer())
    assert len(few) == 2 and all("'s vote reached this node" in x for x in few)
    many = late_lines([late(i) for i in range(2000)], read_namer())
    assert len(many) == 1
    assert many[0].startswith("2000 votes reached this node after round 1 closed (up to 2 hours after); "
                              "they count because the window is unsealed: ")
    assert many[0].endswith(f" and {2000 - LIST_AT_MOST} more")
    # summed up as imier status streams them (late_groups): the same lines
    from imier.api.late import group
    for xs in ([late(0), late(1)], [late(i) for i in range(5)], [late(i) for i in range(2000)]):
        xs.sort(key=lambda x: (x.close, x.arrived, x.id))
        assert late_lines(group(xs), read_namer()) == late_lines(xs, read_namer())
    few_groups = group([late(i) for i in range(3)])
    assert [x.id for x in few_groups[0].events()] == [late(i).id for i in (0, 2, 1)]  # by arrival


def test_late_arrivals_from_columns_equal_those_from_decoded_events() -> None:
    from imier.api import read
    from imier.api.late import late_events, late_for, targets
    from imier.testing import R1, R2, World

    w = World()
    w.body("a", 6)
    pid = w.propose("a")
    w.votes("a", pid, R1[0], yes=3, no=2)  # round 1 fails (all reached this node "late":
    res = read.status(w.store, pid, R2[1] + 10)  # the world's store records arrivals now)
    slow = late_events(res, w.store.arrived_after(targets(res), 0))
    assert len([x for x in slow if x.window == "r1"]) == 5  # every vote of round 1
    # told from the columns (undecoded) as from the decoded events:
    from imier.api.late import _late_from_rows
    assert _late_from_rows(res, 0, w.store, 0) == slow
    # but this node received the proposal after round 1 closed (the world's arrivals
    # are the machine's clock): it never saw the count close, so nothing is news
    assert w.store.arrived_ms(pid) > R1[1]
    assert late_for(w.store, res) == late_events(res, w.store.arrived_after(targets(res), 0),
                                                 w.store.arrived_ms(pid)) == []
    from imier.api.late import late_groups
    assert late_groups(w.store, res) == []
