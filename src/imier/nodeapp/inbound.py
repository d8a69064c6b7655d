"""Inbound sync streams: who gets a session, and what each session may cost.

The daemon hands every inbound ``/imier/sync/1`` stream to :meth:`Inbound.handle`.

Invariants (bounds.py rules 5-7 for the numbers):

1. Costs are counted per peer id, per connection (its remote address and
   port) and per source address (its IP), because a new peer id costs an
   attacker nothing. A connection carries at most ``MAX_STREAMS_PER_CONN``
   sync streams, a peer id at most ``MAX_STREAMS``; more are refused as an
   offence.
2. A session slot is taken only after the handshake (which has its own
   deadline, ``HANDSHAKE_S``): a peer that sends its hello a byte at a time
   holds a stream for seconds and no slot at all.
3. ``MAX_SESSIONS`` slots serve anyone; ``RESERVED_SESSIONS`` more serve only
   peers that share a held body: the peer's hello names a body this node
   holds, and an earlier session proved the peer holds its events
   (``PeerRecord.proven``: the whole-set fingerprint matched, or it sent
   events of a held body that were stored). Strangers cannot take them, so a
   known neighbour syncs whatever strangers do. One session at a time per
   peer id and per connection, and at most ``STRANGER_SESSIONS_PER_SOURCE``
   for peers not proven from one source address (bounds rule 9).
4. Reconcile work is charged to the peer's bucket (sync.py), the
   connection's and the source's; peers not proven also share one node-wide
   bucket, so many fresh peer ids together get no more than one, and their
   rounds wait while a neighbour's session reconciles (``Priority``, bounds
   rule 8).
5. Waiting for a slot is bounded (``SESSION_WAIT_S``); a stream that finds
   none is closed without an offence (the peer retries on its next tick).
6. Events of bodies this node does not hold cost it bytes read and memory
   (sync.py keeps them until it knows), never storage. A source whose peers
   sent such events ``UNHELD_STRIKES`` times lately gets no such allowance for
   peers not proven: the first event of a body we do not hold ends the session
   (fresh peer ids from the same address gain nothing).
7. A peer whose hello carries a valid vouch (syncwire.vouch_message) by a
   person of a body both sides hold is a node of one of our people: it is
   proven from its first session (a new member's laptop gets the reserved
   slots and goes before strangers, whatever strangers do).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import RemoteError
from .bounds import (
    MAX_SESSIONS,
    MAX_SESSIONS_PER_PEER,
    MAX_STREAMS,
    MAX_STREAMS_PER_CONN,
    RESERVED_SESSIONS,
    SESSION_WAIT_S,
    STRANGER_SESSIONS_PER_SOURCE,
    WORK_BURST,
    WORK_RATE,
    PeerRecord,
    TokenBucket,
)
from .sync import Charge, Hello, StreamGone, run_session

__all__ = ["Inbound", "Busy", "MAX_SOURCES"]

log = logging.getLogger("imier.daemon")
MAX_SOURCES = 4096  # source addresses remembered (the oldest is forgotten first)
# A source whose peers sent events of bodies we do not hold this many times within
# UNHELD_WINDOW_S is a junk source: its strangers' next offers of such bodies end
# their session at the first such event (invariant 6).
UNHELD_STRIKES = 3
UNHELD_WINDOW_S = 600.0


class Busy(StreamGone):
    """No session for this stream now (not the peer's fault)."""


@dataclass
class Counter:
    """What one connection or one source address costs us."""

    streams: int = 0
    sessions: int = 0
    stranger_sessions: int = 0  # of peers not proven (bounds rule 9)
    refused: int = 0
    unheld: deque[float] = field(default_factory=lambda: deque(maxlen=UNHELD_STRIKES))
    work: TokenBucket = field(default_factory=lambda: TokenBucket(WORK_RATE, WORK_BURST))


def _node_public(stream: Any) -> bytes | None:
    """The Ed25519 public key the peer's id is made of (authenticated by the
    connection's handshake), or None."""
    try:
        return bytes(stream.muxed_conn.peer_id.extract_public_key().to_bytes())
    except Exception:
        return None


def _remote(stream: Any) -> tuple[str, int]:
    try:
        addr = stream.get_remote_address()
        if addr:
            return str(addr[0]), int(addr[1])
    except Exception:
        pass
    return "?", 0


class Inbound:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.general = trio.CapacityLimiter(MAX_SESSIONS)
        self.reserved = trio.CapacityLimiter(RESERVED_SESSIONS)
        self.conns: dict[tuple[str, int], Counter] = {}
        self.sources: OrderedDict[str, Counter] = OrderedDict()
        self.strangers = TokenBucket(WORK_RATE, WORK_BURST)  # every peer not proven, together
        self.sessions: dict[str, int] = {}

    def source(self, ip: str) -> Counter:
        c = self.sources.get(ip)
        if c is None:
            c = self.sources[ip] = Counter(work=TokenBucket(2 * WORK_RATE, 2 * WORK_BURST))
            while len(self.sources) > MAX_SOURCES:
                self.sources.popitem(last=False)
        else:
            self.sources.move_to_end(ip)
        return c

    async def handle(self, stream: Any) -> None:
        node = self.node
        try:
            peer_id = stream.muxed_conn.peer_id.to_string()
        except Exception:
            await _close(stream)
            return
        peer = node.peer(peer_id)
        if peer.banned():
            await _close(stream)
            return
        key = _remote(stream)
        peer.source = key[0]
        conn = self.conns.setdefault(key, Counter())
        src = self.source(key[0])
        if peer.streams >= MAX_STREAMS or conn.streams >= MAX_STREAMS_PER_CONN:
            conn.refused += 1
            node.offend(peer, "too_many_streams",
                        f"more than {MAX_STREAMS_PER_CONN} sync streams at once on one connection"
                        if conn.streams >= MAX_STREAMS_PER_CONN else f"more than {MAX_STREAMS} sync streams at once")
            await _close(stream)
            if conn.streams == 0:
                self.conns.pop(key, None)
            return
        peer.streams += 1
        conn.streams += 1
        src.streams += 1
        seen = peer.offence_count
        try:
            # a neighbour's whole session, handshake included, goes before strangers' rounds
            with node.priority.neighbour() if peer.proven else nullcontext():
                stats = await run_session(node, stream, peer, initiator=False,
                                      gate=self._gate(peer, conn, src, _node_public(stream)))
            node._record(peer, stats)
        except Busy as exc:
            log.info("sync from %s not served now: %s", peer_id[-8:], exc)
        except RemoteError as exc:
            node.offend(peer, exc.code, f"sync: {exc}")
            await _send_err(stream, exc)
        except StreamGone as exc:
            log.info("sync from %s ended early: %s", peer_id[-8:], exc)
        except Exception as exc:
            log.warning("sync from %s failed: %s: %s", peer_id[-8:], type(exc).__name__, exc)
        finally:
            fresh = peer.offence_count - seen
            if fresh > 0 and any(c == "unheld_body" for _, c, _ in list(peer.offences)[-fresh:]):
                src.unheld.append(time.monotonic())
            peer.streams -= 1
            conn.streams -= 1
            src.streams -= 1
            if conn.streams <= 0:
                self.conns.pop(key, None)
            await _close(stream)

    def vouched(self, peer: PeerRecord, hs: Hello, node_public: bytes | None) -> bool:
        """Whether a person of a body both sides hold vouches for the peer's node key
        (syncwire.vouch_message): a node of one of our people, a neighbour from its
        first session (invariant 7). Only persons of those bodies are checked, so a
        hello full of junk vouches costs a lookup each and no signature check."""
        if node_public is None or not hs.vouch:
            return False
        both = hs.theirs & hs.mine
        if not both:
            return False
        persons: set[bytes] = set()
        for b in sorted(both)[:64]:
            persons |= self.node.store.persons(b)
        for person, sig in hs.vouch:
            if person in persons and wire.vouch_valid(person, sig, node_public):
                log.info("peer %s is a node of a person of a held body (vouched); served as a neighbour",
                         peer.peer_id[-8:])
                return True
        return False

    def _gate(self, peer: PeerRecord, conn: Counter, src: Counter, node_public: bytes | None = None
              ) -> Callable[[Hello], AbstractAsyncContextManager[Charge]]:
        @asynccontextmanager
        async def gate(hs: Hello) -> AsyncIterator[Charge]:
            if self.sessions.get(peer.peer_id, 0) >= MAX_SESSIONS_PER_PEER or conn.sessions >= 1:
                raise Busy("a session with this peer is already running")
            if not peer.proven and self.vouched(peer, hs, node_public):
                peer.proven = True
            shares = peer.proven and bool(hs.theirs & hs.mine)
            now = time.monotonic()
            if (not peer.proven and len(src.unheld) >= UNHELD_STRIKES
                    and now - src.unheld[0] <= UNHELD_WINDOW_S):
                hs.candidate_limit = 0
            if self.general.available_tokens == 0 and shares:
                limiter = self.reserved
            else:
                limiter = self.general
            stranger = not peer.proven

            def room() -> bool:  # for a stranger: its address holds fewer strangers' slots than allowed
                return not stranger or src.stranger_sessions < STRANGER_SESSIONS_PER_SOURCE

            with trio.move_on_after(SESSION_WAIT_S) as waited:
                # bounded by the deadline: at most SESSION_WAIT_S / 0.05 passes
                while True:
                    if room():
                        await limiter.acquire()
                        if room():
                            break
                        limiter.release()  # another stranger from this address got in first
                    await trio.sleep(0.05)
            if waited.cancelled_caught:
                if not room():
                    raise Busy(f"this address already has {src.stranger_sessions} session(s) of peers "
                               "not yet known here (bounds rule 9)")
                raise Busy(f"all {MAX_SESSIONS} session slots are taken"
                           + ("" if shares else " (reserved ones are kept for peers sharing a held body)"))
            self.sessions[peer.peer_id] = self.sessions.get(peer.peer_id, 0) + 1
            conn.sessions += 1
            src.sessions += 1
            src.stranger_sessions += stranger
            try:
                if peer.proven:
                    yield Charge([conn.work])
                else:
                    yield Charge([conn.work, src.work, self.strangers], self.node.priority.after_neighbours)
            finally:
                limiter.release()
                conn.sessions -= 1
                src.sessions -= 1
                src.stranger_sessions -= stranger
                n = self.sessions.get(peer.peer_id, 1) - 1
                if n:
                    self.sessions[peer.peer_id] = n
                else:
                    self.sessions.pop(peer.peer_id, None)

        return gate

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": MAX_SESSIONS - int(self.general.available_tokens),
            "reserved_sessions": RESERVED_SESSIONS - int(self.reserved.available_tokens),
            "connections": len(self.conns),
            "neighbour_waits": self.node.priority.waits,  # strangers' rounds that waited (sync.Priority)
            "sources": {ip: {"streams": c.streams, "sessions": c.sessions}
                        for ip, c in self.sources.items() if c.streams or c.sessions},
        }


async def _send_err(stream: Any, exc: RemoteError) -> None:
    with trio.move_on_after(1):
        try:
            await stream.write(wire.err(exc.code, str(exc)))
        except Exception:
            pass


async def _close(stream: Any) -> None:
    with trio.move_on_after(2):
        try:
            await stream.close()
        except Exception:
            pass
