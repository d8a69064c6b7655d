"""The sync protocol (/imier/sync/1): handshake, reconciliation, event transfer.

One session per stream, the same code on both sides (``initiator`` only
says who sends the first reconcile message)::

    both:      hello  ->            (bodies held, people, node name)
    both:      offer  ->            (bodies offered to the peer; holding.py)
    initiator: rec(initiate) -> ; then rec frames alternate until one side
               sends the empty (done) message
    both:      ev* end ->           (the events the peer lacks, concurrently)

Invariants:

1. Every read is under ``trio.fail_after`` (bounds.READ_TIMEOUT_S); a frame's
   length is checked before its body is read (bounds.py rule 1).
2. Events received must be ones the reconciliation said we need; anything
   else is an offence. Every event is decoded and its signature verified
   before the store sees it (the same path as bundles and gossip).
3. The store is only read for a snapshot of items at the start; new events
   are ingested in batches as they arrive (nothing is lost on a broken stream:
   the next session reconciles what is left).
4. Bytes are counted per frame type, so the cost of a session is visible
   (``SyncStats``): reconciliation grows with the difference, not the history.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import RemoteError
from ..protocol.reconcile import Reconciler
from ..store.db import Store
from .bounds import READ_TIMEOUT_S, PeerRecord
from .holding import offer_for

__all__ = ["SyncNode", "SyncStats", "FramedStream", "run_session", "StreamGone"]

log = logging.getLogger("imier.sync")
MAX_ROUNDS = 2000


class StreamGone(Exception):
    """The stream ended or broke under us (the world's doing, not the peer's data)."""


class SyncNode(Protocol):
    name: str
    store: Store

    def people(self) -> list[bytes]: ...

    def held(self) -> set[bytes]: ...

    async def ingest_remote(self, raws: list[bytes], peer: PeerRecord, *, source: str,
                            expect: set[bytes] | None = None,
                            bodies: set[bytes] | None = None) -> int: ...


@dataclass
class SyncStats:
    peer: str = ""
    initiator: bool = False
    bodies: int = 0
    items: int = 0
    handshake_bytes: int = 0
    reconcile_bytes: int = 0  # rec frames both ways, headers included
    event_bytes: int = 0
    rounds: int = 0
    have: int = 0  # events we sent
    need: int = 0  # events we lacked
    received: int = 0
    new: int = 0
    ms: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FramedStream:
    """Length-prefixed frames over a libp2p stream, every read under a deadline."""

    stream: Any
    timeout: float = READ_TIMEOUT_S
    buf: bytearray = field(default_factory=bytearray)
    bytes_in: dict[str, int] = field(default_factory=dict)
    bytes_out: dict[str, int] = field(default_factory=dict)

    async def _read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                with trio.fail_after(self.timeout):
                    chunk = await self.stream.read(max(n - len(self.buf), 65536))
            except trio.TooSlowError:
                raise RemoteError("timeout", f"no data for {self.timeout:.0f} s", field="stream") from None
            except EOFError:
                chunk = b""
            except Exception as exc:  # libp2p's stream errors (reset, closed, muxer gone)
                raise StreamGone(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                raise StreamGone("the peer closed the stream")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_frame(self) -> dict[str, Any]:
        n = wire.frame_length(await self._read_exactly(wire.LEN.size))
        body = await self._read_exactly(n)
        frame = wire.decode_frame(body)
        t = frame["t"]
        self.bytes_in[t] = self.bytes_in.get(t, 0) + n + wire.LEN.size
        if t == "err":
            raise StreamGone(f"the peer refused: {frame['code']}: {frame['msg']}")
        return frame

    async def expect(self, *types: str) -> dict[str, Any]:
        frame = await self.read_frame()
        if frame["t"] not in types:
            raise RemoteError("unexpected_frame", f"got {frame['t']}, expected {'/'.join(types)}",
                              field="t")
        return frame

    async def write(self, data: bytes, t: str) -> None:
        self.bytes_out[t] = self.bytes_out.get(t, 0) + len(data)
        try:
            with trio.fail_after(self.timeout):
                await self.stream.write(data)
        except trio.TooSlowError:
            raise StreamGone("writing timed out") from None
        except Exception as exc:
            raise StreamGone(f"{type(exc).__name__}: {exc}") from None

    def total(self, *types: str) -> int:
        return sum(self.bytes_in.get(t, 0) + self.bytes_out.get(t, 0) for t in types)


def _raw_in_order(store: Store, ids: list[bytes]) -> list[bytes]:
    """Raw events in ``(ts, id)`` order, so a receiver mostly gets prevs before children
    (it accepts any order; this only keeps fewer events pending in between)."""
    q = f"SELECT raw FROM events WHERE id IN ({','.join('?' * len(ids))}) ORDER BY ts, id"
    return [r[0] for r in store.conn.execute(q, ids)]


def _flat(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_flat(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    excs = _flat(group)
    for kind in (RemoteError, StreamGone):
        for exc in excs:
            if isinstance(exc, kind):
                return exc
    return excs[0]


async def run_session(node: SyncNode, stream: Any, peer: PeerRecord, *, initiator: bool) -> SyncStats:
    """One sync session; raises RemoteError (peer's fault) or StreamGone."""
    t0 = time.monotonic()
    stats = SyncStats(peer=peer.peer_id, initiator=initiator)
    fs = FramedStream(stream)
    store = node.store
    mine = node.held()
    await fs.write(wire.hello(node.name, sorted(mine), node.people()), "hello")
    h = await fs.expect("hello")
    peer.node = h["node"]
    peer.bodies = set(h["bodies"])
    my_offer = offer_for(store, mine, h["bodies"], h["people"])
    await fs.write(wire.offer(sorted(my_offer)), "offer")
    o = await fs.expect("offer")
    shared = my_offer | set(o["bodies"])
    if len(shared) > wire.MAX_BODIES:
        raise RemoteError("too_many_bodies", f"more than {wire.MAX_BODIES} bodies", field="offer")
    items = store.items(shared)
    stats.bodies, stats.items = len(shared), len(items)
    r = Reconciler(items)
    if initiator:
        await fs.write(wire.rec(r.initiate()), "rec")
    while True:
        f = await fs.expect("rec")
        if r.rounds >= MAX_ROUNDS:
            # An honest exchange needs about log16(n) rounds plus one per 48 KiB of ids.
            raise RemoteError("too_many_rounds", f"reconciliation exceeded {MAX_ROUNDS} rounds", field="rec")
        reply, _have, _need = r.reconcile(f["m"])
        if reply is None:
            break
        await fs.write(wire.rec(reply), "rec")
        if r.done:
            break
    stats.rounds = r.rounds
    stats.have, stats.need = len(r.have), len(r.need)
    peer.shared = shared

    async def send_events() -> None:
        order = [i for _, i in items if i in r.have]  # (ts, id) order: prevs before children
        batch: list[bytes] = []
        size = 0
        for k in range(0, len(order), 256):
            for raw in _raw_in_order(store, order[k : k + 256]):
                if batch and (size + len(raw) > wire.EVENT_FRAME_TARGET or len(batch) >= 512):
                    await fs.write(wire.events_frame(batch), "ev")
                    batch, size = [], 0
                batch.append(raw)
                size += len(raw)
        if batch:
            await fs.write(wire.events_frame(batch), "ev")
        await fs.write(wire.end(), "end")
        peer.events_out += len(order)

    async def receive_events() -> None:
        remaining = set(r.need)
        while True:
            f = await fs.expect("ev", "end")
            if f["t"] == "end":
                return
            raws = f["ev"]
            stats.received += len(raws)
            stats.new += await node.ingest_remote(raws, peer, source="sync", expect=remaining,
                                                  bodies=shared)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_events)
            await receive_events()
    except BaseExceptionGroup as group:  # trio's strict groups: surface the peer's fault first
        raise _first(group) from None
    stats.handshake_bytes = fs.total("hello", "offer")
    stats.reconcile_bytes = fs.total("rec")
    stats.event_bytes = fs.total("ev", "end")
    stats.ms = int((time.monotonic() - t0) * 1000)
    return stats
