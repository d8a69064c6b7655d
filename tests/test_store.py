"""store/: idempotent, order-independent ingest; pending events; forks; atomicity."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imier.protocol.events import Found, Leave, Vote, sign_event
from imier.store.author import author_event
from imier.store.db import MIGRATIONS, Store

from .strategies import KEYS, meeting

actions = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["yes", "no_", "abstain", "leave"]).map(
        lambda s: "no" if s == "no_" else s)),
    max_size=12,
)


def _vote(choice: str):  # type: ignore[no-untyped-def]
    return choice


def snapshot(store: Store) -> tuple[list[tuple[bytes, int]], list[bytes]]:
    rows = store.conn.execute("SELECT id, state FROM events ORDER BY id").fetchall()
    heads = sorted(h for (h,) in store.conn.execute("SELECT id FROM heads"))
    return [(r[0], r[1]) for r in rows], heads


def _fix(acts):  # type: ignore[no-untyped-def]
    return [(w, "no" if a == "no" else a) for w, a in acts]


@settings(max_examples=40, deadline=None)
@given(actions, st.randoms(use_true_random=False), st.integers(1, 5))
def test_any_permutation_and_duplication_gives_the_same_store(acts, rnd, chunks) -> None:  # type: ignore[no-untyped-def]
    acts = [(w, a) for w, a in acts if a != "no"]  # a bare 'no' needs an objection; tested elsewhere
    evs = meeting(acts)
    ref = Store.memory()
    ref.ingest(evs)
    shuffled = evs + rnd.sample(evs, k=len(evs) // 2)
    rnd.shuffle(shuffled)
    other = Store.memory()
    size = max(1, len(shuffled) // chunks)
    for i in range(0, len(shuffled), size):
        other.ingest(shuffled[i : i + size])
    assert snapshot(other) == snapshot(ref)
    assert other.count(state=1) == len(evs)
    again = other.ingest(evs)  # idempotent
    assert not again.new and len(again.held) == len(evs)
    assert snapshot(other) == snapshot(ref)


def test_pending_until_prev_arrives() -> None:
    evs = meeting([(1, "yes"), (2, "yes")])
    s = Store.memory()
    r = s.ingest(evs[1:])
    assert r.accepted == [] and len(r.pending) == len(evs) - 1
    assert s.events_for_bodies([evs[0].id]) == []
    r = s.ingest(evs[:1])
    assert len(r.accepted) == len(evs)
    assert [e.id for e in s.events_for_bodies([evs[0].id])] == [e.id for e in evs]


def test_causality_violations_are_refused() -> None:
    s = Store.memory()
    k = KEYS[0]
    f = author_event(s, k, body=None, data=Found(body_kind="community", name="N"), ts=1000)
    # timestamp before an event it names
    early = sign_event(k, body=f.id, ts=999, seq=2, prev=[f.id], data=Leave())
    r = s.ingest([early])
    assert r.rejected and "earlier" in r.rejected[0][1]
    # seq 3 without naming seq 2
    skip = sign_event(k, body=f.id, ts=2000, seq=3, prev=[f.id], data=Leave())
    r = s.ingest([skip])
    assert r.rejected and "previous event" in r.rejected[0][1]
    # prev from another body
    g = author_event(s, KEYS[1], body=None, data=Found(body_kind="community", name="S"), ts=1000)
    cross = sign_event(KEYS[1], body=f.id, ts=3000, seq=1, prev=[g.id], data=Leave())
    r = s.ingest([cross])
    assert r.rejected and "another body" in r.rejected[0][1]
    assert s.count() == 2


def test_forks_are_both_held() -> None:
    """Two events with the same (author, body, seq) are a fork: both are kept
    (consensus names the author); the store does not pick one."""
    s = Store.memory()
    k = KEYS[0]
    f = author_event(s, k, body=None, data=Found(body_kind="community", name="N"), ts=1000)
    a = sign_event(k, body=f.id, ts=2000, seq=2, prev=[f.id], data=Vote(target=f.id, choice="yes"))
    b = sign_event(k, body=f.id, ts=2001, seq=2, prev=[f.id], data=Vote(target=f.id, choice="abstain"))
    r = s.ingest([a, b])
    assert sorted(r.accepted) == sorted([a.id, b.id])


def test_future_events_are_deferred_not_stored() -> None:
    s = Store.memory()
    f = sign_event(KEYS[0], body=None, ts=10_000_000, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    r = s.ingest([f], now_ms=1_000, max_skew_ms=300_000)
    assert r.deferred == [f.id] and s.count() == 0
    r = s.ingest([f], now_ms=10_000_000, max_skew_ms=300_000)
    assert r.accepted == [f.id]


def test_failed_ingest_leaves_nothing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    evs = meeting([(1, "yes")])
    s = Store.memory()
    s.ingest(evs[:2])
    before = snapshot(s)

    def boom(new):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(s, "_resolve", boom)
    with pytest.raises(sqlite3.OperationalError):
        s.ingest(evs)
    assert snapshot(s) == before


def test_outbox_and_migrations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Store.open(tmp_path / "s.sqlite3")
    f = author_event(s, KEYS[0], body=None, data=Found(body_kind="community", name="N"), ts=1, local=True)
    assert s.outbox() == [f.id]
    s.outbox_done([f.id])
    assert s.outbox() == []
    s.close()
    s = Store.open(tmp_path / "s.sqlite3")  # reopening applies no migration twice
    assert [r[0] for r in s.conn.execute("SELECT version FROM migrations")] == [v for v, _, _ in MIGRATIONS]
    assert s.integrity_ok()
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_snapshot_reads_one_state_and_a_write_ends_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A command's checks read one state (Store.snapshot): another process's write in
    between is not seen until the snapshot ends, and the signing step (atomic) always
    starts from the newest state. This is what keeps one person's concurrent votes from
    looking like a fork of their own chain (tests/test_store_author.py)."""
    a, b = Store.open(tmp_path / "s.sqlite3"), Store.open(tmp_path / "s.sqlite3")
    b.conn.execute("CREATE TABLE t (x INTEGER)")
    b.conn.execute("INSERT INTO t VALUES (1)")

    def count(s: Store) -> int:
        return int(s.conn.execute("SELECT count(*) FROM t").fetchone()[0])

    with a.snapshot():
        assert count(a) == 1
        b.conn.execute("INSERT INTO t VALUES (2)")
        with a.snapshot():  # nested: the same view
            assert count(a) == 1
        assert count(a) == 1
        with a.atomic():  # a write ends the snapshot and sees the newest state
            assert count(a) == 2
    assert count(a) == 2 and not a.conn.in_transaction
    with a.snapshot():
        pass
    assert not a.conn.in_transaction
