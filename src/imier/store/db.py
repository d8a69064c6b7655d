"""The SQLite event store: the single source of truth on a node.

Invariants (checked by tests/test_store.py):

1. ``events`` holds only events that passed :func:`imier.protocol.decode_event`
   (shape, canonical form, signature). Raw bytes are stored as received, and
   read back with :func:`~imier.protocol.events.decode_stored`, which relies
   on this and checks nothing again.
2. An event is *accepted* (``state = 1``) iff every id in its ``prev`` is an
   accepted event of the same body with a timestamp ``<=`` its own, (for
   ``seq > 1``) one of them is the author's event with ``seq - 1``, and its
   author may write in the body (docs/rules.md s.9.1). Otherwise it is
   *pending* (``state = 0``) while a prev is missing, and refused (never
   stored) once its prevs show it invalid or its author inadmissible. The
   decision is :func:`imier.store.causality.resolve`, a pure function;
   acceptance is a function of the set of events held, so any arrival order
   gives the same accepted set (docs/rules.md s.8).
3. Every write happens inside :meth:`Store.atomic`; a failed call leaves the
   database as it was.
4. ``outbox`` lists locally made events the daemon has not yet published.
5. Schema changes are migrations (store/schema.py), each applied with its
   record in one transaction.
6. ``prev`` holds the prev edges of *pending* events only: exactly what is
   needed to find the events waiting on a new arrival, and what sync must
   still fetch. An accepted event's prevs are in its raw bytes.
7. ``persons`` and ``parts`` are exactly what the accepted events grant
   (causality.grants_of); they only grow. ``pending_from`` has one row per
   pending event (its source and size), so pending bytes are bounded per
   source and in total (docs/rules.md s.9.3): the oldest go first.
8. Every event records ``arrived_ms``, when it reached this node.

Reads are in store/reads.py, the schema in store/schema.py.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..protocol.errors import LocalError
from ..protocol.events import Amend, Event, Part, Recall, Stand, Vote, Withdraw, decode_stored
from .causality import (
    ACCEPTED, PENDING, Admission, Cand, Known, Refusal, cand_of, deps_of, resolve,
)
from .reads import Reads, bulk
from .schema import IMIER_TABLES, MIGRATIONS, PRAGMAS, migrate
from .sqlutil import select_in

__all__ = [
    "Store", "IngestResult", "PendingLimits", "StoreError", "DamagedStore", "damaged", "DEFAULT_MAX_SKEW_MS", "PENDING",
    "ACCEPTED", "PRAGMAS", "MIGRATIONS", "bulk", "open_read_only",
]

DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000


class StoreError(LocalError):
    """The database could not be read or written (full disk, I/O error, not a store)."""


#: Where a damaged store's reader is sent (the section of docs/operations.md).
RESTORE_HINT = "restore it from a backup (docs/operations.md, \"Restoring\") or run 'imier verify' for details"


class DamagedStore(StoreError):
    """The store is an SQLite file whose pages are damaged (``malformed``, a failed
    integrity check, Imier's tables without their record). Nothing was written."""


def damaged(path: str | Path | None, detail: str) -> DamagedStore:
    where = f"the store {path}" if path else "the store"
    return DamagedStore(f"{where} is damaged ({detail}); nothing was written", hint=RESTORE_HINT)


def translate(exc: sqlite3.Error, path: str | Path | None = None) -> StoreError | None:
    """A :class:`StoreError` saying what to do for the SQLite errors the world causes
    (None for the others, which are bugs and keep their traceback)."""
    msg = str(exc)
    where = f"the store {path}" if path else "the store"
    low = msg.lower()
    if "disk is full" in low or "database or disk is full" in low:
        return StoreError(f"{where}: the disk is full; nothing was written",
                          hint="free some space and run the command again")
    if "disk i/o error" in low:
        detail = "" if low == "disk i/o error" else f" ({msg})"
        return StoreError(f"{where}: disk I/O error{detail}; nothing was written",
                          hint="check the disk has space and the directory is writable, then retry")
    if "malformed" in low:
        return damaged(path, msg)
    if "file is not a database" in low:
        return StoreError(f"{where} is not a readable Imier store ({msg})",
                          hint="restore it from a backup ('imier backup' makes one), or move it away")
    if "unable to open database" in low or "readonly database" in low or "read-only" in low:
        return StoreError(f"cannot open {where} for writing ({msg})",
                          hint="check the path is a directory you can write to")
    if "database is locked" in low:
        return StoreError(f"{where} is busy (another process holds it for too long)",
                          hint="try again in a moment")
    return None


def check_schema(conn: sqlite3.Connection, path: str | Path) -> None:
    """Refuse, before anything is written, a file that is not an Imier store or is one
    whose record of migrations is gone (docs/operations.md, "When something is wrong").

    * no tables at all (a new or zero-length file, or ``migrations`` alone, left by a
      first migration that did not finish): a new store, migrated from the start;
    * tables but none of Imier's: another application's database; refused, untouched;
    * Imier's tables without the record of the migrations that made them (a damaged
      page): refused as damaged, never migrated over (``table events already exists``).
    Reads only (a read of the schema writes nothing to the file).
    """
    tables = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    others = tables - {"migrations"}
    if not others:
        return
    if not others & IMIER_TABLES:
        shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
        raise StoreError(f"{path} is not an Imier store: it is another SQLite database (tables {shown}); "
                         "it was left as it was",
                         hint="point --home or IMIER_HOME at an Imier node's home, or move the file away")
    done: set[int] = set()
    if "migrations" in tables:
        done = {r[0] for r in conn.execute("SELECT version FROM migrations") if isinstance(r[0], int)}
    if not done:
        raise damaged(path, "Imier's tables are there but not the record of their migrations")
    if 1 in done and "events" not in tables:
        raise damaged(path, "the events table is missing")


@dataclass(frozen=True)
class PendingLimits:
    """Bounds on pending events (prevs missing), docs/rules.md s.9.3."""

    total_bytes: int = 64 * 1024 * 1024
    per_source_bytes: int = 16 * 1024 * 1024


@dataclass
class IngestResult:
    """What one :meth:`Store.ingest` call did, per event id."""

    new: list[bytes] = field(default_factory=list)  # stored now (accepted or pending)
    held: list[bytes] = field(default_factory=list)  # already in the store
    pending: list[bytes] = field(default_factory=list)  # stored, waiting for prev events
    accepted: list[bytes] = field(default_factory=list)  # became countable now (incl. older pending)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)  # (id, reason)
    refusals: list[Refusal] = field(default_factory=list)  # the same, with code and field
    deferred: list[bytes] = field(default_factory=list)  # too far in the future: try later
    dropped: list[bytes] = field(default_factory=list)  # pending events dropped for the bounds


# The field naming the event an event is about, by payload type (indexed as ``target``).
_TARGET_FIELD: dict[type, str] = {
    Vote: "target", Amend: "proposal", Stand: "proposal", Withdraw: "proposal",
    Recall: "mandate", Part: "part",
}


def _target(ev: Event) -> bytes | None:
    name = _TARGET_FIELD.get(type(ev.data))
    return None if name is None else getattr(ev.data, name)


def _connect(path: Path, *, read_only: bool = False, threads: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
    return sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=not threads)


class Store(Reads):
    """One node's events. Not thread-safe; one per process/task."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path | None = None, admission: bool = True) -> None:
        self.conn = conn
        self.path = path
        # False only for test worlds that hand consensus what a node would refuse
        # (outsiders' events), to test consensus's own defences; causality still holds.
        self.check_admission = admission
        self._depth = 0
        self._snap = False
        self._adm: Admission | None = None
        self._adm_dv = -1
        migrate(self)

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, threads: bool = False) -> "Store":
        """The store at ``path``, migrated. ``threads``: the connection may be used from
        other threads than this one (one at a time, e.g. a pool of worker threads)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise LocalError(f"no such directory {path.parent}", hint="run 'imier init' first")
        if path.exists() and not path.is_file():
            raise StoreError(f"{path} is not a file", hint="move it away; it should be the node's store")
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(path, threads=threads)
            check_schema(conn, path)  # before any pragma writes to another application's file
            for pragma in PRAGMAS:
                conn.execute(pragma)
            return cls(conn, path=path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            err = translate(exc, path)
            if err is None:
                raise
            raise err from None

    @classmethod
    def memory(cls, *, admission: bool = True) -> "Store":
        """A store in memory. ``admission=False`` takes events by anyone (docs/rules.md
        s.9.1 off): only for worlds built to test that consensus ignores them."""
        return cls(sqlite3.connect(":memory:", isolation_level=None), admission=admission)

    def small_cache(self) -> None:
        """SQLite's default page cache (2 MiB) on this connection, for a command that
        only reads (``imier status``): the 32 MiB of :data:`PRAGMAS` are for imports, and
        a status that streams every vote of a town would fill them (30 MB of its RSS)."""
        self.conn.execute("PRAGMA cache_size=-2000")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view for a series of reads: a deferred read transaction,
        so every read inside sees the store as it was at the first one, whatever
        other processes write meanwhile (a command's checks read the draft's
        ``seq`` and the events it is tallied with from the same state).

        :meth:`atomic` ends it before it writes (a write always starts from the
        newest state). Nested calls, and calls inside :meth:`atomic`, do nothing.
        """
        if self._snap or self._depth or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        self._snap = True
        try:
            yield
        finally:
            self._end_snapshot()

    def _end_snapshot(self) -> None:
        if self._snap:
            self._snap = False
            if self.conn.in_transaction:
                try:
                    self.conn.execute("COMMIT")  # nothing was written: this only ends the read
                except sqlite3.Error:
                    pass

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction (``BEGIN IMMEDIATE``: the write lock from the start);
        nested calls become savepoints.

        A failure rolls back only what is still open (SQLite ends the
        transaction itself on a full disk, and a second ROLLBACK would hide
        the first error); an SQLite error the world causes (full disk, I/O)
        becomes one :class:`StoreError` saying what to do.
        """
        name = f"sp{self._depth}"
        if self._depth == 0:
            self._end_snapshot()
        try:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
            else:
                self.conn.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            err = translate(exc, self.path)
            if err is None:
                raise
            raise err from None
        self._depth += 1
        try:
            yield self.conn
        except BaseException as exc:
            self._depth -= 1
            self._adm = None  # the in-memory admission may hold what is rolled back
            if self.conn.in_transaction:
                try:
                    if self._depth == 0:
                        self.conn.execute("ROLLBACK")
                    else:
                        self.conn.execute(f"ROLLBACK TO {name}")
                        self.conn.execute(f"RELEASE {name}")
                except sqlite3.Error:
                    pass  # the first error is the one to report
            if self._depth == 0 and isinstance(exc, sqlite3.Error):
                err = translate(exc, self.path)
                if err is not None:
                    raise err from None
            raise
        else:
            self._depth -= 1
            try:
                if self._depth == 0:
                    self.conn.execute("COMMIT")
                else:
                    self.conn.execute(f"RELEASE {name}")
            except sqlite3.Error as exc:
                self._adm = None
                if self._depth == 0 and self.conn.in_transaction:
                    try:
                        self.conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                err = translate(exc, self.path)
                if err is None:
                    raise
                raise err from None

    # -- admission -----------------------------------------------------------------

    def admission(self) -> Admission:
        """Who may write in which body, in memory, loaded body by body as needed.

        Kept across calls; reloaded when another connection committed
        (``PRAGMA data_version``), since it may have admitted someone.
        """
        dv = self.data_version()
        if self._adm is None or dv != self._adm_dv:
            conn = self.conn

            def load(body: bytes) -> tuple[list[bytes], list[bytes]]:
                return (
                    [r[0] for r in conn.execute("SELECT person FROM persons WHERE body = ?", (body,))],
                    [r[0] for r in conn.execute("SELECT part FROM parts WHERE body = ?", (body,))],
                )

            self._adm = Admission(load)
            self._adm_dv = dv
        return self._adm

    def admits(self, body: bytes, author: bytes) -> bool:
        """May ``author`` write (other than ``found``) in ``body``? (docs/rules.md s.9.1)"""
        return self.admission().admits(body, author)

    # -- ingest ------------------------------------------------------------------

    def ingest(
        self,
        events: Iterable[Event],
        *,
        now_ms: int | None = None,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
        local: bool = False,
        source: str = "",
        pending_limits: PendingLimits | None = None,
    ) -> IngestResult:
        """Store verified events in one transaction. Idempotent, order-independent.

        ``now_ms`` (the one clock reading, taken by the caller) defers events
        timestamped more than ``max_skew_ms`` ahead, and is recorded as their
        arrival. ``local`` puts new events in the outbox for the daemon to
        publish. ``source`` names where they came from (a peer, a bundle):
        pending events are bounded per source by ``pending_limits``.

        Acceptance is decided in memory before anything is written (see
        :meth:`_resolve`), so a new event is inserted once, with its final
        state, and a refused one is never inserted: a few statements per
        batch instead of several per event (docs/performance.md).

        Use :func:`imier.store.intake.take` for bytes from outside: it
        decodes and verifies first, and reports every outcome.
        """
        res = IngestResult()
        batch: dict[bytes, Event] = {}
        for ev in events:
            if now_ms is not None and ev.ts > now_ms + max_skew_ms:
                res.deferred.append(ev.id)
                continue
            batch.setdefault(ev.id, ev)
        if not batch:
            return res
        arrived = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.atomic() as c:
            held = self.held_ids(list(batch))
            new = [ev for eid, ev in batch.items() if eid not in held]
            res.held.extend(eid for eid in batch if eid in held)
            accepted, refusals = self._resolve(new)
            bad = {r.id for r in refusals}
            acc = set(accepted)
            keep = [ev for ev in new if ev.id not in bad]
            c.executemany(
                "INSERT INTO events (id, body, author, kind, ts, seq, target, state, raw, arrived_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (ev.id, ev.body_id, ev.author, ev.kind, ev.ts, ev.seq, _target(ev),
                     ACCEPTED if ev.id in acc else PENDING, ev.raw, arrived)
                    for ev in keep
                ],
            )
            pend = [ev for ev in keep if ev.id not in acc]
            if pend:
                # Only pending events keep their prev edges (rule 6), and their source (rule 7).
                c.executemany("INSERT INTO prev (id, prev) VALUES (?, ?)",
                              [(ev.id, p) for ev in pend for p in deps_of(ev)])
                c.executemany("INSERT INTO pending_from (id, source, size, arrived) VALUES (?, ?, ?, ?)",
                              [(ev.id, source, len(ev.raw), arrived) for ev in pend])
            if local:
                c.executemany("INSERT OR IGNORE INTO outbox VALUES (?, ?)",
                              [(ev.id, int(time.time() * 1000)) for ev in keep])
            res.accepted.extend(accepted)
            res.refusals.extend(refusals)
            res.rejected.extend((r.id, r.message) for r in refusals)
            res.new.extend(ev.id for ev in keep)
            res.pending.extend(ev.id for ev in pend)
            if pend and pending_limits is not None:
                res.dropped = self._bound_pending(pending_limits, source)
                if res.dropped:
                    gone = set(res.dropped)
                    res.pending = [e for e in res.pending if e not in gone]
                    res.new = [e for e in res.new if e not in gone]
        return res

    def _bound_pending(self, limits: PendingLimits, source: str) -> list[bytes]:
        """Drop the oldest pending events over the bounds (of ``source``, then in total)."""
        c = self.conn
        drop: list[bytes] = []
        over = self.pending_bytes(source) - limits.per_source_bytes
        if over > 0:
            for eid, size in c.execute(
                "SELECT id, size FROM pending_from WHERE source = ? ORDER BY arrived, id", (source,)
            ):
                if over <= 0:
                    break
                drop.append(eid)
                over -= size
        over = self.pending_bytes() - limits.total_bytes - sum(
            r[0] for r in select_in(c, "SELECT size FROM pending_from WHERE id IN ({})", drop))
        if over > 0:
            gone = set(drop)
            for eid, size in c.execute("SELECT id, size FROM pending_from ORDER BY arrived, id"):
                if over <= 0:
                    break
                if eid not in gone:
                    drop.append(eid)
                    over -= size
        if drop:
            rows = [(e,) for e in drop]
            c.executemany("DELETE FROM events WHERE id = ? AND state = 0", rows)
            c.executemany("DELETE FROM prev WHERE id = ?", rows)
            c.executemany("DELETE FROM pending_from WHERE id = ?", rows)
            c.executemany("DELETE FROM outbox WHERE id = ?", rows)
        return drop

    def _meta(self, ids: Iterable[bytes]) -> dict[bytes, Known]:
        """id -> (state, body, author, seq, ts) for the held ones."""
        return {
            r[0]: (r[1], r[2], r[3], r[4], r[5])
            for r in select_in(
                self.conn, "SELECT id, state, body, author, seq, ts FROM events WHERE id IN ({})", list(ids))
        }

    def _pending_children(self, parents: Sequence[bytes], skip: set[bytes]) -> set[bytes]:
        """Held pending events naming any of ``parents`` (not in ``skip``)."""
        return {r[0] for r in select_in(self.conn, "SELECT id FROM prev WHERE prev IN ({})", parents)
                if r[0] not in skip}

    def _resolve(self, new: list[Event]) -> tuple[list[bytes], list[Refusal]]:
        """Decide acceptance for ``new`` (not yet written) and for the held pending
        events that wait on them (transitively), and write the outcome for the held ones.

        The decision is :func:`~imier.store.causality.resolve`; this fetches its
        inputs and writes its outcome: refused held events are deleted here,
        refused new ones are simply not inserted; heads, persons and parts follow.
        """
        cand: dict[bytes, Cand] = {ev.id: cand_of(ev) for ev in new}
        stored: set[bytes] = set()  # candidates already in the events table (pending)
        # No pending event held (the usual case): nothing can wait on the batch.
        has_pending = self.conn.execute("SELECT 1 FROM prev LIMIT 1").fetchone() is not None
        frontier = list(cand) if has_pending else []
        while frontier:
            kids = self._pending_children(frontier, set(cand))
            if not kids:
                break
            for r in select_in(self.conn, "SELECT id, raw FROM events WHERE state = 0 AND id IN ({})", list(kids)):
                cand[r[0]] = cand_of(decode_stored(r[1]))
                stored.add(r[0])
            frontier = [k for k in kids if k in stored]
        # What is known of the prevs outside the candidates.
        known = self._meta({p for c in cand.values() for p in c.deps if p not in cand})
        adm = self.admission()
        out = resolve(cand, known, adm if self.check_admission else None)
        if not self.check_admission:  # still record who is a person, as a node would
            for e in out.accepted:
                ce = cand[e]
                if ce.grants or ce.names:
                    adm.grow(ce.body, ce.grants, ce.names)
        accepted, refusals = out.accepted, out.refused
        c = self.conn
        gone = [(r.id,) for r in refusals if r.id in stored]
        if gone:
            c.executemany("DELETE FROM events WHERE id = ?", gone)
            c.executemany("DELETE FROM prev WHERE id = ?", gone)
            c.executemany("DELETE FROM outbox WHERE id = ?", gone)
            c.executemany("DELETE FROM pending_from WHERE id = ?", gone)
        done = [(e,) for e in accepted if e in stored]
        if done:
            c.executemany("UPDATE events SET state = 1 WHERE id = ?", done)
            c.executemany("DELETE FROM prev WHERE id = ?", done)
            c.executemany("DELETE FROM pending_from WHERE id = ?", done)
        if adm.added_persons:
            c.executemany("INSERT OR IGNORE INTO persons VALUES (?, ?)", adm.added_persons)
            adm.added_persons = []
        if adm.added_parts:
            c.executemany("INSERT OR IGNORE INTO parts VALUES (?, ?)", adm.added_parts)
            adm.added_parts = []
        # heads: accepted events that no accepted event names. An event is
        # accepted only after all it names, so nothing accepted names the
        # events accepted now except each other.
        acc = set(accepted)
        named = {p for e in accepted for p in cand[e].prev}
        c.executemany(
            "DELETE FROM heads WHERE body = ? AND id = ?",
            [(cand[e].body, p) for e in accepted for p in cand[e].prev if p not in acc],
        )
        c.executemany(
            "INSERT INTO heads (body, id, ts) VALUES (?, ?, ?)",
            [(cand[e].body, e, cand[e].ts) for e in accepted if e not in named],
        )
        return accepted, refusals

    # -- outbox, follows, meta ----------------------------------------------------------

    def outbox_done(self, ids: Iterable[bytes]) -> None:
        with self.atomic() as c:
            c.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def follow(self, body: bytes) -> None:
        with self.atomic() as c:
            c.execute("INSERT OR IGNORE INTO follows VALUES (?, ?)", (body, int(time.time())))

    def set_meta(self, key: str, value: bytes) -> None:
        with self.atomic() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def open_read_only(path: str | Path) -> Store:
    """A store opened read-only (no migration, no write): for watching another
    node's store, e.g. the demo's ``holds``. Raises :class:`StoreError`."""
    path = Path(path)
    try:
        conn = _connect(path, read_only=True)
        conn.execute("SELECT 1 FROM events LIMIT 1")
    except sqlite3.Error as exc:
        raise translate(exc, path) or StoreError(f"cannot read the store {path}: {exc}") from None
    st = Store.__new__(Store)
    st.conn, st.path, st._depth, st._adm, st._adm_dv = conn, path, 0, None, -1
    st._snap = False
    st.check_admission = True
    return st
