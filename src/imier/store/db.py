"""The SQLite event store: the single source of truth on a node.

Invariants (checked by tests/test_store.py):

1. ``events`` holds only events that passed :func:`imier.protocol.decode_event`
   (shape, canonical form, signature). Raw bytes are stored as received, and
   read back with :func:`~imier.protocol.events.decode_stored`, which relies
   on this and checks nothing again.
2. An event is *accepted* (``state = 1``) iff every id in its ``prev`` is an
   accepted event of the same body with a timestamp ``<=`` its own, and (for
   ``seq > 1``) one of them is the author's event with ``seq - 1``.
   Otherwise it is *pending* (``state = 0``) while a prev is missing, and
   refused (never stored) once its prevs show it invalid. Acceptance is a
   function of the set of events held, so any arrival order gives the same
   accepted set (DECISIONS.md s.8).
3. Every write happens inside :meth:`Store.atomic`; a failed call leaves the
   database as it was.
4. ``outbox`` lists locally made events the daemon has not yet published.
5. Schema changes are migrations, each applied with its record in one
   transaction.
6. ``prev`` holds the prev edges of *pending* events only: exactly what is
   needed to find the events waiting on a new arrival, and what sync must
   still fetch. An accepted event's prevs are in its raw bytes.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..protocol.errors import LocalError
from ..protocol.events import Amend, Event, Found, Part, Recall, Stand, Vote, Withdraw, decode_stored

__all__ = ["Store", "IngestResult", "DEFAULT_MAX_SKEW_MS", "PENDING", "ACCEPTED", "PRAGMAS", "bulk"]

PENDING = 0
ACCEPTED = 1
DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "events, prev edges, outbox, follows, meta",
        """
        CREATE TABLE events (
            id     BLOB PRIMARY KEY,
            body   BLOB NOT NULL,
            author BLOB NOT NULL,
            kind   TEXT NOT NULL,
            ts     INTEGER NOT NULL,
            seq    INTEGER NOT NULL,
            target BLOB,
            state  INTEGER NOT NULL,
            raw    BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX events_body_ts ON events(body, ts, id);
        CREATE INDEX events_target ON events(target) WHERE target IS NOT NULL;
        CREATE INDEX events_author_seq ON events(body, author, seq);
        CREATE TABLE prev (
            id   BLOB NOT NULL,
            prev BLOB NOT NULL,
            PRIMARY KEY (id, prev)
        ) WITHOUT ROWID;
        CREATE INDEX prev_by_prev ON prev(prev);
        CREATE TABLE heads (body BLOB NOT NULL, id BLOB NOT NULL, ts INTEGER NOT NULL,
                            PRIMARY KEY (body, id)) WITHOUT ROWID;
        CREATE TABLE outbox (id BLOB PRIMARY KEY, added INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE follows (body BLOB PRIMARY KEY, added INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
        """,
    ),
    (
        2,
        "events in a rowid table (appends instead of inserts into a tree keyed by random ids)",
        # Measured (docs/performance.md): a batch of 100k events inserts about
        # 1.6x faster, and takes ~13% less disk, than the WITHOUT ROWID table
        # keyed by id. Readers name columns, never the table's shape.
        """
        CREATE TABLE events2 (
            n      INTEGER PRIMARY KEY,
            id     BLOB NOT NULL UNIQUE,
            body   BLOB NOT NULL,
            author BLOB NOT NULL,
            kind   TEXT NOT NULL,
            ts     INTEGER NOT NULL,
            seq    INTEGER NOT NULL,
            target BLOB,
            state  INTEGER NOT NULL,
            raw    BLOB NOT NULL
        );
        INSERT INTO events2 (id, body, author, kind, ts, seq, target, state, raw)
            SELECT id, body, author, kind, ts, seq, target, state, raw FROM events ORDER BY ts, id;
        DROP TABLE events;
        ALTER TABLE events2 RENAME TO events;
        CREATE INDEX events_body_ts ON events(body, ts, id);
        CREATE INDEX events_target ON events(target) WHERE target IS NOT NULL;
        CREATE INDEX events_author_seq ON events(body, author, seq);
        DELETE FROM prev WHERE id IN (SELECT id FROM events WHERE state = 1);
        """,
    ),
]

# Connection settings of an on-disk store (the ingest benchmark's ceiling uses
# the same ones, so the ratio measures Imier's work, not configuration).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a commit that returned survives a power cut (nothing acknowledged is lost).
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # 32 MiB of page cache at most (the default 2 MiB makes a large import
    # write pages out and back several times). Grows only as used.
    "PRAGMA cache_size=-32768",
)


_ORDER = attrgetter("ts", "id")  # Event.order_key, by a C getter


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector around a large decode-and-ingest, or read.

    Decoding allocates several objects per event, none of them in a cycle;
    the collections those allocations trigger rescan the growing batch for
    nothing (5-10% of a 100k-event import, docs/performance.md). Reference
    counting still frees everything; the collector resumes on exit.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class IngestResult:
    """What one :meth:`Store.ingest` call did, per event id."""

    new: list[bytes] = field(default_factory=list)  # stored now (accepted or pending)
    held: list[bytes] = field(default_factory=list)  # already in the store
    pending: list[bytes] = field(default_factory=list)  # stored, waiting for prev events
    accepted: list[bytes] = field(default_factory=list)  # became countable now (incl. older pending)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)  # (id, reason)
    deferred: list[bytes] = field(default_factory=list)  # too far in the future: try later


# The field naming the event an event is about, by payload type (indexed as ``target``).
_TARGET_FIELD: dict[type, str] = {
    Vote: "target", Amend: "proposal", Stand: "proposal", Withdraw: "proposal",
    Recall: "mandate", Part: "part",
}


def _target(ev: Event) -> bytes | None:
    name = _TARGET_FIELD.get(type(ev.data))
    return None if name is None else getattr(ev.data, name)


class Store:
    """One node's events. Not thread-safe; one per process/task."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._depth = 0
        self._migrate()

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> "Store":
        path = Path(path)
        if not path.parent.is_dir():
            raise LocalError(f"no such directory {path.parent}", hint="run 'imier init' first")
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        for pragma in PRAGMAS:
            conn.execute(pragma)
        return cls(conn)

    @classmethod
    def memory(cls) -> "Store":
        return cls(sqlite3.connect(":memory:", isolation_level=None))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction; nested calls become savepoints."""
        name = f"sp{self._depth}"
        if self._depth == 0:
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute(f"RELEASE {name}")

    def _migrate(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        done = {r[0] for r in self.conn.execute("SELECT version FROM migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            with self.atomic() as c:
                for stmt in sql.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(
                    "INSERT INTO migrations VALUES (?, ?, ?)",
                    (version, name, int(time.time())),
                )

    # -- ingest ------------------------------------------------------------------

    def ingest(
        self,
        events: Iterable[Event],
        *,
        now_ms: int | None = None,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
        local: bool = False,
    ) -> IngestResult:
        """Store verified events in one transaction. Idempotent, order-independent.

        ``now_ms`` (the one clock reading, taken by the caller) defers events
        timestamped more than ``max_skew_ms`` ahead. ``local`` puts new
        events in the outbox for the daemon to publish.

        Acceptance is decided in memory before anything is written (see
        :meth:`_resolve`), so a new event is inserted once, with its final
        state, and a refused one is never inserted: a few statements per
        batch instead of several per event (docs/performance.md).
        """
        res = IngestResult()
        batch: dict[bytes, Event] = {}
        for ev in events:
            if now_ms is not None and ev.ts > now_ms + max_skew_ms:
                res.deferred.append(ev.id)
                continue
            batch.setdefault(ev.id, ev)
        with self.atomic() as c:
            held = self._held(list(batch))
            new = [ev for eid, ev in batch.items() if eid not in held]
            res.held.extend(eid for eid in batch if eid in held)
            accepted, rejected = self._resolve(new)
            bad = {eid for eid, _ in rejected}
            acc = set(accepted)
            keep = [ev for ev in new if ev.id not in bad]
            c.executemany(
                "INSERT INTO events (id, body, author, kind, ts, seq, target, state, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (ev.id, ev.body_id, ev.author, ev.kind, ev.ts, ev.seq, _target(ev),
                     ACCEPTED if ev.id in acc else PENDING, ev.raw)
                    for ev in keep
                ],
            )
            # Only pending events keep their prev edges (rule 6).
            c.executemany(
                "INSERT INTO prev (id, prev) VALUES (?, ?)",
                [(ev.id, p) for ev in keep if ev.id not in acc for p in ev.prev],
            )
            if local:
                now = int(time.time() * 1000)
                c.executemany("INSERT OR IGNORE INTO outbox VALUES (?, ?)", [(ev.id, now) for ev in keep])
            res.accepted.extend(accepted)
            res.rejected.extend(rejected)
            res.new.extend(ev.id for ev in keep)
            res.pending.extend(ev.id for ev in keep if ev.id not in acc)
        return res

    def _held(self, ids: Sequence[bytes]) -> set[bytes]:
        out: set[bytes] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT id FROM events WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(r[0] for r in self.conn.execute(q, chunk))
        return out

    def _meta(self, ids: Iterable[bytes]) -> dict[bytes, tuple[int, bytes, bytes, int, int]]:
        """id -> (state, body, author, seq, ts) for the held ones."""
        ids = list(ids)
        out: dict[bytes, tuple[int, bytes, bytes, int, int]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = (
                "SELECT id, state, body, author, seq, ts FROM events "
                f"WHERE id IN ({','.join('?' * len(chunk))})"
            )
            for r in self.conn.execute(q, chunk):
                out[r[0]] = (r[1], r[2], r[3], r[4], r[5])
        return out

    def _pending_children(self, parents: Sequence[bytes], skip: set[bytes]) -> dict[bytes, list[bytes]]:
        """Held pending events naming any of ``parents`` (not in ``skip``): id -> its prevs."""
        kids: set[bytes] = set()
        for i in range(0, len(parents), 500):
            chunk = parents[i : i + 500]
            q = f"SELECT id FROM prev WHERE prev IN ({','.join('?' * len(chunk))})"
            kids.update(r[0] for r in self.conn.execute(q, chunk) if r[0] not in skip)
        out: dict[bytes, list[bytes]] = {k: [] for k in kids}
        ks = list(kids)
        for i in range(0, len(ks), 500):
            chunk = ks[i : i + 500]
            q = f"SELECT id, prev FROM prev WHERE id IN ({','.join('?' * len(chunk))})"
            for r in self.conn.execute(q, chunk):
                out[r[0]].append(r[1])
        return out

    def _resolve(self, new: list[Event]) -> tuple[list[bytes], list[tuple[bytes, str]]]:
        """Decide rule 2 for ``new`` (not yet written) and for the held pending
        events that wait on them, and write the outcome for the held ones.

        Candidates are the new events plus every held pending event that
        names one of them, transitively. Acceptance follows prev edges in
        topological order (Kahn): an event is decided once all its prevs are
        decided, from the prevs' (state, body, author, seq, ts) alone, so the
        outcome does not depend on the order of arrival. Returns the ids
        accepted now and the ids refused (with a reason); refused held events
        are deleted here, refused new ones are simply not inserted.
        """
        # id -> (body, author, seq, ts, prevs) for every candidate
        cand: dict[bytes, tuple[bytes, bytes, int, int, Sequence[bytes]]] = {
            ev.id: (ev.body_id, ev.author, ev.seq, ev.ts, ev.prev) for ev in new
        }
        stored: set[bytes] = set()  # candidates already in the events table (pending)
        # No pending event held (the usual case): nothing can wait on the batch.
        has_pending = self.conn.execute("SELECT 1 FROM prev LIMIT 1").fetchone() is not None
        frontier = list(cand) if has_pending else []
        while frontier:
            kids = self._pending_children(frontier, set(cand))
            if not kids:
                break
            meta = self._meta(kids)
            for k, prevs in kids.items():
                m = meta.get(k)
                if m is None or m[0] == ACCEPTED:
                    continue
                cand[k] = (m[1], m[2], m[3], m[4], sorted(prevs))
                stored.add(k)
            frontier = [k for k in kids if k in stored]
        # What is known of the prevs outside the candidates.
        outside = {p for c in cand.values() for p in c[4] if p not in cand}
        known = self._meta(outside)  # (state, body, author, seq, ts)
        accepted: list[bytes] = []
        rejected: list[tuple[bytes, str]] = []

        def decide(eid: bytes) -> bool:
            """Rule 2 for ``eid``, whose prevs are all accepted; True if accepted."""
            body, author, seq, ts, prevs = cand[eid]
            other_body = early = own = own_prev = False
            for _, b, a, sq, t in map(known.__getitem__, prevs):
                if b != body:
                    other_body = True
                if t > ts:
                    early = True
                if a == author:
                    own = True
                    if sq == seq - 1:
                        own_prev = True
            reason = None
            if other_body:
                reason = "prev names an event of another body"
            elif early:
                reason = "timestamp is earlier than an event it names in prev"
            elif seq > 1 and not own_prev:
                reason = "prev does not name the author's previous event in the body"
            elif seq == 1 and own:
                reason = "seq 1 but prev names an earlier event of the same author"
            if reason is not None:
                rejected.append((eid, reason))
                return False  # its children keep waiting on a prev that is not held
            accepted.append(eid)
            known[eid] = (ACCEPTED, body, author, seq, ts)
            return True

        # Fast pass in (ts, id) order: a valid event's prevs are never later
        # in time, so almost every event finds its prevs decided already.
        rest: list[bytes] = []
        for eid in sorted(cand, key=lambda e: (cand[e][3], e)):
            for p in cand[eid][4]:
                m = known.get(p)
                if m is None or m[0] != ACCEPTED:
                    rest.append(eid)  # a prev undecided, missing, pending or refused
                    break
            else:
                decide(eid)
        # The others (a prev with the same ts and a greater id, or waiting):
        # Kahn's order over prev edges among them.
        left = set(rest)
        children: dict[bytes, list[bytes]] = {}
        waiting: dict[bytes, int] = {}
        ready: list[bytes] = []
        for eid in rest:
            n = 0
            blocked = False
            for p in cand[eid][4]:
                m = known.get(p)
                if m is not None and m[0] == ACCEPTED:
                    continue
                if p in left:
                    n += 1
                    children.setdefault(p, []).append(eid)
                else:
                    blocked = True  # stays pending until that prev is accepted
            if blocked:
                continue
            waiting[eid] = n
            if n == 0:
                ready.append(eid)
        while ready:
            eid = ready.pop()
            if not decide(eid):
                continue
            for k in children.get(eid, ()):
                if k in waiting:
                    waiting[k] -= 1
                    if waiting[k] == 0:
                        ready.append(k)
        c = self.conn
        gone = [(eid,) for eid, _ in rejected if eid in stored]
        if gone:
            c.executemany("DELETE FROM events WHERE id = ?", gone)
            c.executemany("DELETE FROM prev WHERE id = ?", gone)
            c.executemany("DELETE FROM outbox WHERE id = ?", gone)
        done = [(e,) for e in accepted if e in stored]
        c.executemany("UPDATE events SET state = 1 WHERE id = ?", done)
        c.executemany("DELETE FROM prev WHERE id = ?", done)
        # heads: accepted events that no accepted event names. An event is
        # accepted only after all it names, so nothing accepted names the
        # events accepted now except each other.
        acc = set(accepted)
        named = {p for e in accepted for p in cand[e][4]}
        c.executemany(
            "DELETE FROM heads WHERE body = ? AND id = ?",
            [(cand[e][0], p) for e in accepted for p in cand[e][4] if p not in acc],
        )
        c.executemany(
            "INSERT INTO heads (body, id, ts) VALUES (?, ?, ?)",
            [(cand[e][0], e, cand[e][3]) for e in accepted if e not in named],
        )
        return accepted, rejected

    # -- reading -------------------------------------------------------------------

    def get(self, eid: bytes) -> Event | None:
        row = self.conn.execute("SELECT raw FROM events WHERE id = ?", (eid,)).fetchone()
        return None if row is None else decode_stored(row[0])

    def state(self, eid: bytes) -> int | None:
        row = self.conn.execute("SELECT state FROM events WHERE id = ?", (eid,)).fetchone()
        return None if row is None else int(row[0])

    def has(self, eid: bytes) -> bool:
        return self.conn.execute("SELECT 1 FROM events WHERE id = ?", (eid,)).fetchone() is not None

    def find_prefix(self, prefix: bytes) -> list[bytes]:
        """Ids starting with ``prefix`` (for short ids typed by people)."""
        hi = prefix + b"\xff" * (32 - len(prefix))
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM events WHERE id >= ? AND id <= ? LIMIT 5", (prefix, hi)
        )]

    def raw_many(self, ids: Sequence[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            q = f"SELECT raw FROM events WHERE id IN ({','.join('?' * len(chunk))})"
            out.extend(r[0] for r in self.conn.execute(q, chunk))
        return out

    def events_for_bodies(self, bodies: Iterable[bytes], *, include_pending: bool = False) -> list[Event]:
        """Accepted events of these bodies, in ``(ts, id)`` order."""
        out: list[Event] = []
        q = "SELECT raw FROM events WHERE body = ?" + ("" if include_pending else " AND state = 1")
        with bulk():  # many acyclic objects: no collections (see bulk)
            for b in sorted(set(bodies)):
                out.extend(decode_stored(r[0]) for r in self.conn.execute(q, (b,)))
            out.sort(key=_ORDER)
        return out

    def all_events(self, *, include_pending: bool = False) -> list[Event]:
        q = "SELECT raw FROM events" + ("" if include_pending else " WHERE state = 1")
        q += " ORDER BY ts, id"
        with bulk():
            return [decode_stored(r[0]) for r in self.conn.execute(q)]

    def raw_for_bodies(self, bodies: Iterable[bytes] | None) -> Iterator[bytes]:
        """Raw bytes of every held event (pending included) of these bodies, or all."""
        if bodies is None:
            yield from (r[0] for r in self.conn.execute("SELECT raw FROM events ORDER BY ts, id"))
            return
        for b in sorted(set(bodies)):
            yield from (
                r[0] for r in self.conn.execute(
                    "SELECT raw FROM events WHERE body = ? ORDER BY ts, id", (b,)
                )
            )

    def items(self, bodies: Iterable[bytes]) -> list[tuple[int, bytes]]:
        """``(ts, id)`` of every held event of these bodies, sorted: the set sync reconciles."""
        out: list[tuple[int, bytes]] = []
        for b in sorted(set(bodies)):
            out.extend(
                (r[0], r[1]) for r in self.conn.execute(
                    "SELECT ts, id FROM events WHERE body = ?", (b,)
                )
            )
        out.sort()
        return out

    def count(self, *, state: int | None = None) -> int:
        if state is None:
            return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(self.conn.execute("SELECT count(*) FROM events WHERE state = ?", (state,)).fetchone()[0])

    def bodies(self) -> list[Event]:
        """The founding events of every body held (accepted), oldest first."""
        return [
            decode_stored(r[0])
            for r in self.conn.execute(
                "SELECT raw FROM events WHERE kind = 'found' AND state = 1 ORDER BY ts, id"
            )
        ]

    def closure(self, body: bytes) -> set[bytes]:
        """``body`` and every body ever named as its part, recursively, and the parent
        of every committee among them (a superset of the bodies whose events a tally
        of ``body`` needs: a committee lives until its parent stops renewing it)."""
        out: set[bytes] = set()
        todo = [body]
        while todo:
            b = todo.pop()
            if b in out:
                continue
            out.add(b)
            found = self.get(b)
            if found is not None and isinstance(found.data, Found):
                todo.extend(found.data.parts)
                if found.data.parent is not None:  # a committee's renewals are decided there
                    todo.append(found.data.parent)
            for r in self.conn.execute(
                "SELECT target FROM events WHERE body = ? AND kind = 'part' AND state = 1", (b,)
            ):
                todo.append(r[0])
        return out

    def parents(self, body: bytes) -> set[bytes]:
        """Federations that name ``body`` as a part (founding or part events)."""
        out: set[bytes] = set()
        for r in self.conn.execute(
            "SELECT body FROM events WHERE kind = 'part' AND target = ? AND state = 1", (body,)
        ):
            out.add(r[0])
        for f in self.bodies():
            if isinstance(f.data, Found) and body in f.data.parts:
                out.add(f.id)
        return out

    def heads(self, body: bytes) -> list[tuple[int, bytes]]:
        """Accepted events of ``body`` that no accepted event names in its prev, newest first."""
        rows = self.conn.execute(
            "SELECT ts, id FROM heads WHERE body = ? ORDER BY ts DESC, id DESC", (body,)
        )
        return [(r[0], r[1]) for r in rows]

    def last_own(self, body: bytes, author: bytes) -> tuple[int, bytes, int] | None:
        """``(seq, id, ts)`` of the author's newest event in ``body`` (held, any state)."""
        row = self.conn.execute(
            "SELECT seq, id, ts FROM events WHERE body = ? AND author = ? ORDER BY seq DESC LIMIT 1",
            (body, author),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def events_targeting(self, target: bytes) -> list[Event]:
        return [
            decode_stored(r[0])
            for r in self.conn.execute(
                "SELECT raw FROM events WHERE target = ? AND state = 1 ORDER BY ts, id", (target,)
            )
        ]

    # -- outbox and follows ----------------------------------------------------------

    def outbox(self, limit: int = 256) -> list[bytes]:
        return [r[0] for r in self.conn.execute(
            "SELECT o.id FROM outbox o ORDER BY o.added, o.id LIMIT ?", (limit,)
        )]

    def outbox_done(self, ids: Iterable[bytes]) -> None:
        with self.atomic() as c:
            c.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def follow(self, body: bytes) -> None:
        with self.atomic() as c:
            c.execute("INSERT OR IGNORE INTO follows VALUES (?, ?)", (body, int(time.time())))

    def follows(self) -> list[bytes]:
        return [r[0] for r in self.conn.execute("SELECT body FROM follows ORDER BY body")]

    def get_meta(self, key: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: bytes) -> None:
        with self.atomic() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def integrity_ok(self) -> bool:
        return bool(self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
