"""`imier status` says of every closed window whether it is sealed, and warns on this node
about late arrivals in an unsealed one (docs/rules.md s.10.4, s.10.6); `imier seal` by a
teller, refused for anyone else.

Two homes driven through the real CLI on a fixed clock (IMIER_NOW): the hall, holding
ana, ben and dan's keys, and cid's laptop. Tellers are drawn by lot (a `draw`
proposal) among ana and ben, so both are drawn and dan is not a teller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cli_helpers import Imier

T0 = 1_800_000_000_000
S = 1000
H = 3600 * S
WINDOWS = ("--charter", "discussion=5s", "--charter", "vote_window=60s", "--charter",
           "amendment_window=60s", "--charter", "contention_window=60s")


@dataclass
class Assembly:
    hall: Imier
    cid: Imier  # cid's own laptop
    keys: dict[str, str]  # name -> public key (hex)
    tmp: Path

    def carry(self, src: Imier, dst: Imier, name: str) -> dict[str, Any]:
        bundle = self.tmp / f"{name}.bundle"
        src("export", str(bundle), "--force")
        doc: dict[str, Any] = dst("import", str(bundle), "--json").json()
        assert doc["rejected"] == []
        return doc


def _assembly(tmp_path: Path, capsys: Any, monkeypatch: Any, *, tellers: bool) -> Assembly:
    hall = Imier(tmp_path / "hall", capsys, monkeypatch)
    hall.now = T0
    hall("init", "--name", "hall")
    keys = {n: hall("key", "new", n).out.strip() for n in ("ana", "ben", "dan")}
    cid = Imier(tmp_path / "cid", capsys, monkeypatch)
    cid.now = T0
    cid("init", "--name", "cid-laptop")
    keys["cid"] = cid("key", "new", "cid").out.strip()
    hall("body", "found", "community", "North", *WINDOWS, as_="ana")
    hall.now += S
    for n in ("ben", "dan", "cid"):
        hall("member", "admit", "North", keys[n], as_="ana")
    a = Assembly(hall, cid, keys, tmp_path)
    if tellers:
        hall.now += S
        draw = hall("propose", "North", "--title", "Tellers", "--text", "Two tellers by lot.",
                    "--kind", "draw", "--task", "teller", "--seats", "2",
                    "--candidate", keys["ana"], "--candidate", keys["ben"], as_="ana").out.strip()
        hall.now += 6 * S
        for n in ("ana", "ben", "dan"):
            hall("vote", draw, "yes", as_=n)
        hall.now += 2 * 60 * S + 5 * S  # round 1 and contention closed: carried
        doc = hall("status", draw, "--json").json()
        assert doc["state"] == "carried"
        assert sorted(doc["draw"]["chosen"]) == sorted([keys["ana"], keys["ben"]])
    return a


def _proposal(a: Assembly) -> tuple[str, int]:
    """A proposal that ana and ben vote for and cid holds (carried to its laptop before
    round 1 opens); returns it and the close of round 1."""
    h = a.hall
    h.now += S
    pid = h("propose", "North", "--title", "Tool library", "--text", "We open a tool library.",
            as_="ana").out.strip()
    a.carry(h, a.cid, "before")
    h.now += 6 * S
    for n in ("ana", "ben"):
        h("vote", pid, "yes", as_=n)
    return pid, int(h("status", pid, "--json").json()["rounds_plain"][0]["closes"])


@pytest.fixture
def told(tmp_path, capsys, monkeypatch) -> Assembly:  # type: ignore[no-untyped-def]
    return _assembly(tmp_path, capsys, monkeypatch, tellers=True)


@pytest.fixture
def plain(tmp_path, capsys, monkeypatch) -> Assembly:  # type: ignore[no-untyped-def]
    return _assembly(tmp_path, capsys, monkeypatch, tellers=False)


def _seal_of(doc: dict[str, Any], window: str) -> dict[str, Any]:
    got = [s for s in doc["seals"] if s["window"] == window]
    assert len(got) == 1, doc["seals"]
    return got[0]


def test_a_closed_round_says_unsealed_then_sealed_k_of_n(told: Assembly) -> None:
    h = told.hall
    pid, close = _proposal(told)
    h.now = close + 10 * S
    doc = h("status", pid, "--json").json()
    assert doc["rounds"][0]["seal"] == {"window": "r1", "sealed": False, "tellers": 2, "sealed_by": 0}
    r1 = _seal_of(doc, "r1")
    assert r1["text"] == "unsealed (0/2 tellers sealed): a backdated event could still change it"
    human = h("status", pid).out
    assert "unsealed (0/2 tellers sealed): a backdated event could still change it" in human

    h("seal", pid, as_="ana")
    doc = h("status", pid, "--json").json()
    assert _seal_of(doc, "r1")["sealed_by"] == 1 and not _seal_of(doc, "r1")["sealed"]  # 1 of 2 is not more than half
    assert "unsealed (1/2 tellers sealed)" in h("status", pid).out

    h("seal", pid, as_="ben")
    doc = h("status", pid, "--json").json()
    assert doc["rounds"][0]["seal"] == {"window": "r1", "sealed": True, "tellers": 2, "sealed_by": 2}
    assert _seal_of(doc, "r1")["text"].startswith("sealed 2/2: ")
    human = h("status", pid).out
    assert "sealed 2/2: an event that reached the tellers after the close does not count" in " ".join(human.split())
    # the contention window is still open: no seal is shown for it yet
    assert [s["window"] for s in doc["seals"]] == ["r1"]


def test_without_tellers_every_closed_window_is_unsealed_and_says_so(plain: Assembly) -> None:
    h = plain.hall
    pid, close = _proposal(plain)
    h.now = close + 2 * 60 * S  # round 1 and contention closed: carried
    doc = h("status", pid, "--json").json()
    assert doc["state"] == "carried"
    assert [(s["window"], s["sealed"], s["tellers"]) for s in doc["seals"]] == [("r1", False, 0), ("c", False, 0)]
    human = " ".join(h("status", pid).out.split())
    assert "unsealed (no tellers): a backdated event could still change it" in human
    assert "contention unsealed (no tellers)" in human
    assert doc["late"] == []


def _backdated_no(a: Assembly, pid: str, close: int) -> None:
    """cid, on its own laptop, signs a blocking `no` stamped inside round 1 (its clock,
    IMIER_NOW, set back) after the round closed."""
    c = a.cid
    c.now = close - 5 * S
    c("vote", pid, "no", "--blocking", as_="cid")
    assert c("status", pid, "--json").json()["turnout"][0]["voted"][a.keys["cid"]] == "no"


def test_a_late_vote_in_an_unsealed_round_counts_and_this_node_warns(plain: Assembly) -> None:
    h = plain.hall
    pid, close = _proposal(plain)
    h.now = close + 10 * S
    assert h("status", pid, "--json").json()["rounds"][0]["passed"] is True
    _backdated_no(plain, pid, close)
    # cid's vote reaches the hall by a bundle an hour after round 1 closed
    h.now = close + H
    plain.cid.now = h.now
    plain.carry(plain.cid, h, "late")
    doc = h("status", pid, "--json").json()
    assert doc["state"] == "rejected"  # unsealed: the backdated vote counts, as before
    assert len(doc["late"]) == 1
    late = doc["late"][0]
    assert late["author"] == plain.keys["cid"] and late["kind"] == "vote" and late["window"] == "r1"
    assert late["closed"] == close and late["arrived_ms"] == close + H and late["late_by_ms"] == H
    assert late["ts"] < close
    human = " ".join(h("status", pid).out.split())
    # cid has no profile and no key on the hall's node: shown by eight hex digits
    assert (f"{plain.keys['cid'][:8]}'s vote reached this node 1 hour after round 1 closed; "
            "it counts because the window is unsealed") in human
    # the local time changes no verdict: on cid's laptop, which gets the hall's record an
    # hour late too, the verdict is the same; its warnings are its own (ana's and ben's
    # votes reached it late, its own vote did not)
    plain.carry(h, plain.cid, "back")
    mine = plain.cid("status", pid, "--json").json()
    assert mine["state"] == doc["state"] and mine["rounds"] == doc["rounds"]
    assert sorted(x["author"] for x in mine["late"]) == sorted([plain.keys["ana"], plain.keys["ben"]])


def test_a_late_vote_in_a_sealed_round_is_ignored_and_not_warned_about(told: Assembly) -> None:
    h = told.hall
    pid, close = _proposal(told)
    h.now = close + 10 * S
    h("seal", pid, as_="ana")
    h("seal", pid, as_="ben")
    _backdated_no(told, pid, close)
    h.now = close + H
    before = h("status", pid, "--json").json()
    told.carry(told.cid, h, "late")
    doc = h("status", pid, "--json").json()
    assert doc["rounds"] == before["rounds"] and doc["state"] == before["state"]
    assert doc["late"] == []
    assert any(i["author"] == told.keys["cid"] and "after the close" in i["reason"] for i in doc["ignored"])


# -- imier seal ---------------------------------------------------------------------------------


def test_seal_by_a_teller_then_refusals_in_one_line(told: Assembly) -> None:
    h = told.hall
    pid, close = _proposal(told)
    r = h("seal", pid, as_="ana", ok=False)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith(f"error: nothing to seal for {pid[:12]}: a window of it has not closed yet")
    h.now = close + 10 * S
    before = h.store_digest()
    r = h("seal", pid, as_="dan", ok=False)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "you are not a teller of its body at the close of r1" in r.err
    assert "its 2 tellers are the holders of in-force 'teller' mandates" in r.err
    assert h.store_digest() == before  # a refusal writes nothing

    doc = h("seal", pid, "--window", "r1", "--json", as_="ana").json()
    assert [(s["window"], s["proposal"]) for s in doc["sealed"]] == [("r1", pid)]
    assert doc["sealed"][0]["heads"] >= 1 and len(doc["sealed"][0]["id"]) == 64
    r = h("seal", pid, as_="ana", ok=False)
    assert r.code == 1 and "you have already sealed r1" in r.err
    human = h("seal", pid, as_="ben").out
    assert human.startswith(f"sealed r1 of {pid[:12]} (")
    assert _seal_of(h("status", pid, "--json").json(), "r1")["sealed_by"] == 2

    # --window: contention is still open; once closed, only the window named is sealed
    r = h("seal", pid, "--window", "c", as_="ana", ok=False)
    assert r.code == 1 and "window c of it has not closed yet" in r.err
    h.now = close + 2 * 60 * S
    assert h("status", pid, "--json").json()["state"] == "carried"
    doc = h("seal", pid, "--window", "c", "--json", as_="ana").json()
    assert [s["window"] for s in doc["sealed"]] == ["c"]
    seals = {s["window"]: s for s in h("status", pid, "--json").json()["seals"]}
    assert (seals["r1"]["sealed_by"], seals["c"]["sealed_by"]) == (2, 1)


def test_seal_past_the_seal_window_is_refused(told: Assembly) -> None:
    h = told.hall
    pid, close = _proposal(told)
    h.now = close + 25 * H  # seal_window is one day by default
    r = h("seal", pid, "--window", "r1", as_="ana", ok=False)
    assert r.code == 1 and "r1 closed more than the charter's seal_window ago" in r.err
