"""store/: a store written by an older schema opens, migrates and keeps every event."""

from __future__ import annotations

import sqlite3

from imier.store import db
from imier.store.db import Store

from .strategies import meeting


def test_v1_store_migrates_with_every_event_and_state(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    evs = meeting([(1, "yes"), (2, "abstain"), (3, "yes")])
    path = tmp_path / "old.sqlite3"
    # Write with migration 1 only, as a node of the first release did.
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
    old = Store.open(path)
    old.ingest(evs[:1] + evs[2:])  # evs[1] missing: the rest waits, pending
    old.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = sorted(old.conn.execute("SELECT id, state, raw FROM events"))
    heads = sorted(old.conn.execute("SELECT body, id, ts FROM heads"))
    old.close()
    monkeypatch.undo()
    s = Store.open(path)
    assert [r[0] for r in s.conn.execute("SELECT version FROM migrations")] == [1, 2]
    assert sorted(s.conn.execute("SELECT id, state, raw FROM events")) == before
    assert sorted(s.conn.execute("SELECT body, id, ts FROM heads")) == heads
    assert s.integrity_ok()
    r = s.ingest(evs[1:2])  # the missing one arrives: everything is accepted
    assert s.count(state=1) == len(evs) and len(r.accepted) == len(evs) - 1
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
