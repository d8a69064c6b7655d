"""Whole-store operations: an online backup and a full verification.

* :func:`backup` copies the database with SQLite's online backup API, in one
  read transaction, so the copy is a consistent snapshot even while the
  daemon writes (WAL readers do not block writers). The copy is written next
  to its destination and renamed into place: a failed backup leaves no file.
* :func:`checkpoint` folds the write-ahead log into the database file and
  empties it (``PRAGMA wal_checkpoint(TRUNCATE)``), so the file's size is
  the store's (e.g. for measuring it).
* :func:`verify` runs ``PRAGMA integrity_check`` and decodes every stored
  event again as if it came from outside (shape, canonical form, Ed25519
  signature), checking its id and indexed columns against its bytes.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol.errors import LocalError, Rejected
from ..protocol.events import decode_event
from .db import RESTORE_HINT, DamagedStore, Store, StoreError, _target, damaged, translate
from .reads import bulk

__all__ = ["backup", "checkpoint", "verify", "verify_file", "VerifyReport"]


def checkpoint(store: Store) -> None:
    """Write the WAL's pages into the database file and truncate the WAL."""
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def backup(store: Store, dest: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Copy the store to ``dest`` (a single self-contained SQLite file).

    Refuses to overwrite an existing file unless ``force``. Returns
    ``{"file", "bytes", "events"}``.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise LocalError(f"{dest} is a directory", hint="give the backup file's name, e.g. imier-backup.sqlite3")
    if dest.exists() and not force:
        raise LocalError(f"{dest} already exists; refusing to overwrite it", hint="--force replaces it")
    if not dest.parent.is_dir():
        raise LocalError(f"no such directory {dest.parent}")
    if store.path is not None and dest.resolve() == Path(store.path).resolve():
        raise LocalError("the backup cannot be the store itself")
    tmp = dest.with_name(dest.name + ".tmp")
    stage = "copy"
    try:
        tmp.unlink(missing_ok=True)  # a leftover of a backup that was killed
        # Made here, 0600 like the store (SQLite would make it 0644), and empty:
        # SQLite takes a zero-length file as a new database.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            store.conn.backup(target)  # all pages in one step: one consistent snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            stage = "check"  # the copy holds the source's pages: a damaged page shows here
            problems = [str(r[0]) for r in target.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise damaged(store.path, " ".join("; ".join(problems).split())[:200])
            events = int(target.execute("SELECT count(*) FROM events").fetchone()[0])
            stage = "copy"
        finally:
            target.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except DamagedStore as exc:
        tmp.unlink(missing_ok=True)
        raise DamagedStore(exc.message.replace("; nothing was written", "; no backup was made"),
                           hint=exc.hint) from None
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.Error):
            if stage == "check" and isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc):
                raise DamagedStore(f"the store {store.path} is damaged ({exc}); no backup was made",
                                   hint=RESTORE_HINT) from None
            err = translate(exc, dest)
            if err is not None:
                raise err from None
            raise StoreError(f"backup to {dest} failed: {exc}") from None
        raise LocalError(f"cannot write {dest}: {exc.strerror}; no backup was made") from None
    return {"file": str(dest), "bytes": dest.stat().st_size, "events": events}


@dataclass
class VerifyReport:
    integrity: list[str] = field(default_factory=list)  # PRAGMA integrity_check's complaints
    events: int = 0
    accepted: int = 0
    pending: int = 0
    bad: list[dict[str, str]] = field(default_factory=list)  # events that fail verification

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.bad

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "integrity": self.integrity or ["ok"], "events": self.events,
                "accepted": self.accepted, "pending": self.pending, "bad_events": len(self.bad),
                "bad": self.bad[:1000]}


def verify(store: Store) -> VerifyReport:
    """Check the database file and every stored event's signature, id and columns."""
    rep = VerifyReport()
    rep.integrity = _integrity(store.conn)
    try:
        cols = store.conn.execute(
            "SELECT id, body, author, kind, ts, seq, target, state, raw FROM events")
        with bulk():
            for eid, body, author, kind, ts, seq, target, state, raw in cols:
                rep.events += 1
                if not isinstance(eid, bytes) or not isinstance(raw, bytes):
                    # A damaged page reads as NULLs (or numbers) where bytes were stored.
                    rep.bad.append({"id": eid.hex() if isinstance(eid, bytes) else f"row {rep.events}",
                                    "code": "unreadable",
                                    "reason": "the row cannot be read (a damaged page of the store)"})
                    if not rep.integrity:
                        rep.integrity = ["a row of the events table cannot be read"]
                    continue
                if state == 1:
                    rep.accepted += 1
                else:
                    rep.pending += 1
                try:
                    ev = decode_event(raw)
                except Rejected as exc:
                    rep.bad.append({"id": eid.hex(), "code": exc.code, "reason": str(exc)})
                    continue
                if ev.id != eid:
                    rep.bad.append({"id": eid.hex(), "code": "id_mismatch",
                                    "reason": f"its bytes hash to {ev.id.hex()}"})
                elif (ev.body_id, ev.author, ev.kind, ev.ts, ev.seq, _target(ev)) != (
                        body, author, kind, ts, seq, target):
                    rep.bad.append({"id": eid.hex(), "code": "columns",
                                    "reason": "the indexed columns differ from the event's bytes"})
    except sqlite3.Error as exc:
        line = f"cannot read the store: {exc}"
        if line not in rep.integrity:
            rep.integrity.append(line)
    return rep


def verify_file(path: str | Path) -> VerifyReport:
    """For a store that cannot be opened as one (damaged): SQLite's integrity check
    alone, on a read-only connection, so the damage is reported and nothing written."""
    rep = VerifyReport()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        rep.integrity = [f"cannot read the store: {exc}"]
    else:
        try:
            rep.integrity = _integrity(conn)
        finally:
            conn.close()
    if not rep.integrity:  # the file is sound, but not as a store (its record is gone)
        rep.integrity = ["the database file is sound but Imier's record of its migrations is not"]
    return rep


def _integrity(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check``'s complaints, one line each (none: sound). A damaged
    root page can make the full check itself fail; then ``quick_check`` says where."""
    for pragma in ("integrity_check(100)", "quick_check(100)"):
        try:
            rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}")]
        except sqlite3.DatabaseError as exc:
            last = f"cannot read the store: {exc}"
            continue
        return [] if rows == ["ok"] else [" ".join(r.split()) for r in rows]
    return [last]
