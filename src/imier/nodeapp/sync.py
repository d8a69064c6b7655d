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
   length is checked before its body is read (bounds.py rule 1). The
   handshake, the reconciliation and the whole session have deadlines of
   their own (bounds.py rule 5).
2. Events received must be ones the reconciliation said we need; anything
   else is an offence. Every event is decoded and its signature verified
   before the store sees it (the same path as bundles and gossip).
3. The store is only read for a snapshot of items at the start; new events
   are ingested in batches as they arrive (nothing is lost on a broken stream:
   the next session reconciles what is left).
4. Bytes are counted per frame type, so the cost of a session is visible
   (``SyncStats``): reconciliation grows with the difference, not the history.
5. Both sides reconcile the same set (my offer | their offer), but a node
   *stores* only events of bodies it holds by its own store (holding.py).
   Events of an offered body it does not hold wait in memory (at most
   ``CANDIDATE_BYTES`` a session) and are stored only once the node holds the
   body (it came under one it holds). Events that carry an admit of one of its
   people, accepted in the body's record (tried in a transaction that is rolled
   back), make an *invitation* (store/invitations.py), not a held body:
   ``imier body follow`` accepts it. The rest is
   dropped at the end of the session, and a peer that sent events of bodies
   with no admit of ours at all has committed an offence (``unheld_body``).
6. Reconcile work is counted before it is done and capped per round, per
   session and over time (bounds.py rule 6, ``Work``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import LocalError, Rejected, RemoteError
from ..protocol.events import Admit, Event, Found, decode_event
from ..protocol.reconcile import Reconciler
from ..store import replica
from ..store.db import Store
from ..store.invitations import Invitation, Invitations
from .bounds import (
    CANDIDATE_BYTES,
    HANDSHAKE_S,
    READ_TIMEOUT_S,
    RECONCILE_S,
    SESSION_S,
    STRANGER_RECONCILE_S,
    STRANGER_ROUND_S,
    PeerRecord,
    NEIGHBOUR_WAIT_S,
    TokenBucket,
    round_work,
    session_work,
)
from .holding import admitted, offer_for

__all__ = ["SyncNode", "SyncStats", "FramedStream", "Hello", "run_session", "handshake", "exchange",
           "StreamGone", "Charge", "Priority"]

log = logging.getLogger("imier.sync")
MAX_ROUNDS = 2000


class StreamGone(Exception):
    """The stream ended or broke under us (the world's doing, not the peer's data)."""


class SyncNode(Protocol):
    name: str
    store: Store
    priority: Priority

    def people(self) -> list[bytes]: ...

    def vouches(self) -> list[tuple[bytes, bytes]]: ...

    def held(self, *, fresh: bool = False) -> set[bytes]: ...

    def offend(self, peer: PeerRecord, code: str, message: str) -> None: ...

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
    work: int = 0  # reconcile work units counted (bounds rule 6)
    candidates_dropped: int = 0
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



@dataclass
class Hello:
    """What the handshake established: each side's offer, and the set both reconcile."""

    mine: set[bytes]  # what this node holds (its own rules)
    theirs: set[bytes]  # what the peer said it holds
    people: list[bytes]  # the peer's people
    shared: set[bytes]  # my offer | their offer: the same set on both sides
    candidates: set[bytes]  # offered to us, not held by us (yet): nothing of them is stored unless held
    # Bytes of candidate events kept before an admit of ours shows up (inbound.py
    # lowers it to 0 for strangers from a source that already sent such junk).
    candidate_limit: int = CANDIDATE_BYTES
    vouch: list[tuple[bytes, bytes]] = field(default_factory=list)  # the peer's people vouching for it


@dataclass
class Charge:
    """What an inbound session's reconcile work is charged to, beyond the peer's own
    bucket (inbound.py): the connection's, the source's, the strangers' buckets,
    and for a peer not proven a wait behind neighbours first (:class:`Priority`)."""

    buckets: list[TokenBucket]
    wait: Callable[[], Awaitable[None]] | None = None


class Priority:
    """Neighbours first (bounds rule 8): while this node reconciles with a proven
    peer (either way), a stranger's next round waits until it is done, for at
    most ``NEIGHBOUR_WAIT_S`` a round. A stranger's round costs the node's one
    thread tens of milliseconds; a neighbour's session should not queue behind it."""

    def __init__(self) -> None:
        self.serving = 0
        self.waits = 0  # strangers' rounds that waited (imier peers --json)

    @contextmanager
    def neighbour(self) -> Iterator[None]:
        self.serving += 1
        try:
            yield
        finally:
            self.serving -= 1

    async def after_neighbours(self) -> None:
        if not self.serving:
            return
        self.waits += 1
        with trio.move_on_after(NEIGHBOUR_WAIT_S):
            for _ in range(int(NEIGHBOUR_WAIT_S / 0.02) + 1):  # bounded, and by the deadline
                await trio.sleep(0.02)
                if not self.serving:
                    break


class Work:
    """Reconcile work counted before it is done (bounds rule 6)."""

    def __init__(self, items: int, charge: Charge) -> None:
        self.per_round = round_work(items)
        self.cap = session_work(items)
        self.used = 0
        self.buckets = charge.buckets
        self.wait = charge.wait

    async def spend(self, units: int, peer: PeerRecord) -> None:
        if units > self.per_round:
            raise RemoteError("work_budget", f"a reconcile round asked for {units} units of work, "
                              f"limit {self.per_round}", field="rec")
        if self.used + units > self.cap:
            raise RemoteError("work_budget", f"reconciliation exceeded its work budget ({self.cap} units)",
                              field="rec")
        if self.wait is not None:
            await self.wait()
        self.used += units
        peer.work_done += units
        for b in self.buckets:
            wait = b.wait_time(units)
            if wait > 0:
                await trio.sleep(wait)  # under the reconcile deadline: a dry bucket ends the session
            b.take(min(units, b.burst))


async def handshake(node: SyncNode, fs: FramedStream, peer: PeerRecord) -> Hello:
    """hello and offer both ways, within HANDSHAKE_S in total."""
    try:
        with trio.fail_after(HANDSHAKE_S):
            mine = set(node.held())
            people = node.people()
            await fs.write(wire.hello(node.name, sorted(mine), people, node.vouches()), "hello")
            h = await fs.expect("hello")
            peer.node = h["node"]
            peer.bodies = set(h["bodies"])
            my_offer = offer_for(node.store, mine, h["bodies"], h["people"])
            await fs.write(wire.offer(sorted(my_offer)), "offer")
            o = await fs.expect("offer")
    except trio.TooSlowError:
        raise RemoteError("slow_handshake", f"the handshake took longer than {HANDSHAKE_S:.0f} s",
                          field="hello") from None
    shared = my_offer | set(o["bodies"])
    if len(shared) > wire.MAX_BODIES:
        raise RemoteError("too_many_bodies", f"more than {wire.MAX_BODIES} bodies", field="offer")
    return Hello(mine=mine, theirs=set(h["bodies"]), people=list(h["people"]), shared=shared,
                 candidates=shared - mine, vouch=[(p, sig) for p, sig in h.get("vouch", [])])


class _Candidates:
    """Events of offered bodies this node does not hold, kept in memory (bounded) until
    its own rules say it holds the body: a newly admitted member's node learns its
    body this way, and nothing a peer merely offers is ever stored (holding.py)."""

    def __init__(self, node: SyncNode, peer: PeerRecord, hs: Hello) -> None:
        self.node = node
        self.peer = peer
        self.open = set(hs.candidates)
        self.buf: dict[bytes, list[bytes]] = {}
        self.bytes = 0
        self.dropped = 0
        self.admits: set[bytes] = set()  # candidate bodies with an admit naming one of our people
        self.due: set[bytes] = set()  # with an admit of ours that arrived since the last try
        self.promoted: set[bytes] = set()
        self.invited: set[bytes] = set()  # recorded as invitations this session
        self.people = set(node.people())
        self.limit = hs.candidate_limit
        # Bodies already known as invitations: their events are not kept or tried again
        # each session (the invitation stands until followed or expired).
        book = Invitations.beside(node.store.path)
        try:
            known = {i.body for i in book.list(int(time.time() * 1000))} if book is not None else set()
        except LocalError:
            known = set()
        self.known = (known & self.open) - set(node.store.follows())

    def take(self, body: bytes, ev: Event) -> None:
        if body in self.known:
            self.dropped += 1
            return
        if not self.admits and self.bytes + len(ev.raw) > self.limit:
            raise RemoteError("unheld_body", f"more than {self.limit} bytes of events of bodies "
                              "this node does not hold", field="ev")
        if self.bytes + len(ev.raw) > CANDIDATE_BYTES:
            self.dropped += 1  # an honest but long history: 'imier body follow' gets it
            return
        self.buf.setdefault(body, []).append(ev.raw)
        self.bytes += len(ev.raw)
        if isinstance(ev.data, Admit) and ev.data.member in self.people:
            self.admits.add(body)
            self.due.add(body)

    async def settle(self, shared: set[bytes], *, final: bool = False) -> int:
        """Promote what this node now holds; returns the events stored."""
        new = 0
        live = self.node.held(fresh=True) if self.buf else set()
        for body in sorted(self.buf):
            if body not in live:
                # The trial verifies and ingests the buffer (then undoes it): only when an
                # admit of ours came since the last try, and once more at the end. An
                # admission learnt from a peer is an invitation, not a reason to hold
                # (holding.py): recorded, and nothing of the body is stored.
                if body not in self.due and not (final and body in self.admits):
                    continue
                self.due.discard(body)
                if body not in self.invited and self._admitted_with(body):
                    self._invite(body)
                continue
            raws = self.buf.pop(body)
            self.bytes -= sum(map(len, raws))
            self.open.discard(body)
            self.promoted.add(body)
            log.info("peer %s: holding %s now (%d events it offered)", self.peer.peer_id[-8:],
                     body.hex()[:12], len(raws))
            new += await self.node.ingest_remote(raws, self.peer, source="sync", bodies=shared)
            live = self.node.held(fresh=True)
        if final and self.buf:
            n = sum(len(v) for v in self.buf.values())
            log.info("peer %s: dropped %d events of %d bodies this node does not hold", self.peer.peer_id[-8:],
                     n, len(self.buf))
            if not self.admits:
                self.node.offend(self.peer, "unheld_body", f"sync: sent {n} events of bodies this node "
                                 "has no reason to hold")
            self.buf.clear()
            self.bytes = 0
        return new

    def _invite(self, body: bytes) -> None:
        """Record the admission of one of our people in ``body`` as an invitation."""
        self.invited.add(body)
        found: Found | None = None
        admit: Event | None = None
        for raw in self.buf.get(body, []):
            try:
                ev = decode_event(raw, verify=False)  # verified by the trial
            except Rejected:
                continue
            if ev.id == body and isinstance(ev.data, Found):
                found = ev.data
            elif admit is None and isinstance(ev.data, Admit) and ev.data.member in self.people:
                admit = ev
        book = Invitations.beside(self.node.store.path)
        if found is None or admit is None or book is None:
            return
        assert isinstance(admit.data, Admit)
        inv = Invitation(body=body, name=found.name, kind=found.body_kind, member=admit.data.member,
                         admitted_by=admit.author, admit=admit.id, peer=self.peer.peer_id,
                         seen_ms=int(time.time() * 1000))
        try:
            new = book.add(inv, inv.seen_ms)
        except LocalError as exc:
            log.warning("could not record the invitation to %s: %s", found.name, exc)
            return
        if new:
            log.info("peer %s: an invitation to %s %r (%s) for one of our people; "
                     "'imier body follow %s' to hold it", self.peer.peer_id[-8:], found.body_kind,
                     found.name, body.hex()[:12], body.hex()[:12])

    def _admitted_with(self, body: bytes) -> bool:
        """Would the buffered events make an accepted admit of one of our people? (tried and undone)"""
        evs: list[Event] = []
        for raw in self.buf.get(body, []):
            try:
                evs.append(decode_event(raw))
            except Rejected:
                continue
        store = self.node.store
        return replica.trial_ingest(store, evs, lambda _res: admitted(store, body, self.people),
                                    now_ms=int(time.time() * 1000))


async def exchange(node: SyncNode, fs: FramedStream, peer: PeerRecord, hs: Hello, *, initiator: bool,
                   charge: Charge | None = None, stats: SyncStats) -> SyncStats:
    """Reconcile ``hs.shared`` and transfer the events each side lacks."""
    store = node.store
    shared = hs.shared
    items = store.items(shared)
    stats.bodies, stats.items = len(shared), len(items)
    r = Reconciler(items)
    extra = charge or Charge([])
    work = Work(len(items), Charge([peer.work, *extra.buckets], extra.wait))
    # The reconciliation's deadline counts the peer's time, not ours: time spent
    # waiting on our own work buckets or behind neighbours (Work.spend) extends it.
    stranger = not initiator and not peer.proven  # bounds rule 9
    limit = STRANGER_RECONCILE_S if stranger else RECONCILE_S
    read_timeout = fs.timeout
    with trio.CancelScope(deadline=trio.current_time() + limit) as scope:
        if initiator:
            await fs.write(wire.rec(r.initiate()), "rec")
        while True:
            f = await fs.expect("rec")
            if stranger:  # from its second round on (its first waits for its own snapshot of the items)
                fs.timeout = min(read_timeout, STRANGER_ROUND_S)
            if r.rounds >= MAX_ROUNDS:
                # An honest exchange needs about log16(n) rounds plus one per 48 KiB of ids.
                raise RemoteError("too_many_rounds", f"reconciliation exceeded {MAX_ROUNDS} rounds",
                                  field="rec")
            t = trio.current_time()
            await work.spend(r.cost(f["m"]), peer)
            scope.deadline += trio.current_time() - t
            reply, _have, _need = r.reconcile(f["m"])
            if reply is None:
                break
            await fs.write(wire.rec(reply), "rec")
            if r.done:
                break
    fs.timeout = read_timeout
    if scope.cancelled_caught:
        raise RemoteError("slow_reconcile", f"reconciliation took longer than {limit:.0f} s",
                          field="rec")
    stats.rounds = r.rounds
    stats.work = work.used
    stats.have, stats.need = len(r.have), len(r.need)
    peer.shared = shared
    cands = _Candidates(node, peer, hs) if hs.candidates else None

    async def send_events() -> None:
        order = [i for _, i in items if i in r.have]  # (ts, id) order: prevs before children
        batch: list[bytes] = []
        size = 0
        for k in range(0, len(order), 256):
            for raw in replica.raw_in_order(store, order[k : k + 256]):
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
                break
            raws = f["ev"]
            stats.received += len(raws)
            if cands is not None and cands.open:
                raws = _route(raws, cands, remaining, node, peer)
            got = 0
            if raws:
                got = await node.ingest_remote(raws, peer, source="sync", expect=remaining, bodies=shared)
                stats.new += got
            if cands is not None and (cands.due or cands.buf and got):
                stats.new += await cands.settle(shared)
        if cands is not None:
            stats.new += await cands.settle(shared, final=True)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_events)
            await receive_events()
    except BaseExceptionGroup as group:  # trio's strict groups: surface the peer's fault first
        raise _first(group) from None
    if cands is not None:
        stats.candidates_dropped = cands.dropped
    # The peer shares a held body: a clean session over one in which it held some of
    # the same events (items it did not ask for) or sent events we stored. A claim
    # backed by a whole clean session; inbound.py keeps reserved slots for such peers.
    if hs.shared & hs.mine and stats.items and (stats.items > stats.have or stats.new):
        peer.proven = True
    return stats


def _route(raws: list[bytes], cands: _Candidates, remaining: set[bytes], node: SyncNode,
           peer: PeerRecord) -> list[bytes]:
    """Split a frame: events of candidate bodies go to ``cands``; the rest is returned."""
    out: list[bytes] = []
    for raw in raws:
        try:
            ev = decode_event(raw, verify=False)
        except Rejected:
            out.append(raw)  # ingest_remote says why
            continue
        if ev.body_id not in cands.open:
            out.append(raw)
            continue
        if ev.id not in remaining:
            node.offend(peer, "unrequested", f"sync: event {ev.id.hex()[:12]} was not asked for")
            continue
        remaining.discard(ev.id)
        cands.take(ev.body_id, ev)
    return out


async def run_session(node: SyncNode, stream: Any, peer: PeerRecord, *, initiator: bool,
                      gate: Callable[[Hello], AbstractAsyncContextManager[Charge]] | None = None,
                      ) -> SyncStats:
    """One sync session; raises RemoteError (peer's fault) or StreamGone.

    ``gate`` (inbound sessions, inbound.py) is entered after the handshake: it
    waits for a session slot and gives what else the work is charged to.
    The whole session ends after SESSION_S (StreamGone: what was received is
    stored, the next session goes on from there).
    """
    t0 = time.monotonic()
    stats = SyncStats(peer=peer.peer_id, initiator=initiator)
    fs = FramedStream(stream)
    with trio.move_on_after(SESSION_S) as whole:
        hs = await handshake(node, fs, peer)
        if gate is None:  # our own session (we dialled): a neighbour's if the peer is proven
            with node.priority.neighbour() if peer.proven else nullcontext():
                await exchange(node, fs, peer, hs, initiator=initiator, stats=stats)
        else:
            async with gate(hs) as charge:
                await exchange(node, fs, peer, hs, initiator=initiator, charge=charge, stats=stats)
    if whole.cancelled_caught:
        raise StreamGone(f"the session took longer than {SESSION_S:.0f} s; the next one goes on")
    stats.handshake_bytes = fs.total("hello", "offer")
    stats.reconcile_bytes = fs.total("rec")
    stats.event_bytes = fs.total("ev", "end")
    stats.ms = int((time.monotonic() - t0) * 1000)
    return stats
