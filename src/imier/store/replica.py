"""The store queries replication needs (nodeapp/holding.py and nodeapp/sync.py).

The store owns all SQL: nodeapp modules ask these functions, never the
connection. Read-only: :func:`trial_ingest` writes inside a transaction it always rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..protocol.events import Admit, Event, Propose, decode_stored
from .db import ACCEPTED, IngestResult, Store

__all__ = [
    "authored_bodies",
    "admits_naming",
    "proposals_of_kind",
    "raw_in_order",
    "body_event_count",
    "trial_ingest",
]

_CHUNK = 500


def authored_bodies(store: Store, people: Iterable[bytes]) -> set[bytes]:
    """Bodies holding an event (any state) authored by one of ``people``."""
    ps = sorted(set(people))
    out: set[bytes] = set()
    for i in range(0, len(ps), _CHUNK):
        chunk = ps[i : i + _CHUNK]
        q = f"SELECT DISTINCT body FROM events WHERE author IN ({','.join('?' * len(chunk))})"
        out.update(r[0] for r in store.conn.execute(q, chunk))
    return out


def admits_naming(store: Store, people: Iterable[bytes], *, accepted_only: bool = False,
                  body: bytes | None = None) -> dict[bytes, list[bytes]]:
    """``body -> [admit ids]`` of the held admits naming one of ``people``.

    An admit's ``member`` is inside its payload (not a column), so the admits
    are decoded; there are few of them next to votes.
    """
    want = set(people)
    if not want:
        return {}
    q = "SELECT body, id, raw FROM events WHERE kind = 'admit'"
    args: list[object] = []
    if accepted_only:
        q += " AND state = ?"
        args.append(ACCEPTED)
    if body is not None:
        q += " AND body = ?"
        args.append(body)
    out: dict[bytes, list[bytes]] = {}
    for b, eid, raw in store.conn.execute(q, args):
        d = decode_stored(raw).data
        if isinstance(d, Admit) and d.member in want:
            out.setdefault(b, []).append(eid)
    return out


def proposals_of_kind(store: Store, body: bytes, kind: str) -> list[Event]:
    """Accepted proposals of ``proposal_kind == kind`` in ``body``, in ``(ts, id)`` order."""
    out: list[Event] = []
    for (raw,) in store.conn.execute(
        "SELECT raw FROM events WHERE body = ? AND kind = 'propose' AND state = ? ORDER BY ts, id",
        (body, ACCEPTED),
    ):
        ev = decode_stored(raw)
        if isinstance(ev.data, Propose) and ev.data.proposal_kind == kind:
            out.append(ev)
    return out


def body_event_count(store: Store, body: bytes) -> int:
    """How many events of ``body`` are held (any state): a cheap change marker."""
    return int(store.conn.execute("SELECT count(*) FROM events WHERE body = ?", (body,)).fetchone()[0])


def raw_in_order(store: Store, ids: Sequence[bytes]) -> list[bytes]:
    """Raw events in ``(ts, id)`` order, so a receiver mostly gets prevs before children."""
    out: list[tuple[int, bytes, bytes]] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        q = f"SELECT ts, id, raw FROM events WHERE id IN ({','.join('?' * len(chunk))})"
        out.extend((r[0], r[1], r[2]) for r in store.conn.execute(q, chunk))
    out.sort()
    return [r[2] for r in out]


class _Undo(Exception):
    pass


def trial_ingest(store: Store, events: list[Event], check: Callable[[IngestResult], bool], **kw: object) -> bool:
    """What ``check`` says of the store with ``events`` ingested, leaving the store unchanged.

    The events are ingested in one transaction, ``check`` runs inside it (it
    sees the store as it would be), and the transaction is always rolled
    back: nothing of the events stays. The caller stores them for real
    (through its usual path) only when this returns True.
    """
    verdict = False
    try:
        with store.atomic():
            res = store.ingest(events, **kw)  # type: ignore[arg-type]
            verdict = bool(check(res))
            raise _Undo
    except _Undo:
        pass
    return verdict
