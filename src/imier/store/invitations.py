"""Invitations: admissions of this node's people learnt from a peer, in bodies it does not hold.

An ``admit`` naming one of our people, authored by someone who is not on this
node, does not make the node hold the body (nodeapp/holding.py): anyone can
found a body and admit anyone, and holding it would store whatever its founder
writes. Such an admission is kept here instead, as an *invitation*, until a
person on the node accepts it with ``imier body follow NAME|PREFIX``.

The store is small and bounded: at most ``MAX_INVITATIONS`` (64), each
forgotten ``EXPIRY_MS`` (a lunar month, 29.53 days) after it was first learnt,
the oldest first when full. It lives in ``HOME/invitations.sqlite3``, beside
the store: nothing of the invited body is in the node's store until it is
followed. Reading never creates the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol.errors import LocalError
from .db import StoreError

__all__ = ["Invitation", "Invitations", "MAX_INVITATIONS", "EXPIRY_MS", "FILE_NAME"]

MAX_INVITATIONS = 64
EXPIRY_MS = 2_551_443_000  # a synodic month: 29 d 12 h 44 min 3 s
FILE_NAME = "invitations.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invitations (
    body BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    member BLOB NOT NULL,
    admitted_by BLOB NOT NULL,
    admit BLOB NOT NULL,
    peer TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Invitation:
    body: bytes  # the body's id (its founding event's id)
    name: str
    kind: str
    member: bytes  # our person's public key, named by the admit
    admitted_by: bytes  # the admit's author
    admit: bytes  # the admit's event id
    peer: str  # the peer id it was learnt from
    seen_ms: int  # when it was first learnt

    def expires_ms(self) -> int:
        return self.seen_ms + EXPIRY_MS

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body.hex(), "name": self.name, "kind": self.kind, "member": self.member.hex(),
                "admitted_by": self.admitted_by.hex(), "admit": self.admit.hex(), "peer": self.peer,
                "seen": self.seen_ms, "expires": self.expires_ms()}


class Invitations:
    """The node's invitations file (``HOME/invitations.sqlite3``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, store_path: Path | None) -> "Invitations | None":
        """The invitations of the node whose store is at ``store_path`` (None: a store in memory)."""
        return None if store_path is None else cls(Path(store_path).parent / FILE_NAME)

    @contextmanager
    def _db(self, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        """A connection (None when the file does not exist and ``create`` is false);
        SQLite's errors become one :class:`StoreError` naming the file."""
        if not create and not self.path.exists():
            yield None
            return
        try:
            con = sqlite3.connect(self.path, timeout=10)
            try:
                con.execute(_SCHEMA)
                yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise StoreError(f"the invitations file {self.path}: {exc}",
                             hint="free disk space, or move the file away (it only holds invitations)") from None

    def add(self, inv: Invitation, now_ms: int) -> bool:
        """Keep ``inv`` (first learnt wins); returns True when it is new. Bounded, expiring."""
        with self._db(create=True) as con:
            assert con is not None
            with con:
                con.execute("DELETE FROM invitations WHERE seen_ms <= ?", (now_ms - EXPIRY_MS,))
                if con.execute("SELECT 1 FROM invitations WHERE body = ?", (inv.body,)).fetchone():
                    return False
                n = int(con.execute("SELECT count(*) FROM invitations").fetchone()[0])
                if n >= MAX_INVITATIONS:
                    con.execute("DELETE FROM invitations WHERE body IN (SELECT body FROM invitations "
                                "ORDER BY seen_ms, body LIMIT ?)", (n - MAX_INVITATIONS + 1,))
                con.execute("INSERT INTO invitations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (inv.body, inv.name, inv.kind, inv.member, inv.admitted_by, inv.admit,
                             inv.peer, inv.seen_ms))
            return True

    def list(self, now_ms: int) -> list[Invitation]:
        """The invitations not yet expired, newest first."""
        with self._db(create=False) as con:
            if con is None:
                return []
            rows = con.execute("SELECT body, name, kind, member, admitted_by, admit, peer, seen_ms "
                               "FROM invitations WHERE seen_ms > ? ORDER BY seen_ms DESC, body",
                               (now_ms - EXPIRY_MS,)).fetchall()
        return [Invitation(*r) for r in rows]

    def find(self, ref: str, now_ms: int) -> Invitation | None:
        """The invitation named by ``ref`` (a body id, a unique id prefix of 4+ hex digits, or
        a unique name); None when none matches. Several matches: a LocalError naming them."""
        t = ref.strip()
        invs = self.list(now_ms)
        hits = [i for i in invs if i.name.lower() == t.lower()]
        if not hits and len(t) >= 4:
            low = t.lower()
            hits = [i for i in invs if i.body.hex().startswith(low)]
        if len(hits) > 1:
            names = ", ".join(f"{i.name} ({i.body.hex()[:12]})" for i in hits[:5])
            raise LocalError(f"{ref!r} names several invitations: {names}", hint="give more of the id")
        return hits[0] if hits else None

    def remove(self, body: bytes) -> None:
        with self._db(create=False) as con:
            if con is not None:
                with con:
                    con.execute("DELETE FROM invitations WHERE body = ?", (body,))
