"""The one way in: every byte from outside (a bundle, sync, gossip, the page) comes through :func:`take`.

``take`` decodes and verifies each event (shape, canonical form, signature),
checks what the caller expects (the ids a reconciliation asked for, the
bodies of the exchange), defers events timestamped too far in the node's
future, ingests the rest in one transaction (causality and admission,
docs/rules.md s.8 and s.9.1) and returns one :class:`IntakeReport`: what was
new, already held, pending, deferred, dropped for the bounds, and refused
(each refusal with the event id, a code, the field at fault and a message).
It never raises for bad data; peer policy (rate limits, offences, bans)
stays in ``nodeapp/`` and reads the report.

Bounds (docs/rules.md s.9.3): pending events are bounded in bytes per source
and in total in the store (:class:`~imier.store.db.PendingLimits`); deferred
ones in memory by :class:`DeferredQueue`, which keeps them indexed by the
time they become acceptable, so nothing is decoded again until then. The
oldest goes first; dropping loses nothing (sync brings it again).
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from ..protocol.bundle import read_bundle
from ..protocol.errors import Rejected
from ..protocol.events import Event, decode_event, decode_stored
from .db import DEFAULT_MAX_SKEW_MS, PendingLimits, Store
from .reads import bulk

__all__ = [
    "take", "IntakeReport", "Refused", "IntakeLimits", "DeferredQueue", "import_bundle",
    "UNDECODABLE", "UNREQUESTED", "WRONG_BODY",
]

UNREQUESTED = "unrequested"
WRONG_BODY = "wrong_body"
UNDECODABLE = "undecodable"  # the code family of decode errors is the Rejected code itself

# Bytes a deferred entry costs beyond its raw bytes (the entry, the id, the
# heap and index slots), so the bound holds for many small events too.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True)
class Refused:
    """One refused event: its id, a stable code, the field at fault and a message."""

    id: bytes  # the event id (sha256 of the bytes, for ones that did not decode)
    code: str  # a stable reason code: a decode code, unrequested, wrong_body, causality, not_admitted
    field: str | None
    message: str
    index: int | None = None  # position in the input, for bytes that did not decode

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id.hex(), "code": self.code, "field": self.field,
                               "reason": self.message}
        if self.index is not None:
            doc["index"] = self.index
        return doc


@dataclass
class IntakeReport:
    """What :func:`take` did with each event it was given."""

    source: str = ""
    received: int = 0
    new: list[bytes] = field(default_factory=list)  # stored now (accepted or pending)
    held: list[bytes] = field(default_factory=list)  # already in the store
    pending: list[bytes] = field(default_factory=list)  # stored, waiting for prev events
    accepted: list[bytes] = field(default_factory=list)  # became countable now (incl. older pending)
    deferred: list[bytes] = field(default_factory=list)  # too far in the future: kept aside or to retry
    dropped: list[bytes] = field(default_factory=list)  # dropped for a bound (sync brings them again)
    refused: list[Refused] = field(default_factory=list)

    def refused_with(self, *codes: str) -> list[Refused]:
        return [r for r in self.refused if r.code in codes]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "received": self.received, "new": len(self.new),
            "held": len(self.held), "pending": len(self.pending), "accepted": len(self.accepted),
            "deferred": [i.hex() for i in self.deferred], "dropped": [i.hex() for i in self.dropped],
            "refused": [r.to_json() for r in self.refused],
        }


@dataclass(frozen=True)
class IntakeLimits:
    """Node settings bounding what is held before it is accepted (docs/rules.md s.9.3)."""

    pending_max_bytes: int = 64 * 1024 * 1024
    pending_peer_bytes: int = 16 * 1024 * 1024
    deferred_max_bytes: int = 64 * 1024 * 1024
    deferred_peer_bytes: int = 16 * 1024 * 1024

    def pending(self) -> PendingLimits:
        return PendingLimits(self.pending_max_bytes, self.pending_peer_bytes)


class _Deferred(NamedTuple):
    raw: bytes
    ts: int
    source: str
    size: int


class DeferredQueue:
    """Events timestamped too far in the node's future, kept until their time.

    Held as verified raw bytes, indexed by timestamp (a heap), so waiting
    costs nothing; decoded once, trusting, when due. Bounded in bytes per
    source and in total (each entry counted as its raw size plus
    ``ENTRY_OVERHEAD``); the oldest arrival goes first.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, per_source_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.per_source_bytes = per_source_bytes
        self._items: OrderedDict[bytes, _Deferred] = OrderedDict()  # arrival order
        self._by_source: dict[str, OrderedDict[bytes, None]] = {}
        self._source_bytes: dict[str, int] = {}
        self._heap: list[tuple[int, bytes]] = []
        self.bytes = 0
        self.dropped = 0  # over the node's life

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, eid: object) -> bool:
        return eid in self._items

    def __bool__(self) -> bool:
        return bool(self._items)

    def ids(self) -> list[bytes]:
        return list(self._items)

    def source_bytes(self, source: str) -> int:
        return self._source_bytes.get(source, 0)

    def add(self, ev: Event, source: str) -> list[bytes]:
        """Keep ``ev`` (verified) until its time; returns the ids dropped to make room."""
        if ev.id in self._items:
            return []
        size = len(ev.raw) + ENTRY_OVERHEAD
        if size > self.per_source_bytes or size > self.max_bytes:
            return [ev.id]
        dropped: list[bytes] = []
        mine = self._by_source.setdefault(source, OrderedDict())
        while mine and self._source_bytes.get(source, 0) + size > self.per_source_bytes:
            dropped.append(self._remove(next(iter(mine))))
        while self._items and self.bytes + size > self.max_bytes:
            dropped.append(self._remove(next(iter(self._items))))
        self._items[ev.id] = _Deferred(ev.raw, ev.ts, source, size)
        self._by_source.setdefault(source, OrderedDict())[ev.id] = None
        self._source_bytes[source] = self._source_bytes.get(source, 0) + size
        self.bytes += size
        heapq.heappush(self._heap, (ev.ts, ev.id))
        self.dropped += len(dropped)
        return dropped

    def _remove(self, eid: bytes) -> bytes:
        item = self._items.pop(eid)
        mine = self._by_source[item.source]
        del mine[eid]
        if not mine:
            del self._by_source[item.source]
        left = self._source_bytes[item.source] - item.size
        if left:
            self._source_bytes[item.source] = left
        else:
            del self._source_bytes[item.source]
        self.bytes -= item.size
        return eid

    def due(self, now_ms: int, max_skew_ms: int = DEFAULT_MAX_SKEW_MS) -> dict[str, list[Event]]:
        """Remove and return (by source, decoded) the events no longer too far ahead."""
        out: dict[str, list[Event]] = {}
        limit = now_ms + max_skew_ms
        while self._heap and self._heap[0][0] <= limit:
            _, eid = heapq.heappop(self._heap)
            item = self._items.get(eid)
            if item is None:
                continue  # dropped earlier
            self._remove(eid)
            out.setdefault(item.source, []).append(decode_stored(item.raw))
        if len(self._heap) > 2 * len(self._items) + 64:  # forget the dropped ones' slots
            self._heap = [(t, i) for t, i in self._heap if i in self._items]
            heapq.heapify(self._heap)
        return out


def _decode(raw: bytes, index: int) -> Event | Refused:
    try:
        return decode_event(raw)
    except Rejected as exc:
        return Refused(hashlib.sha256(raw).digest(), exc.code, exc.field, str(exc), index)


def take(
    store: Store,
    items: Iterable[bytes | Event],
    *,
    source: str,
    now_ms: int,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    limits: IntakeLimits | None = None,
    deferred: DeferredQueue | None = None,
    expect: set[bytes] | None = None,
    bodies: set[bytes] | None = None,
    local: bool = False,
) -> IntakeReport:
    """Decode, check and ingest events from outside; one report, nothing raised for bad data.

    ``items`` are raw event bytes (decoded and verified here) or events this
    node verified before (from a :class:`DeferredQueue`). ``expect``: the ids
    asked for; any other event is refused ``unrequested`` (found ones are
    removed from the set). ``bodies``: the bodies of this exchange; others are
    refused ``wrong_body``. Future-dated events go to ``deferred`` when given
    (else they are only reported, to be brought again). ``local``: signed on this
    node's page (they go to the outbox, for the daemon to publish). ``limits`` bound the
    pending events of ``source`` and of the node (default: the node defaults).
    Errors of the store itself (a full disk) raise :class:`~imier.store.db.StoreError`,
    with nothing written.
    """
    limits = limits or IntakeLimits()
    rep = IntakeReport(source=source)
    good: list[Event] = []
    with bulk():
        for i, item in enumerate(items):
            rep.received += 1
            if isinstance(item, Event):
                ev: Event | Refused = item
            else:
                ev = _decode(item, i)
            if isinstance(ev, Refused):
                rep.refused.append(ev)
                continue
            if expect is not None:
                if ev.id not in expect:
                    rep.refused.append(Refused(ev.id, UNREQUESTED, "id",
                                               "event was not asked for in this exchange"))
                    continue
                expect.discard(ev.id)
            if bodies is not None and ev.body_id not in bodies:
                rep.refused.append(Refused(ev.id, WRONG_BODY, "body",
                                           "event of a body not in this exchange"))
                continue
            good.append(ev)
        if not good:
            return rep
        res = store.ingest(good, now_ms=now_ms, max_skew_ms=max_skew_ms, source=source,
                           pending_limits=limits.pending(), local=local)
    rep.new, rep.held, rep.pending, rep.accepted = res.new, res.held, res.pending, res.accepted
    rep.dropped = list(res.dropped)
    rep.refused.extend(Refused(r.id, r.code, r.field, r.message) for r in res.refusals)
    rep.deferred = list(res.deferred)
    if res.deferred and deferred is not None:
        by_id = {e.id: e for e in good}
        for eid in res.deferred:
            rep.dropped.extend(deferred.add(by_id[eid], source))
    return rep


def import_bundle(
    store: Store, data: bytes, *, now_ms: int, max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    source: str = "bundle", limits: IntakeLimits | None = None,
) -> dict[str, Any]:
    """Verify every frame of a bundle and take the good ones, in one transaction.

    A file that is not a bundle, or is damaged, raises :class:`RemoteError`
    (nothing is written). Returns the import's document: counts, and every
    event not taken with its id, code and reason (future-dated ones too, to
    import again later).
    """
    frames = read_bundle(data)  # refuses a broken file whole
    # One bundle is one source: its pending events may use the whole node's bound.
    lim = limits or IntakeLimits()
    lim = IntakeLimits(lim.pending_max_bytes, lim.pending_max_bytes, lim.deferred_max_bytes,
                       lim.deferred_peer_bytes)
    rep = take(store, frames, source=source, now_ms=now_ms, max_skew_ms=max_skew_ms, limits=lim)
    rejected = [r.to_json() for r in rep.refused]
    for eid in rep.deferred:
        rejected.append({"id": eid.hex(), "code": "future", "field": "ts",
                         "reason": "timestamped too far in the future; import again later"})
    doc: dict[str, Any] = {"new": len(rep.new), "held": len(rep.held), "pending": len(rep.pending),
                           "rejected": rejected}
    if rep.dropped:
        doc["dropped"] = len(rep.dropped)  # pending ones over the node's bound
    return doc
