"""Reading the store: every query that changes nothing (mixed into :class:`~imier.store.db.Store`)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
import gc
from operator import attrgetter
from typing import Iterable, Iterator, Sequence

from ..protocol.events import Event, Found, decode_stored
from .causality import ACCEPTED
from .sqlutil import select_in

__all__ = ["Reads", "bulk"]

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


class Reads:
    """The read side of a store; ``conn`` is the store's connection."""

    conn: sqlite3.Connection

    # -- one event -------------------------------------------------------------

    def get(self, eid: bytes) -> Event | None:
        row = self.conn.execute("SELECT raw FROM events WHERE id = ?", (eid,)).fetchone()
        return None if row is None else decode_stored(row[0])

    def state(self, eid: bytes) -> int | None:
        row = self.conn.execute("SELECT state FROM events WHERE id = ?", (eid,)).fetchone()
        return None if row is None else int(row[0])

    def has(self, eid: bytes) -> bool:
        return self.conn.execute("SELECT 1 FROM events WHERE id = ?", (eid,)).fetchone() is not None

    def is_accepted(self, eid: bytes) -> bool:
        """Held and accepted (countable)."""
        return self.state(eid) == ACCEPTED

    def arrived_ms(self, eid: bytes) -> int | None:
        """When ``eid`` reached this node (ms since the epoch, this node's clock;
        docs/rules.md s.10.6), or None if not held or stored before it was recorded."""
        row = self.conn.execute("SELECT arrived_ms FROM events WHERE id = ?", (eid,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def arrivals(self, ids: Iterable[bytes]) -> dict[bytes, int]:
        """``id -> arrived_ms`` for the held ones among ``ids`` whose arrival is recorded."""
        return {
            r[0]: int(r[1])
            for r in select_in(self.conn, "SELECT id, arrived_ms FROM events WHERE id IN ({})", list(ids))
            if r[1] is not None
        }

    def arrived_after(self, targets: Iterable[bytes], after_ms: int) -> list[tuple[Event, int]]:
        """``(event, arrived_ms)`` of the accepted events aimed at any of ``targets`` that
        reached this node after ``after_ms`` (imier.api.late: nothing is decoded when none did)."""
        out: list[tuple[Event, int]] = []
        for t in targets:
            out.extend((decode_stored(r[0]), int(r[1])) for r in self.conn.execute(
                "SELECT raw, arrived_ms FROM events WHERE target = ? AND state = 1 AND arrived_ms > ?",
                (t, after_ms)))
        return out

    def find_prefix(self, prefix: bytes) -> list[bytes]:
        """Ids starting with ``prefix`` (for short ids typed by people)."""
        hi = prefix + b"\xff" * (32 - len(prefix))
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM events WHERE id >= ? AND id <= ? LIMIT 5", (prefix, hi)
        )]

    # -- many events -------------------------------------------------------------

    def held_ids(self, ids: Sequence[bytes]) -> set[bytes]:
        """The ids among ``ids`` that are held (any state)."""
        return {r[0] for r in select_in(self.conn, "SELECT id FROM events WHERE id IN ({})", ids)}

    def raw_many(self, ids: Sequence[bytes]) -> list[bytes]:
        return [r[0] for r in select_in(self.conn, "SELECT raw FROM events WHERE id IN ({})", ids)]

    def raw_in_order(self, ids: Sequence[bytes]) -> list[bytes]:
        """Raw bytes of the held ones among ``ids`` in ``(ts, id)`` order (per chunk of
        500: callers pass ids already in that order), so a receiver mostly gets prevs
        before children."""
        return [r[0] for r in select_in(
            self.conn, "SELECT raw FROM events WHERE id IN ({}) ORDER BY ts, id", ids)]

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

    def iter_raw(self) -> Iterator[tuple[bytes, bytes, int]]:
        """``(id, raw, state)`` of every held event, in storage order (for verify)."""
        yield from ((r[0], r[1], int(r[2])) for r in self.conn.execute("SELECT id, raw, state FROM events"))

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

    def events_targeting(self, target: bytes) -> list[Event]:
        return [
            decode_stored(r[0])
            for r in self.conn.execute(
                "SELECT raw FROM events WHERE target = ? AND state = 1 ORDER BY ts, id", (target,)
            )
        ]

    # -- bodies ----------------------------------------------------------------------

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

    def persons(self, body: bytes) -> set[bytes]:
        """Keys that are, or once were, persons of ``body`` itself (docs/rules.md s.9.1;
        for a federation, the persons of the bodies it names are admissible too)."""
        return {r[0] for r in self.conn.execute("SELECT person FROM persons WHERE body = ?", (body,))}

    def named_parts(self, body: bytes) -> set[bytes]:
        """Bodies ``body`` names as its parts (founding ``parts`` and accepted ``part`` joins
        by its persons): naming, not consent."""
        return {r[0] for r in self.conn.execute("SELECT part FROM parts WHERE body = ?", (body,))}

    def heads(self, body: bytes) -> list[tuple[int, bytes]]:
        """Accepted events of ``body`` that no accepted event names in its prev, newest first."""
        rows = self.conn.execute(
            "SELECT ts, id FROM heads WHERE body = ? ORDER BY ts DESC, id DESC", (body,)
        )
        return [(r[0], r[1]) for r in rows]

    def heads_at(self, body: bytes, now: int, *, limit: int = 100_000) -> list[tuple[int, bytes]]:
        """The heads of ``body``'s record as of ``now``, newest first: its heads
        timestamped at or before ``now``, and in place of each head from the future
        the events at or before ``now`` it names, walking back through future ones
        (their bytes: accepted events keep no prev rows). The causal past of the
        result is every accepted event at or before ``now`` the heads reach; an
        event named here may also lie below another (harmless in a view, which is
        a union of causal pasts). Walks at most ``limit`` future events, which
        ``max_skew`` keeps few."""
        heads = self.heads(body)
        stack = [h for ts, h in heads if ts > now]
        if not stack:
            return heads
        out = {h: ts for ts, h in heads if ts <= now}
        seen: set[bytes] = set(stack)
        walked = 0
        while stack and walked < limit:
            walked += 1
            ev = self.get(stack.pop())
            if ev is None:
                continue
            for pid in ev.prev:
                if pid in seen:
                    continue
                seen.add(pid)
                row = self.conn.execute("SELECT ts FROM events WHERE id = ? AND state = 1", (pid,)).fetchone()
                if row is None:
                    continue
                if row[0] > now:
                    stack.append(pid)
                else:
                    out[pid] = row[0]
        return sorted(((ts, h) for h, ts in out.items()), reverse=True)

    def recent(self, body: bytes, *, at_or_before: int, limit: int = 8) -> list[tuple[int, bytes]]:
        """``(ts, id)`` of the newest accepted events of ``body`` timestamped at or
        before ``at_or_before``, newest first."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT ts, id FROM events WHERE body = ? AND state = 1 AND ts <= ? "
            "ORDER BY ts DESC, id DESC LIMIT ?", (body, at_or_before, limit))]

    def last_own(self, body: bytes, author: bytes) -> tuple[int, bytes, int] | None:
        """``(seq, id, ts)`` of the author's newest event in ``body`` (held, any state)."""
        row = self.conn.execute(
            "SELECT seq, id, ts FROM events WHERE body = ? AND author = ? ORDER BY seq DESC LIMIT 1",
            (body, author),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def ids_at_seq(self, body: bytes, author: bytes, seq: int) -> list[bytes]:
        """Ids of the held events (any state) ``author`` signed as its ``seq``-th in ``body``:
        one, or more for a fork (docs/rules.md s.8)."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM events WHERE body = ? AND author = ? AND seq = ?", (body, author, seq))]

    def bodies_of_authors(self, authors: Iterable[bytes]) -> set[bytes]:
        """Bodies in which any of ``authors`` wrote an event (held, any state)."""
        return {r[0] for r in select_in(
            self.conn, "SELECT DISTINCT body FROM events WHERE author IN ({})", list(authors))}

    def bodies_admitting(self, people: Iterable[bytes]) -> set[bytes]:
        """Bodies in which any of ``people`` is a person (founder, admitted, linked)."""
        return {r[0] for r in select_in(
            self.conn, "SELECT DISTINCT body FROM persons WHERE person IN ({})", list(people))}

    # -- outbox, follows, meta, pending ----------------------------------------------

    def outbox(self, limit: int = 256) -> list[bytes]:
        return [r[0] for r in self.conn.execute(
            "SELECT o.id FROM outbox o ORDER BY o.added, o.id LIMIT ?", (limit,)
        )]

    def follows(self) -> list[bytes]:
        return [r[0] for r in self.conn.execute("SELECT body FROM follows ORDER BY body")]

    def get_meta(self, key: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def pending_bytes(self, source: str | None = None) -> int:
        """Bytes of the pending events held (from ``source``, or all)."""
        if source is None:
            row = self.conn.execute("SELECT coalesce(sum(size), 0) FROM pending_from").fetchone()
        else:
            row = self.conn.execute(
                "SELECT coalesce(sum(size), 0) FROM pending_from WHERE source = ?", (source,)).fetchone()
        return int(row[0])

    def missing_prevs(self, limit: int = 10_000) -> list[bytes]:
        """Ids named by pending events that are not held (what sync should fetch)."""
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT p.prev FROM prev p LEFT JOIN events e ON e.id = p.prev "
            "WHERE e.id IS NULL LIMIT ?", (limit,))]

    # -- changes since a look (for watchers) ------------------------------------------

    def last_row(self) -> int:
        """The newest row number of the events table (0 when empty). Rows are only
        appended, so the rows after a number read once are the events stored since."""
        return int(self.conn.execute("SELECT coalesce(max(n), 0) FROM events").fetchone()[0])

    def bodies_since(self, row: int) -> list[tuple[bytes, bool]]:
        """``(body, structural)`` for every body with an event stored after ``row``
        (see :meth:`last_row`); ``structural``: one of them is a founding or a part
        event, which can change which bodies sit under which."""
        return [(r[0], bool(r[1])) for r in self.conn.execute(
            "SELECT body, max(kind IN ('found', 'part')) FROM events WHERE n > ? GROUP BY body",
            (row,))]

    def pending_bodies(self) -> dict[bytes, bytes]:
        """``id -> body`` of every held pending event (one waiting for its prevs)."""
        ids = [r[0] for r in self.conn.execute("SELECT DISTINCT id FROM prev")]
        return {r[0]: r[1] for r in select_in(self.conn, "SELECT id, body FROM events WHERE id IN ({})", ids)}

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when another connection commits."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def integrity_ok(self) -> bool:
        return self.integrity_problems() == []

    def integrity_problems(self, limit: int = 100) -> list[str]:
        """``PRAGMA integrity_check``: an empty list when the database file is sound."""
        rows = [r[0] for r in self.conn.execute(f"PRAGMA integrity_check({int(limit)})")]
        return [] if rows == ["ok"] else rows
