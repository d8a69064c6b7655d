"""A node's replication state and the one way events come in from the network.

:class:`Node` holds what the daemon's tasks share (daemon.py runs them): the
store, the peers and their bounds, the deferred queue, the sync scheduling.

Invariants:

1. The store is the truth. Everything from the network goes through
   ``ingest_remote``, which hands the bytes to the one intake
   (:func:`imier.store.intake.take`: decode, verify, admission, bounds, one
   transaction) and applies peer policy (offences, rate limits) to its report.
   Nothing is acknowledged that is not committed.
2. Gossip is a hint: an outbox entry is cleared once published, but whether
   any peer got it is never assumed; sync (on connect, on hints, after local
   events, periodic) makes the sets equal.
3. At most one outgoing sync per peer runs at a time; a request during a
   run makes it run once more afterwards (bounded).
4. Only the trio thread touches a Node. libp2p is imported lazily, so the
   class can be driven over memory streams in tests.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import ImierError, RemoteError
from ..store.causality import CAUSALITY, NOT_ADMITTED
from ..store.home import Config, Home
from ..store.intake import UNREQUESTED, WRONG_BODY, DeferredQueue, IntakeLimits, IntakeReport, take
from .bounds import MAX_SESSIONS, MAX_STREAMS, SESSION_WAIT_S, PeerRecord
from .holding import held_bodies
from .neighbours import FILE_NAME as NEIGHBOURS_FILE
from .neighbours import Neighbours
from .sync import Priority, StreamGone, SyncStats, run_session

__all__ = ["Options", "Node", "keep_running", "DEFERRED_RETRY_S"]

log = logging.getLogger("imier.daemon")
DEFERRED_RETRY_S = 5.0
OUTBOX_POLL_S = 0.25
WATCH_S = 0.5


@dataclass
class Options:
    listen: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = True
    gossip: bool = True
    sync_interval_s: float = 30.0
    max_skew_ms: int = 5 * 60 * 1000
    log_level: str = "info"
    name: str = "imier-node"
    limits: IntakeLimits = field(default_factory=IntakeLimits)

    @classmethod
    def from_config(cls, cfg: Config) -> "Options":
        return cls(
            listen=list(cfg.listen), bootstrap=list(cfg.bootstrap), mdns=cfg.mdns, gossip=cfg.gossip,
            sync_interval_s=cfg.sync_interval_ms / 1000, max_skew_ms=cfg.max_skew_ms,
            log_level=cfg.log_level, name=cfg.name, limits=cfg.intake_limits(),
        )


HELD_TTL_S = 5.0  # how long a computed holding stands when the store did not change


class Node:
    """State shared by the daemon's tasks. Only touched from the trio thread."""

    def __init__(self, home: Home, opts: Options, node_key: Any) -> None:
        self.home = home
        self.opts = opts
        self.name = opts.name
        self.store = home.store()
        self.node_key = node_key
        self.host: Any = None
        self.gossip: Any = None
        self.peers: dict[str, PeerRecord] = {}
        # Future-dated events to take when their time comes (bounded in bytes, s.9.3).
        self.deferred = DeferredQueue(opts.limits.deferred_max_bytes, opts.limits.deferred_peer_bytes)
        self._people: list[bytes] = []
        self._vouches: list[tuple[bytes, bytes]] = []
        self._people_at = 0.0
        self._held: set[bytes] = set()
        self._held_at = 0.0
        self._data_version = -1
        self.nursery: trio.Nursery | None = None
        self._syncing: set[str] = set()
        self._again: set[str] = set()
        # One outgoing session per peer at a time: the peer serves one session per
        # peer id (nodeapp/inbound.py), so a second one at once (a person's
        # `imier sync` while the daemon's own sync with that peer runs) would be
        # refused as busy; it waits for the running one instead (bounded by its deadline).
        self._session_locks: dict[str, trio.Lock] = {}
        self.priority = Priority()  # neighbours' sessions before strangers' rounds (sync.py)
        # peers proven before, across restarts (neighbours.py)
        self.neighbours = Neighbours(home.path / NEIGHBOURS_FILE, int(time.time() * 1000))
        self.outbox_event = trio.Event()
        self.changed = trio.Event()  # set when the held set may have changed
        self.started = time.time()
        self.last_syncs: list[dict[str, Any]] = []
        # Node-wide bound on inbound sessions: each holds a snapshot of the
        # (ts, id) items it reconciles (~400 MiB at 1M events, docs/performance.md).
        self.session_slots = trio.CapacityLimiter(MAX_SESSIONS)

    # -- what we hold ---------------------------------------------------------

    def people(self) -> list[bytes]:
        if time.monotonic() - self._people_at > 5:
            self._people = sorted(p.public for p in self.home.people())
            self._vouches = self.home.vouches()
            self._people_at = time.monotonic()
        return self._people

    def vouches(self) -> list[tuple[bytes, bytes]]:
        """This node's people's vouches for it (store/home.py), read with :meth:`people`."""
        self.people()
        return self._vouches

    def held(self, *, fresh: bool = False) -> set[bytes]:
        """The bodies this node holds (holding.py), recomputed when the store changed.

        The store's data version moves when another connection (the CLI) commits;
        our own ingests call this with ``fresh=True``.
        """
        dv = self.store.data_version()
        # Also with time alone: a body's 'federate' proposal is carried when its
        # contention window ends, and from then on this node holds the federation.
        stale = dv != self._data_version or time.monotonic() - self._held_at > HELD_TTL_S
        if fresh or stale:
            new = held_bodies(self.store, self.people())
            if new != self._held:
                self._held = new
                self.changed.set()
            self._held_at = time.monotonic()
            self._data_version = dv
        return self._held

    # -- peers ----------------------------------------------------------------

    def peer(self, peer_id: Any) -> PeerRecord:
        key = peer_id if isinstance(peer_id, str) else peer_id.to_string()
        rec = self.peers.get(key)
        if rec is None:
            rec = self.peers[key] = PeerRecord(peer_id=key, proven=self.neighbours.known(key))
        return rec

    def offend(self, peer: PeerRecord, code: str, message: str) -> None:
        log.warning("peer %s (%s): refused %s: %s", peer.peer_id[-8:], peer.node or "?", code, message)
        if peer.offend(code, message) and self.nursery is not None:
            log.warning("peer %s: %d offences; disconnecting and refusing it for a while",
                        peer.peer_id[-8:], peer.offence_count)
            self.nursery.start_soon(self._disconnect, peer.peer_id)

    async def _disconnect(self, peer_id: str) -> None:
        from libp2p.peer.id import ID

        with trio.move_on_after(3):
            try:
                await self.host.disconnect(ID.from_base58(peer_id))
            except Exception as exc:  # already gone
                log.debug("disconnect %s: %s", peer_id, exc)

    # -- the one way in ----------------------------------------------------------

    async def ingest_remote(
        self, raws: list[bytes], peer: PeerRecord, *, source: str,
        expect: set[bytes] | None = None, bodies: set[bytes] | None = None,
    ) -> int:
        """Events from ``peer`` through the one intake; returns how many were new."""
        rep = await self.take_remote(raws, peer, source=source, expect=expect, bodies=bodies)
        return 0 if rep is None else len(rep.new)

    async def take_remote(
        self, raws: list[bytes], peer: PeerRecord, *, source: str,
        expect: set[bytes] | None = None, bodies: set[bytes] | None = None,
    ) -> IntakeReport | None:
        """Rate limit, then :func:`~imier.store.intake.take`, then peer policy on its report
        (None: dropped over the gossip rate limit)."""
        if not raws:
            return IntakeReport(source=source)
        if source == "gossip":
            if not peer.bucket.take(len(raws)):
                log.info("peer %s: gossip over the rate limit; dropped %d (sync heals)",
                         peer.peer_id[-8:], len(raws))
                return None
        else:
            wait = peer.bucket.wait_time(len(raws))
            if wait > 0:
                await trio.sleep(wait)
            peer.bucket.take(min(len(raws), peer.bucket.burst))
        rep = take(
            self.store, raws, source=peer.peer_id, now_ms=int(time.time() * 1000),
            max_skew_ms=self.opts.max_skew_ms, limits=self.opts.limits, deferred=self.deferred,
            expect=expect, bodies=bodies,
        )
        self.apply_policy(peer, rep, source)
        return rep

    def apply_policy(self, peer: PeerRecord, rep: IntakeReport, source: str) -> None:
        """Peer policy on an intake report: offences, relaying, fetching what is missing."""
        unadmitted = 0
        for r in rep.refused:
            if r.code == NOT_ADMITTED:
                unadmitted += 1  # may be an honest race (the admission comes later): no offence
            elif r.code == CAUSALITY:
                self.offend(peer, "invalid_event", f"{source}: {r.id.hex()[:12]}: {r.message}")
            elif r.code == UNREQUESTED:
                self.offend(peer, "unrequested", f"{source}: event {r.id.hex()[:12]} was not asked for")
            elif r.code == WRONG_BODY:
                self.offend(peer, "wrong_body", f"{source}: event of a body not in this exchange")
            else:
                self.offend(peer, r.code, f"{source}: {r.message}")
        if unadmitted:
            log.info("%s from %s: refused %d event(s) by authors not admitted to their body",
                     source, peer.peer_id[-8:], unadmitted)
        if rep.deferred:
            log.info("deferred %d future-dated events from %s", len(rep.deferred), peer.peer_id[-8:])
        if rep.dropped:
            log.info("dropped %d held-back event(s) over the bounds (from %s)", len(rep.dropped),
                     peer.peer_id[-8:])
        peer.events_in += len(rep.new)
        if source == "gossip":
            peer.gossip_in += len(rep.new)
        if rep.new:
            log.info("%s from %s (%s): %d new events (%d pending)", source, peer.node or "?",
                     peer.peer_id[-8:], len(rep.new), len(rep.pending))
            self.held(fresh=True)
            # Others may lack them too: relay by reconciling with the other peers soon.
            for other in list(self.peers.values()):
                if other.connected and other.peer_id != peer.peer_id:
                    self.request_sync(other.peer_id, delay=0.3)
        if source == "gossip" and rep.pending:
            # A hint of something missing: the prevs are on the author's node. Sync with
            # it if we are connected, else with every peer (the message came through them).
            if peer.connected:
                self.request_sync(peer.peer_id)
            else:
                for other in list(self.peers.values()):
                    if other.connected:
                        self.request_sync(other.peer_id)

    # -- syncs ----------------------------------------------------------------------

    def request_sync(self, peer_id: str, *, delay: float = 0.0) -> None:
        if self.nursery is None:
            return
        if peer_id in self._syncing:
            self._again.add(peer_id)
            return
        self._syncing.add(peer_id)
        self.nursery.start_soon(self._sync_loop, peer_id, delay)

    async def _sync_loop(self, peer_id: str, delay: float) -> None:
        try:
            if delay:
                await trio.sleep(delay)
            for _ in range(5):  # bounded re-runs (invariant 3)
                self._again.discard(peer_id)
                await self.sync_with(peer_id)
                if peer_id not in self._again:
                    break
        finally:
            self._syncing.discard(peer_id)

    async def sync_with(self, peer_id: str) -> SyncStats | None:

        peer = self.peer(peer_id)
        if peer.banned():
            return None
        if peer.streams:
            # The peer is syncing with us right now (inbound): that session reconciles
            # both ways. A second one is redundant, and against a temporary host (a
            # person's 'imier sync') the stream could not be opened, and giving up on
            # it reset the connection under the running session.
            log.debug("sync with %s: skipped, its own session with us is running", peer_id[-8:])
            return None
        lock = self._session_locks.setdefault(peer_id, trio.Lock())
        try:
            async with lock:
                return await self._session(peer_id, peer)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._session_locks.pop(peer_id, None)  # kept only while in use

    async def _session(self, peer_id: str, peer: PeerRecord) -> SyncStats | None:
        from libp2p.peer.id import ID

        stream = None
        try:
            with trio.fail_after(10):
                stream = await self.host.new_stream(ID.from_base58(peer_id), [wire.SYNC_PROTOCOL])
            stats = await run_session(self, stream, peer, initiator=True)
        except trio.TooSlowError:
            log.info("sync with %s: could not open a stream in time", peer_id[-8:])
            return None
        except RemoteError as exc:
            self.offend(peer, exc.code, f"sync: {exc}")
            await _send_err(stream, exc)
            return None
        except StreamGone as exc:
            log.info("sync with %s ended early: %s", peer_id[-8:], exc)
            return None
        except Exception as exc:  # libp2p dial/negotiation errors
            log.info("sync with %s failed: %s: %s", peer_id[-8:], type(exc).__name__, exc)
            return None
        finally:
            await _close(stream)
        self._record(peer, stats)
        return stats

    def _record(self, peer: PeerRecord, stats: SyncStats) -> None:
        if peer.proven:
            self.neighbours.proved(peer.peer_id, int(time.time() * 1000))
        peer.syncs += 1
        peer.last_sync = stats.to_json()
        self.last_syncs = (self.last_syncs + [stats.to_json()])[-20:]
        level = logging.INFO if (stats.need or stats.have) else logging.DEBUG
        log.log(level, "synced with %s (%s): %d bodies, %d items, sent %d, got %d new; "
                "reconcile %d B in %d rounds, %d ms", peer.node or "?", peer.peer_id[-8:],
                stats.bodies, stats.items, stats.have, stats.new, stats.reconcile_bytes,
                stats.rounds, stats.ms)

    async def handle_stream(self, stream: Any) -> None:
        """Inbound /imier/sync/1 stream (bounds: streams per peer, bans)."""
        try:
            peer_id = stream.muxed_conn.peer_id.to_string()
        except Exception:
            await _close(stream)
            return
        peer = self.peer(peer_id)
        if peer.banned():
            await _close(stream)
            return
        if peer.streams >= MAX_STREAMS:
            self.offend(peer, "too_many_streams", f"more than {MAX_STREAMS} sync streams at once")
            await _close(stream)
            return
        peer.streams += 1
        try:
            with trio.move_on_after(SESSION_WAIT_S) as waited:
                await self.session_slots.acquire()
            if waited.cancelled_caught:
                log.info("sync from %s refused: %d sessions already running", peer_id[-8:], MAX_SESSIONS)
                return  # not an offence: the peer retries on its next sync tick
            try:
                stats = await run_session(self, stream, peer, initiator=False)
            finally:
                self.session_slots.release()
            self._record(peer, stats)
        except RemoteError as exc:
            self.offend(peer, exc.code, f"sync: {exc}")
            await _send_err(stream, exc)
        except StreamGone as exc:
            log.info("sync from %s ended early: %s", peer_id[-8:], exc)
        except Exception as exc:
            log.warning("sync from %s failed: %s: %s", peer_id[-8:], type(exc).__name__, exc)
        finally:
            peer.streams -= 1
            await _close(stream)

    # -- background tasks ---------------------------------------------------------------

    async def watch_peers(self) -> None:
        """New connections start a sync; lost ones are marked (every WATCH_S)."""
        while True:
            try:
                connected = {p.to_string() for p in self.host.get_connected_peers()}
            except Exception:
                connected = set()
            for pid in connected:
                rec = self.peer(pid)
                if not rec.connected:
                    rec.connected = True
                    if rec.banned():
                        self.nursery.start_soon(self._disconnect, pid)  # type: ignore[union-attr]
                        continue
                    log.info("connected to %s", pid)
                    try:
                        from libp2p.peer.id import ID

                        rec.addrs = [str(a) for a in self.host.get_peerstore().addrs(ID.from_base58(pid))]
                    except Exception:
                        pass
                    self.request_sync(pid)
            for rec in self.peers.values():
                if rec.connected and rec.peer_id not in connected:
                    rec.connected = False
                    log.info("disconnected from %s (%s)", rec.node or "?", rec.peer_id[-8:])
            await trio.sleep(WATCH_S)

    async def periodic_sync(self) -> None:
        while True:
            await trio.sleep(self.opts.sync_interval_s)
            self.held()  # with time alone the holding can grow (a body's federate carried)
            for rec in list(self.peers.values()):
                if rec.connected and not rec.banned():
                    self.request_sync(rec.peer_id)

    async def publish_outbox(self) -> None:
        """Local events (the CLI writes them to the store and the outbox) go out as gossip."""
        while True:
            with trio.move_on_after(OUTBOX_POLL_S):
                await self.outbox_event.wait()
            self.outbox_event = trio.Event()
            ids = self.store.outbox(limit=256)
            if not ids:
                continue
            self.held(fresh=True)
            raws = self.store.raw_many(ids)
            if self.gossip is not None:
                await self.gossip.publish(raws)
            self.store.outbox_done(ids)
            log.info("published %d local event(s)%s", len(raws), "" if self.gossip else " (gossip off)")
            # With gossip off, or to reach peers outside the mesh yet, reconcile soon.
            for rec in list(self.peers.values()):
                if rec.connected:
                    self.request_sync(rec.peer_id, delay=0.0 if self.gossip is None else 1.0)

    async def retry_deferred(self) -> None:
        while True:
            await trio.sleep(DEFERRED_RETRY_S)
            self.take_due()

    def take_due(self, now_ms: int | None = None) -> int:
        """Take the deferred events whose time has come (through the intake); returns how many were new."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        new = 0
        for src, evs in self.deferred.due(now, self.opts.max_skew_ms).items():
            rep = take(self.store, evs, source=src, now_ms=now, max_skew_ms=self.opts.max_skew_ms,
                       limits=self.opts.limits, deferred=self.deferred)
            new += len(rep.new)
            peer = self.peers.get(src)
            if peer is not None:
                self.apply_policy(peer, rep, "deferred")
        if new:
            log.info("took %d deferred events now that their time has come", new)
            self.held(fresh=True)
        return new

    # -- status ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        from .host import full_addrs

        return {
            "pid": os.getpid(),
            "name": self.name,
            "peer_id": self.host.get_id().to_string(),
            "addresses": full_addrs(self.host),
            "started": int(self.started),
            "control": str(self.home.socket_path),
            "gossip": self.gossip is not None,
            "mdns": self.opts.mdns,
        }

    def peers_doc(self) -> dict[str, Any]:
        return {
            "peer_id": self.host.get_id().to_string(),
            "held": sorted(b.hex() for b in self.held()),
            "peers": [p.to_json() for p in sorted(self.peers.values(), key=lambda p: p.peer_id)],
            "deferred": len(self.deferred),
            "deferred_bytes": self.deferred.bytes,
            "pending_bytes": self.store.pending_bytes(),
            "events": self.store.count(),
        }


async def keep_running(name: str, fn: Any) -> None:
    """Run a background loop; an error is logged and the loop restarted, later each time
    (0.5 s doubling to 30 s). An error the world causes (a full disk, a store busy
    or unreadable: ``ImierError``, which says what to do) is one warning line; only
    an unexpected one, a bug, is logged with its traceback."""
    for attempt in range(1_000_000):
        wait = min(30.0, 0.5 * 2 ** min(attempt, 6))
        try:
            await fn()
            return
        except ImierError as exc:
            log.warning("%s: %s%s; trying again in %.0f s", name, exc.message,
                        f" ({exc.hint})" if exc.hint else "", wait)
        except Exception:
            log.exception("%s failed; restarting it", name)
        await trio.sleep(wait)


async def _send_err(stream: Any, exc: RemoteError) -> None:
    if stream is None:
        return
    with trio.move_on_after(1):
        try:
            await stream.write(wire.err(exc.code, str(exc)))
        except Exception:
            pass


async def _close(stream: Any) -> None:
    if stream is None:
        return
    with trio.move_on_after(2):
        try:
            await stream.close()
        except Exception:
            pass
