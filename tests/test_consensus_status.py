"""`imier status` over a real home: per-round figures, the sentence, what was not
counted and why, and a draw anyone can recompute from the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imier.consensus import draw_seed, sortition

from .cli_helpers import Imier

T0 = 1_800_000_000_000
S = 1000


def test_status_shows_rounds_ignored_votes_and_the_draw(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    n = Imier(tmp_path / "home", capsys, monkeypatch)
    n.now = T0
    n("init")
    keys = {name: n("key", "new", name).out.strip().split()[-1] for name in ("ana", "ben", "cid", "dan")}
    n("body", "found", "community", "North", "--charter", "discussion=5s", "--charter", "vote_window=60s",
      "--charter", "amendment_window=60s", "--charter", "contention_window=60s", as_="ana")
    n.now += S
    n("member", "admit", "North", keys["ben"], as_="ana")
    n("member", "admit", "North", keys["cid"], as_="ana")
    n.now += S
    args = ["propose", "North", "--title", "Treasurer", "--text", "Draw a treasurer.", "--kind", "draw",
            "--task", "keep the books", "--seats", "1"]
    for who in ("ana", "ben", "cid"):
        args += ["--candidate", keys[who]]
    prop = n(*args, as_="ana").out.strip()
    n.now += S
    n("member", "admit", "North", keys["dan"], as_="ana")  # after the proposal: not eligible for it
    n("key", "new", "eve")
    n.now += 5 * S
    r = n("vote", prop, "yes", as_="eve", ok=False)  # never a person of North: refused, not stored
    assert r.code == 1 and "not a person of this body" in r.err
    for who in ("ana", "ben", "cid"):
        n("vote", prop, "yes", as_=who)
    n("vote", prop, "no", "--category", "cost", as_="dan")  # not eligible: kept, not counted
    mid = n("status", prop, "--json").json()
    assert (mid["state"], mid["open_phase"], mid["round_open"]) == ("round1", "vote", 1)
    assert mid["rounds"][0]["open"] is True
    [ignored] = mid["ignored"]
    assert ignored["author"] == keys["dan"] and "not eligible" in ignored["reason"]

    doc = n("status", prop, "--as-of", "+3m", "--json").json()
    assert doc["state"] == "carried" and doc["decided_round"] == 1
    r1 = doc["rounds"][0]
    assert (r1["support"], r1["participation"]) == ("3/3", "3/3")
    assert r1["bodies"]["North"] == {"passed": True, "support": "3/3", "participation": "3/3",
                                     "yes": 3, "no": 0, "abstain": 0, "eligible": 3}
    assert doc["explain"] == "carried in round 1 with 3/3 ≥ 9/10; contention closed with 3/3"
    draw = doc["draw"]
    votes = [bytes.fromhex(v) for v in draw["votes"]]
    seed = draw_seed(votes)
    assert draw["seed"] == seed.hex() and len(votes) == 3
    cands = [bytes.fromhex(c) for c in draw["candidates"]]
    assert draw["chosen"] == [c.hex() for c in sortition(seed, cands, 1)]
    assert doc["mandate"][0]["holder"] == draw["chosen"][0]
    assert doc["mandate"][0]["task"] == "keep the books"

    human = n("status", prop, "--as-of", "+3m").out
    assert "carried in round 1 with 3/3 ≥ 9/10" in human
    assert f"Draw: seed {draw['seed']}" in human and "Not counted" in human and "not eligible" in human

    everything = n("status", "--json", "--as-of", "+3m").json()
    assert [p["id"] for p in everything["proposals"]] == [prop]


def test_amendment_and_contention_through_the_cli(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    n = Imier(tmp_path / "home", capsys, monkeypatch)
    n.now = T0
    n("init")
    keys = {name: n("key", "new", name).out.strip().split()[-1] for name in ("ana", "ben", "cid", "dan")}
    n("body", "found", "community", "North", "--charter", "discussion=5s", "--charter", "vote_window=60s",
      "--charter", "amendment_window=60s", "--charter", "contention_window=60s", as_="ana")
    n.now += S
    for who in ("ben", "cid", "dan"):
        n("member", "admit", "North", keys[who], as_="ana")
    n.now += S
    prop = n("propose", "North", "--title", "Garden", "--text", "A garden.", as_="ana").out.strip()
    n.now += 6 * S  # round 1: 2 yes, 2 no -> fails
    n("vote", prop, "yes", as_="ana")
    n("vote", prop, "yes", as_="ben")
    n("vote", prop, "no", "--category", "water", "--delegate", keys["dan"], as_="cid")
    n("vote", prop, "no", "--category", "water", "--delegate", keys["dan"], as_="dan")
    refused = n("amend", prop, "--text", "too early", as_="cid", ok=False)
    assert refused.code == 1 and "cannot amend" in refused.err
    n.now += 61 * S  # round 2's amendment window
    doc = n("status", prop, "--json").json()
    assert (doc["state"], doc["open_phase"], doc["round_open"]) == ("round2", "amend", 2)
    assert doc["rounds"][0]["grievances"] == [
        {"category": "water", "severity": "minor", "count": 2, "delegate": keys["dan"]}]
    amendment = n("amend", prop, "--text", "A garden with a rain tank.", as_="cid").out.strip()
    for who in ("ana", "cid", "dan"):
        n("vote", amendment, "yes", as_=who)
    n.now += 60 * S  # round 2's vote: everyone agrees on version 2
    for who in ("ana", "ben", "cid", "dan"):
        n("vote", prop, "yes", as_=who)
    n.now += 60 * S  # contention: one changes their mind, 3/4 stays above 1/2
    assert n("status", prop, "--json").json()["open_phase"] == "contention"
    n("stand", prop, "no", as_="ben")
    doc = n("status", prop, "--as-of", "+2m", "--json").json()
    assert (doc["state"], doc["decided_round"], doc["version"]) == ("carried", 2, 2)
    assert doc["text"] == "A garden with a rain tank."
    assert doc["rounds"][1]["amendments"][0] == {
        "text": "A garden with a rain tank.", "adopted": True, "support": "3/3", "id": amendment}
    assert doc["contention"]["support"] == "3/4"
    assert doc["explain"] == "carried in round 2 with 4/4 ≥ 9/10; contention closed with 3/4"


def test_mandate_and_recall_through_the_cli(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    n = Imier(tmp_path / "home", capsys, monkeypatch)
    n.now = T0
    n("init")
    keys = {name: n("key", "new", name).out.strip().split()[-1] for name in ("ana", "ben", "cid")}
    n("body", "found", "community", "North", "--charter", "discussion=5s", "--charter", "vote_window=60s",
      "--charter", "amendment_window=60s", "--charter", "contention_window=60s", as_="ana")
    n.now += S
    for who in ("ben", "cid"):
        n("member", "admit", "North", keys[who], as_="ana")
    n.now += S
    prop = n("propose", "North", "--title", "Delegate", "--text", "Ben speaks for us.", "--kind", "mandate",
             "--holder", keys["ben"], "--task", "speak at the town", "--term", "1d", as_="ana").out.strip()
    n.now += 6 * S
    for who in ("ana", "ben", "cid"):
        n("vote", prop, "yes", as_=who)
    n.now += 121 * S  # the vote and the contention have closed: carried, the mandate starts
    doc = n("status", prop, "--json").json()
    assert doc["state"] == "carried" and doc["mandate"][0]["status"] == "active"
    recall = n("recall", prop, "--holder", keys["ben"], "--reason", "spoke off mandate", as_="cid").out.strip()
    n.now += S
    n("vote", recall, "yes", as_="ana")
    n("vote", recall, "yes", as_="cid")
    doc = n("status", prop, "--as-of", "+2m", "--json").json()
    assert doc["recall"][0]["passed"] is True and doc["recall"][0]["support"] == "2/2"
    assert doc["mandate"][0]["status"] == "recalled"
    assert "recalled" in n("status", prop, "--as-of", "+2m").out
