"""store/author.py: docs/rules.md s.9.4, authoring is one atomic step that never signs
over the future and never stamps outside the window it was meant for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imier.protocol.errors import Rejected
from imier.protocol.events import Admit, Found, Leave, Vote, sign_event
from imier.store.author import author, choose_prev
from imier.store.db import Store

from .strategies import KEYS

NOW = 10_000_000


def _body(s: Store) -> bytes:
    f = author(s, KEYS[0], None, Found(body_kind="community", name="N"), NOW - 1000)
    author(s, KEYS[0], f.id, Admit(member=bytes(KEYS[1].verify_key)), NOW - 900)
    return f.id


def test_a_future_dated_head_is_left_out_of_prev_and_does_not_move_the_stamp() -> None:
    """Issue 10, attack 4: a member's event stamped now + 295 s (inside max_skew) is a
    head; a vote cast now must neither name it nor be stamped after it."""
    s = Store.memory()
    body = _body(s)
    seq, prev, _ = choose_prev(s, body, bytes(KEYS[1].verify_key), NOW - 800)
    future = sign_event(KEYS[1], body=body, ts=NOW + 295_000, seq=seq, prev=prev, data=Leave())
    assert s.ingest([future], now_ms=NOW).accepted == [future.id]
    assert (NOW + 295_000, future.id) in s.heads(body)
    vote = author(s, KEYS[0], body, Vote(target=body, choice="yes"), NOW)
    assert vote.ts == NOW and future.id not in vote.prev
    assert s.state(vote.id) == 1


def test_every_head_in_the_future_falls_back_to_the_newest_event_not_in_it() -> None:
    s = Store.memory()
    body = _body(s)
    _, prev, _ = choose_prev(s, body, bytes(KEYS[1].verify_key), NOW - 800)
    future = sign_event(KEYS[1], body=body, ts=NOW + 60_000, seq=1, prev=prev, data=Leave())
    s.ingest([future], now_ms=NOW)
    assert [h for _, h in s.heads(body)] == [future.id]
    s.ingest([sign_event(KEYS[2], body=None, ts=1, seq=1, prev=[], data=Found(body_kind="community", name="S"))])
    other = KEYS[0]
    ev = author(s, other, body, Vote(target=body, choice="yes"), NOW)
    assert ev.ts == NOW and future.id not in ev.prev and s.state(ev.id) == 1


def test_an_own_previous_event_in_the_future_is_refused_with_the_reason() -> None:
    s = Store.memory()
    body = _body(s)
    seq, prev, _ = choose_prev(s, body, bytes(KEYS[1].verify_key), NOW - 800)
    future = sign_event(KEYS[1], body=body, ts=NOW + 100_000, seq=seq, prev=prev, data=Leave())
    s.ingest([future], now_ms=NOW)
    n = s.count()
    with pytest.raises(Rejected) as e:
        author(s, KEYS[1], body, Vote(target=body, choice="yes"), NOW)
    assert e.value.code == "future_own_event" and e.value.field == "prev"
    assert "clock" in str(e.value) and s.count() == n


def test_a_stamp_outside_the_window_is_refused_and_nothing_is_written() -> None:
    s = Store.memory()
    body = _body(s)
    n = s.count()
    with pytest.raises(Rejected) as e:
        author(s, KEYS[0], body, Vote(target=body, choice="yes"), NOW, window=(NOW - 10, NOW))
    assert e.value.code == "outside_window" and e.value.field == "ts"
    assert s.count() == n

    class W:
        def contains(self, ts: int) -> bool:
            return ts == NOW

    ev = author(s, KEYS[0], body, lambda: Vote(target=body, choice="yes"), NOW, window=W())
    assert ev.ts == NOW and s.count() == n + 1


def test_a_stranger_cannot_author_in_a_body() -> None:
    s = Store.memory()
    body = _body(s)
    with pytest.raises(Rejected) as e:
        author(s, KEYS[5], body, Vote(target=body, choice="yes"), NOW)
    assert e.value.code == "not_admitted" and s.count() == 2


def _env(home: Path, now: int | None, who: str = "ana") -> dict[str, str]:
    env = {**os.environ, "IMIER_HOME": str(home), "IMIER_PASSPHRASE": "pw", "IMIER_AS": who}
    env.pop("IMIER_NOW", None)
    if now is not None:  # None: the machine's clock
        env["IMIER_NOW"] = str(now)
    return env


def _imier(home: Path, now: int | None, *args: str, who: str = "ana") -> str:
    r = subprocess.run([sys.executable, "-m", "imier", *args], env=_env(home, now, who), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_one_persons_parallel_votes_never_fork_their_chain(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, attack 5: ``imier --as ana vote P1 yes & imier --as ana vote P2 no``,
    50 times, in real processes: every vote is stored, and no two share a seq."""
    home = tmp_path / "h"
    t0 = 1_800_000_000_000
    _imier(home, t0, "init", "--name", "n")
    _imier(home, t0, "key", "new", "ana")
    _imier(home, t0, "body", "found", "community", "North", "--charter", "discussion=5s")
    p1 = _imier(home, t0 + 1000, "propose", "North", "--title", "one", "--text", "x")
    p2 = _imier(home, t0 + 1000, "propose", "North", "--title", "two", "--text", "y")
    now = t0 + 10_000  # round 1 of both
    pairs = int(os.environ.get("IMIER_FORK_PAIRS", "50"))
    at_once = 4  # pairs running together
    for start in range(0, pairs, at_once):
        procs = []
        for _ in range(min(at_once, pairs - start)):
            for prop, choice in ((p1, "yes"), (p2, "no")):
                extra = ["--minor", "--category", "cost"] if choice == "no" else []
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "imier", "vote", prop, choice, *extra], env=_env(home, now),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    s = Store.open(home / "store.sqlite3")
    try:
        ana = next(r[0] for r in s.conn.execute("SELECT author FROM events WHERE kind = 'found'"))
        seqs = [r[0] for r in s.conn.execute("SELECT seq FROM events WHERE author = ? AND kind = 'vote'", (ana,))]
        assert len(seqs) == 2 * pairs
        assert len(set(seqs)) == len(seqs)  # no fork
        assert s.count(state=0) == 0
    finally:
        s.close()


def test_a_future_dated_head_does_not_push_imier_vote_out_of_its_window(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, attack 4, through the command people use: a member's event stamped
    295 s ahead is a head when ``imier vote`` runs; round 1 closes 60 s later. The
    vote is stamped at the clock, counts in round 1, and the CLI's sentence is true.
    (The draft once took its ``prev`` with the future head and its stamp after it:
    the vote went in 5 minutes late and did not count, while the CLI said it did.)"""
    home = tmp_path / "h"
    t0 = 1_800_000_000_000
    _imier(home, t0, "init", "--name", "n")
    _imier(home, t0, "key", "new", "ana")
    _imier(home, t0, "key", "new", "ben")
    _imier(home, t0, "body", "found", "community", "North", "--charter", "discussion=5s", "--charter",
           "vote_window=60s")
    ben = json.loads(_imier(home, t0, "key", "list", "--json"))
    ben_key = next(p["public_key"] for p in ben if p["name"] == "ben")
    _imier(home, t0 + 100, "member", "admit", "North", ben_key)
    prop = _imier(home, t0 + 1000, "propose", "North", "--title", "Bench", "--text", "x", "--json")
    pid = json.loads(prop)["id"]
    vote_at = t0 + 10_000  # round 1: [t0 + 6 s, t0 + 66 s)
    _imier(home, vote_at + 295_000, "member", "leave", "North", who="ben")  # a head from the future
    said = json.loads(_imier(home, vote_at, "vote", pid, "yes", "--json"))
    s = Store.open(home / "store.sqlite3")
    try:
        ana = bytes.fromhex(said["author"])
        row = s.conn.execute("SELECT ts, raw FROM events WHERE author = ? AND kind = 'vote'", (ana,)).fetchone()
        assert row[0] == vote_at, (row[0] - vote_at)
    finally:
        s.close()
    status = json.loads(_imier(home, vote_at + 70_000, "status", pid, "--json"))
    round1 = status["rounds"][0]
    assert round1["bodies"]["North"]["yes"] == 1, round1


def test_one_persons_parallel_votes_on_the_machine_clock_all_go_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Attack 5 without a pinned clock: each command reads the clock inside the write
    lock, so the other command's vote, written first, is never 'after this node's
    clock' (1-10 ms refusals, 11 in 100, when the clock was read before the lock)."""
    import time

    home = tmp_path / "h"
    t0 = int(time.time() * 1000) - 20_000
    _imier(home, t0, "init", "--name", "n")
    _imier(home, t0, "key", "new", "ana")
    _imier(home, t0, "body", "found", "community", "North", "--charter", "discussion=5s")
    p1 = _imier(home, t0 + 1000, "propose", "North", "--title", "one", "--text", "x")
    p2 = _imier(home, t0 + 1000, "propose", "North", "--title", "two", "--text", "y")
    pairs = int(os.environ.get("IMIER_FORK_PAIRS", "50")) // 2
    failed: list[str] = []
    for start in range(0, pairs, 4):
        procs = []
        for _ in range(min(4, pairs - start)):
            for prop, choice in ((p1, "yes"), (p2, "abstain")):
                procs.append(subprocess.Popen([sys.executable, "-m", "imier", "vote", prop, choice],
                                              env=_env(home, None), stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=300)
            if p.returncode != 0:
                failed.append(err.strip())
    assert failed == []
    s = Store.open(home / "store.sqlite3")
    try:
        seqs = [r[0] for r in s.conn.execute("SELECT seq FROM events WHERE kind = 'vote'")]
        assert len(seqs) == 2 * pairs and len(set(seqs)) == len(seqs)
    finally:
        s.close()
