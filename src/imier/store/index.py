"""Targeted reads for one proposal, and the table of kept results.

`imier status P` and the phase check of `imier vote` read only what P's
tally needs, found through indexes, never the whole history:

* the *base* of P's body closure: every event of those bodies that is not
  aimed at something (``found``, ``admit``, ``leave``, ``part``,
  ``propose`` and any kind added later: ``seal``, ``profile``, ``link``...);
* the events aimed at P, and at the events aimed at P (votes on its
  amendments and recalls): two levels of the ``target`` column;
* the same two levels under every *structural* proposal of the closure
  (any kind but ``general``: a charter change, a renewal, a mandate...),
  since their outcomes decide charters, committees and tellers;
* fork evidence: every held event that shares ``(body, author, seq)``
  with another, kept in ``fork_twins`` by an incremental scan of new rows.

Invariants:

1. Everything here is a read of accepted events (``state = 1``). What it
   derives (``fork_twins``, ``kept``, ``index_meta``) lives in a cache file
   beside the store (``kept.sqlite3``), never in the store itself: deleting
   it loses nothing, and a command refused for bad input leaves the store's
   bytes as they were.
2. A fingerprint is a digest of ``(count, sum of rowids, max rowid)`` of
   each set of accepted events read. Accepted events are never deleted and
   every event gets a new rowid, so the digest changes whenever an event
   joins a set (a pending event accepted later included).
3. The two indexes on ``events`` are created by the first `imier status`
   with ``IF NOT EXISTS`` (no schema migration: a store without them still
   opens and works, it only reads more).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys

from ..protocol.errors import ImierError
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..protocol.events import Event, Propose, decode_stored
from .db import bulk

if TYPE_CHECKING:
    from .db import Store

__all__ = [
    "AIMED_KINDS",
    "ensure",
    "base_kinds",
    "aimed_ids",
    "aimed_after",
    "arrived_rows",
    "kind_events",
    "Slim",
    "Reads",
]

# Kinds that point at another event through ``target``: a body's record holds
# many of them (votes), and only those aimed at a proposal matter for it.
AIMED_KINDS = ("vote", "amend", "stand", "withdraw", "recall")

# On the event store itself: two indexes (created by `imier status`, never by the
# phase check of a write command, which must leave the store's bytes alone).
INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_body_kind ON events(body, kind, state)",
    "CREATE INDEX IF NOT EXISTS events_target_kind ON events(target, kind, state) "
    "WHERE target IS NOT NULL",
    # Store.bodies() (every status lists them) without a scan of every event.
    "CREATE INDEX IF NOT EXISTS events_found ON events(ts, id) WHERE kind = 'found' AND state = 1",
)
# In the cache file beside the store (``kept.sqlite3``): derived, never an event.
# Losing it loses nothing: every row is recomputed from the store on demand.
CACHE = (
    "CREATE TABLE IF NOT EXISTS fork_twins (body BLOB NOT NULL, author BLOB NOT NULL, "
    "seq INTEGER NOT NULL, PRIMARY KEY (body, author, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS kept (proposal BLOB PRIMARY KEY, fp BLOB NOT NULL, "
    "aimed BLOB NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, result BLOB NOT NULL, "
    "who BLOB NOT NULL)",
)
CACHE_NAME = "kept.sqlite3"


def ensure(store: "Store", *, indexes: bool = True) -> sqlite3.Connection:
    """The cache connection of ``store`` (opened once), and the store's indexes if
    ``indexes`` and missing."""
    if indexes and not getattr(store, "_index_ready", False):
        have = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        if not {"events_body_kind", "events_target_kind", "events_found"} <= have:
            try:
                with store.atomic() as c:
                    for stmt in INDEXES:
                        c.execute(stmt)
            except (sqlite3.Error, ImierError):
                pass  # a read-only store or a full disk: every read still works, only slower
        store._index_ready = True  # type: ignore[attr-defined]
    cache: sqlite3.Connection | None = getattr(store, "_kept_conn", None)
    if cache is None:
        main = next((r[2] for r in store.conn.execute("PRAGMA database_list") if r[1] == "main"), "")
        path = str(Path(main).with_name(CACHE_NAME)) if main else ":memory:"
        try:
            # Used by whichever thread uses the store (the page's server runs store work
            # in trio's worker threads, one at a time per store): not bound to this one,
            # or every call from another thread fails (decisions.md 57).
            cache = sqlite3.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
            if main:
                cache.execute("PRAGMA journal_mode=WAL")
                cache.execute("PRAGMA synchronous=NORMAL")  # a lost cache row is only recomputed
            for stmt in CACHE:
                cache.execute(stmt)
        except sqlite3.Error:
            cache = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            for stmt in CACHE:
                cache.execute(stmt)
        store._kept_conn = cache  # type: ignore[attr-defined]
    return cache


def base_kinds() -> tuple[str, ...]:
    """Every event kind the protocol knows that is not aimed at another event."""
    from ..protocol import events as E

    kinds = set(getattr(E, "PAYLOADS", {}).keys()) or {"found", "admit", "leave", "part", "propose"}
    kinds |= {"found", "admit", "leave", "part", "propose", "profile", "link", "unlink"}
    return tuple(sorted(kinds - set(AIMED_KINDS)))


def _q(n: int) -> str:
    return ",".join("?" * n)


def aimed_ids(conn: sqlite3.Connection, target: bytes) -> list[bytes]:
    """Ids of accepted amendments and recalls aimed at ``target`` (their votes are level 2)."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM events WHERE target = ? AND kind IN ('amend', 'recall') AND state = 1",
        (target,))]


def kind_events(conn: sqlite3.Connection, bodies: Iterable[bytes], kind: str) -> list[Event]:
    """Accepted events of one kind in these bodies (their profiles, their proposals), by body
    in sorted order (no cache, no index created: any command may call it)."""
    out: list[Event] = []
    for b in sorted(set(bodies)):
        out.extend(decode_stored(r[0]) for r in conn.execute(
            "SELECT raw FROM events WHERE body = ? AND kind = ? AND state = 1", (b, kind)))
    return out


def aimed_after(conn: sqlite3.Connection, target: bytes, n: int) -> list[tuple[str, int, int]]:
    """``(kind, ts, n)`` of the accepted events aimed at ``target`` stored after rowid ``n``."""
    return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(
        "SELECT kind, ts, n FROM events WHERE target = ? AND state = 1 AND n > ?", (target, n))]


def arrived_rows(conn: sqlite3.Connection, targets: Iterable[bytes], after_ms: int
                 ) -> Iterator[tuple[bytes, bytes, str, bytes, int, int]]:
    """``(id, author, kind, target, ts, arrived_ms)`` of the accepted events aimed at any
    of ``targets`` that reached this node after ``after_ms``, undecoded and streamed
    (imier.api.late tells a counted vote from its columns alone)."""
    for t in targets:
        for r in conn.execute(
                "SELECT id, author, kind, target, ts, arrived_ms FROM events "
                "WHERE target = ? AND state = 1 AND arrived_ms > ?", (t, after_ms)):
            yield r[0], r[1], r[2], r[3], int(r[4]), int(r[5])


class Slim:
    """Events decoded for a tally, in about half the memory: without their raw bytes and
    signature (a tally reads neither; the id is computed from the bytes first), and with
    the ids that repeat across a record (body, author, a vote's target, an admitted
    member, who then authors votes) and the choices shared between events. Only for a
    tally's inputs: such an event cannot be stored, sent or verified again."""

    def __init__(self, *, prev: bool = True) -> None:
        self.ids: dict[bytes, bytes] = {}
        self.prev = prev  # False: no seal in the record, so no causal view reads a prev

    def __call__(self, raw: bytes) -> Event:
        e = decode_stored(raw)
        ids = self.ids
        d = e.__dict__
        a = d["author"]
        d["author"] = ids.setdefault(a, a)
        b = d["body"]
        if b is not None:
            d["body"] = ids.setdefault(b, b)
        d["raw"] = b""
        d["sig"] = b""
        if not self.prev:
            d["prev"] = ()
        data = getattr(e.data, "__dict__", None)
        if data is not None:
            for k in ("target", "member"):
                v = data.get(k)
                if type(v) is bytes:
                    data[k] = ids.setdefault(v, v)
            c = data.get("choice")
            if type(c) is str:
                data["choice"] = sys.intern(c)
        return e


class Reads:
    """The targeted reads of one store, with the fingerprints of what they read."""

    def __init__(self, store: "Store", *, indexes: bool = True) -> None:
        self.cache = ensure(store, indexes=indexes)
        self.store = store
        self.conn = store.conn
        self._kinds = base_kinds()

    # -- fingerprints ------------------------------------------------------------------

    def body_fp(self, bodies: Iterable[bytes]) -> list[tuple[int, int, int]]:
        kinds = self._kinds
        q = (f"SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0) FROM events "
             f"WHERE body = ? AND kind IN ({_q(len(kinds))}) AND state = 1")
        return [tuple(self.conn.execute(q, (b, *kinds)).fetchone()) for b in sorted(set(bodies))]

    def target_fp(self, targets: Iterable[bytes]) -> tuple[int, int, int]:
        """(count, sum n, max n) of accepted events aimed at any of ``targets``."""
        c = s = m = 0
        for t in targets:
            row = self.conn.execute(
                "SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0) FROM events "
                "WHERE target = ? AND state = 1", (t,)).fetchone()
            c, s, m = c + row[0], s + row[1], max(m, row[2])
        return (c, s, m)

    def aimed_targets(self, pid: bytes) -> list[bytes]:
        """``pid`` and the amendments and recalls aimed at it: the targets of its events."""
        return [pid, *sorted(aimed_ids(self.conn, pid))]

    # -- reading events ---------------------------------------------------------------------

    def base_events(self, bodies: Iterable[bytes], slim: Slim | None = None) -> list[Event]:
        """The base events of these bodies (``slim``: decoded by it, for a tally)."""
        kinds = self._kinds
        q = f"SELECT raw FROM events WHERE body = ? AND kind IN ({_q(len(kinds))}) AND state = 1"
        out: list[Event] = []
        dec = slim or decode_stored
        with bulk():
            for b in sorted(set(bodies)):
                out.extend(dec(r[0]) for r in self.conn.execute(q, (b, *kinds)))
        return out

    def kind_events(self, bodies: Iterable[bytes], kind: str) -> list[Event]:
        """Accepted events of one kind in these bodies (e.g. their proposals)."""
        return kind_events(self.conn, bodies, kind)

    def aimed_events(self, targets: Sequence[bytes], slim: Slim | None = None) -> list[Event]:
        """Accepted events aimed at any of ``targets`` (``slim``: decoded by it, for a tally)."""
        out: list[Event] = []
        dec = slim or decode_stored
        with bulk():
            for t in targets:
                out.extend(dec(r[0]) for r in self.conn.execute(
                    "SELECT raw FROM events WHERE target = ? AND state = 1", (t,)))
        return out

    def structural(self, base: Iterable[Event]) -> list[bytes]:
        """Proposals among ``base`` whose outcome can change another proposal's tally."""
        return sorted(e.id for e in base
                      if isinstance(e.data, Propose) and e.data.proposal_kind != "general")

    # -- forks ------------------------------------------------------------------------------

    def _scan_forks(self) -> None:
        """Bring ``fork_twins`` up to the newest rowid: each new row is probed for a twin."""
        c = self.conn
        top = c.execute("SELECT coalesce(max(n), 0) FROM events").fetchone()[0]
        # The scan is tied to this store: a cache file beside another store starts again.
        first = c.execute("SELECT id FROM events ORDER BY n LIMIT 1").fetchone()
        row = self.cache.execute("SELECT value FROM index_meta WHERE key = 'forks_upto'").fetchone()
        upto = 0
        if row is not None:
            mark, at = row[0][:32], int.from_bytes(row[0][32:], "big")
            if first is not None and mark == first[0]:
                upto = at
            else:
                self._forget()
        if top <= upto:
            return
        found = c.execute(
            "SELECT DISTINCT e.body, e.author, e.seq FROM events e WHERE e.n > ? AND EXISTS "
            "(SELECT 1 FROM events f WHERE f.body = e.body AND f.author = e.author "
            "AND f.seq = e.seq AND f.n != e.n)", (upto,)).fetchall()
        mark = (first[0] if first is not None else b"\0" * 32) + top.to_bytes(8, "big")
        w = self.cache
        w.execute("BEGIN IMMEDIATE")
        try:
            w.executemany("INSERT OR IGNORE INTO fork_twins VALUES (?, ?, ?)", found)
            w.execute("INSERT OR REPLACE INTO index_meta VALUES ('forks_upto', ?)", (mark,))
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise

    def _forget(self) -> None:
        for t in ("fork_twins", "index_meta", "kept"):
            self.cache.execute(f"DELETE FROM {t}")

    def fork_rows(self, bodies: Iterable[bytes]) -> list[tuple[int, bytes]]:
        """``(n, raw)`` of every accepted event sharing ``(body, author, seq)`` with another
        accepted event, in these bodies."""
        self._scan_forks()
        out: list[tuple[int, bytes]] = []
        for b in sorted(set(bodies)):
            for author, seq in self.cache.execute(
                    "SELECT author, seq FROM fork_twins WHERE body = ?", (b,)).fetchall():
                rows = self.conn.execute(
                    "SELECT n, raw FROM events WHERE body = ? AND author = ? AND seq = ? AND state = 1",
                    (b, author, seq)).fetchall()
                if len(rows) > 1:
                    out.extend((r[0], r[1]) for r in rows)
        return sorted(out)

    # -- the kept results ----------------------------------------------------------------------

    def kept(self, pid: bytes) -> tuple[bytes, bytes, int, int, bytes] | None:
        row = self.cache.execute(
            "SELECT fp, aimed, lo, hi, result FROM kept WHERE proposal = ?", (pid,)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3], row[4])

    def who(self, pid: bytes) -> bytes | None:
        row = self.cache.execute("SELECT who FROM kept WHERE proposal = ?", (pid,)).fetchone()
        return None if row is None else row[0]

    def keep(self, rows: Sequence[tuple[bytes, bytes, bytes, int, int, bytes, bytes]]) -> None:
        if not rows:
            return
        c = self.cache
        try:
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT OR REPLACE INTO kept VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            c.execute("COMMIT")
        except sqlite3.Error:
            if c.in_transaction:  # a read-only, busy or full cache: not kept this time
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def forget(self) -> None:
        self.cache.execute("DELETE FROM kept")


def digest(parts: Iterable[object]) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x00")
    return h.digest()
