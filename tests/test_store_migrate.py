"""store/: a store written by an older schema opens, migrates and keeps every event."""

from __future__ import annotations

import sqlite3

from imier.store import schema
from imier.store.db import Store

from .strategies import KEYS, meeting


def _v1_file(path, evs) -> None:  # type: ignore[no-untyped-def]
    """A store as a node of the first release wrote it (migration 1 only)."""
    ref = Store.memory()
    ref.ingest(evs)
    rows = ref.conn.execute("SELECT id, body, author, kind, ts, seq, target, state, raw FROM events").fetchall()
    prev = ref.conn.execute("SELECT id, prev FROM prev").fetchall()
    heads = ref.conn.execute("SELECT body, id, ts FROM heads").fetchall()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
    version, name, sql = schema.MIGRATIONS[0]
    assert isinstance(sql, str)
    for stmt in sql.split(";"):
        if stmt.strip():
            con.execute(stmt)
    con.execute("INSERT INTO migrations VALUES (?, ?, 0)", (version, name))
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO prev VALUES (?, ?)", prev)
    con.executemany("INSERT INTO heads VALUES (?, ?, ?)", heads)
    con.close()


def test_v1_store_migrates_with_every_event_and_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    evs = meeting([(1, "yes"), (2, "abstain"), (3, "yes")])
    path = tmp_path / "old.sqlite3"
    # evs[1] (the first admission) missing: what follows the founding waits, pending.
    _v1_file(path, evs[:1] + evs[2:])
    old = sqlite3.connect(path)
    before = sorted(old.execute("SELECT id, state, raw FROM events"))
    heads = sorted(old.execute("SELECT body, id, ts FROM heads"))
    old.close()
    s = Store.open(path)
    assert [r[0] for r in s.conn.execute("SELECT version FROM migrations")] == [v for v, _, _ in schema.MIGRATIONS]
    assert sorted(s.conn.execute("SELECT id, state, raw FROM events")) == before
    assert sorted(s.conn.execute("SELECT body, id, ts FROM heads")) == heads
    assert s.integrity_ok()
    assert s.persons(evs[0].id) == {bytes(KEYS[0].verify_key)}  # the founder, from the held events
    assert s.pending_bytes() == sum(len(e.raw) for e in evs[2:])
    assert s.arrived_ms(evs[0].id) is None  # stored before arrivals were recorded
    r = s.ingest(evs[1:2], now_ms=5_000)  # the missing one arrives: everything is accepted
    assert s.count(state=1) == len(evs) and len(r.accepted) == len(evs) - 1
    assert s.persons(evs[0].id) == {bytes(k.verify_key) for k in KEYS[:4]}
    assert s.pending_bytes() == 0 and s.arrived_ms(evs[1].id) == 5_000
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_migration_4_grants_only_what_admissible_events_grant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An admit held from before admission was checked, by a stranger, admits no one."""
    from imier.protocol.events import Admit, sign_event

    evs = meeting([(1, "yes")])
    stranger, friend = KEYS[5], KEYS[6]
    rogue = sign_event(stranger, body=evs[0].id, ts=evs[-1].ts + 1, seq=1, prev=[evs[-1].id],
                       data=Admit(member=bytes(friend.verify_key)))
    path = tmp_path / "old.sqlite3"
    _v1_file(path, evs)
    con = sqlite3.connect(path, isolation_level=None)  # as an old node stored it, unchecked
    con.execute("INSERT INTO events VALUES (?, ?, ?, 'admit', ?, 1, NULL, 1, ?)",
                (rogue.id, rogue.body_id, rogue.author, rogue.ts, rogue.raw))
    con.close()
    s = Store.open(path)
    assert bytes(friend.verify_key) not in s.persons(evs[0].id)
    assert bytes(stranger.verify_key) not in s.persons(evs[0].id)
    s.close()
