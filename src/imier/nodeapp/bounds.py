"""Per-peer bounds and offence accounting (the daemon's view of each peer).

Invariants:

1. Every frame read from a peer is at most ``MAX_FRAME_BYTES`` (checked on
   the length header, before the body is read) and every read has a deadline.
2. A peer has at most ``MAX_STREAMS`` sync streams open with us at a time;
   more are refused (and counted). All peers together have at most
   ``MAX_SESSIONS`` inbound sessions running; a stream that finds no slot
   within ``SESSION_WAIT_S`` is closed (not an offence), which bounds the
   daemon's memory whatever the number of peers.
3. Events from a peer pass a token bucket of ``EVENTS_PER_SECOND`` (burst
   ``EVENT_BURST``): sync waits for tokens (back-pressure, under the read
   deadline); gossip drops what does not fit (sync heals it).
4. Each refusal of a peer's data is an *offence* with a reason code, logged
   and kept (the last ``KEEP_OFFENCES``); after ``MAX_OFFENCES`` within
   ``OFFENCE_WINDOW_S`` the peer is disconnected and refused for ``BAN_S``.
5. A session has deadlines for its phases and in total, not only per read:
   the handshake (hello and offer both ways) within ``HANDSHAKE_S``, the
   reconciliation within ``RECONCILE_S``, the whole session within
   ``SESSION_S``. A slow peer holds a stream for seconds, not for as long as
   it likes (a byte every 10 s no longer keeps a session alive).
6. Reconciliation work is counted before it is done
   (:meth:`~imier.protocol.reconcile.Reconciler.cost`: an upper bound from the
   message's bytes and, per range, what answering it may make us hash, split
   or scan, in units of about a microsecond) and
   capped per round, per session (``session_work``, a multiple of the items
   reconciled: an honest exchange needs a few times that, a replayed sketch
   would need it every round), and over time by token buckets per peer id,
   per connection and per source address. A session over its cap ends as an
   offence (``work_budget``); a bucket that runs dry makes the session wait.
7. Costs are counted per connection and per source address as well as per
   peer id, because a new peer id costs an attacker nothing: a connection
   may carry at most ``MAX_STREAMS_PER_CONN`` sync streams and one session
   at a time, whatever peer id it claims.
8. Neighbours first: while this node reconciles with a proven peer, the next
   round of a peer not proven waits until that is done, at most
   ``NEIGHBOUR_WAIT_S`` a round (sync.Priority). Strangers get the node's
   time that neighbours leave, so a good peer's sync is not queued behind
   replayed sketches.
9. Strangers hold slots briefly: a source address holds at most
   ``STRANGER_SESSIONS_PER_SOURCE`` general slots for peers not proven (a
   new peer id from the same address waits), their reconcile rounds after
   the first must come within ``STRANGER_ROUND_S`` and their whole reconciliation within
   ``STRANGER_RECONCILE_S``. A peer that completes a handshake and then
   sends a round every 13 s held a slot for 65 s per peer id; now at most
   10 + 8 s, and one per address. Proven peers are remembered across
   restarts (neighbours.py), so an attacker present when the node starts
   does not put its neighbours back among strangers.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PeerRecord",
    "TokenBucket",
    "MAX_STREAMS",
    "MAX_SESSIONS",
    "SESSION_WAIT_S",
    "EVENTS_PER_SECOND",
    "EVENT_BURST",
    "MAX_OFFENCES",
    "OFFENCE_WINDOW_S",
    "BAN_S",
    "READ_TIMEOUT_S",
    "HANDSHAKE_S",
    "RECONCILE_S",
    "SESSION_S",
    "RESERVED_SESSIONS",
    "MAX_STREAMS_PER_CONN",
    "MAX_SESSIONS_PER_PEER",
    "CANDIDATE_BYTES",
    "WORK_RATE",
    "WORK_BURST",
    "round_work",
    "session_work",
    "NEIGHBOUR_WAIT_S",
    "STRANGER_SESSIONS_PER_SOURCE",
    "STRANGER_ROUND_S",
    "STRANGER_RECONCILE_S",
]

MAX_STREAMS = 4
MAX_SESSIONS = 2
SESSION_WAIT_S = 10.0
EVENTS_PER_SECOND = 2000.0
EVENT_BURST = 5000.0
MAX_OFFENCES = 5
OFFENCE_WINDOW_S = 600.0
BAN_S = 600.0
KEEP_OFFENCES = 20
READ_TIMEOUT_S = 15.0
HANDSHAKE_S = 10.0
RECONCILE_S = 60.0
SESSION_S = 300.0
# Inbound sessions: MAX_SESSIONS for anyone, RESERVED_SESSIONS more kept for
# peers that share a held body (bounds rule 8 in inbound.py).
RESERVED_SESSIONS = 2
MAX_STREAMS_PER_CONN = 4
MAX_SESSIONS_PER_PEER = 1
# Strangers (peers not proven): general slots one source address may hold at once,
# the longest a round may take to come, and the longest their reconciliation may
# take (rule 9). An honest first sync of 200k events from nothing takes ~550
# rounds: ~4 s on loopback, ~30 s at 50 ms a round trip.
STRANGER_SESSIONS_PER_SOURCE = 1
STRANGER_ROUND_S = 8.0
STRANGER_RECONCILE_S = 40.0
# Reconciliation work, in units of about one id hashed into a sketch (0.8-1.4 us
# here: Reconciler.cost, measured in docs/performance.md).
WORK_ROUND_BASE = 1 << 16
WORK_SESSION_FACTOR = 24
WORK_SESSION_BASE = 1 << 20
WORK_RATE = 100_000.0  # units per second a peer, a connection or a source earns back (~10% of a core)
WORK_BURST = 4_000_000.0
NEIGHBOUR_WAIT_S = 2.0  # the longest a stranger's round waits behind neighbours' sessions
CANDIDATE_BYTES = 32 * 1024 * 1024  # offered, not yet held: bytes a session may keep in memory


def round_work(items: int) -> int:
    """The most work one reconcile round may take (ranges are disjoint: at most
    every item once for the answer and once for a doubled sketch)."""
    return 2 * items + WORK_ROUND_BASE


def session_work(items: int) -> int:
    """The most reconcile work one session may take over ``items`` items."""
    return WORK_SESSION_FACTOR * items + WORK_SESSION_BASE


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.clock = clock
        self.last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def take(self, n: float) -> bool:
        """Take ``n`` tokens if there are enough."""
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def wait_time(self, n: float) -> float:
        """Seconds until ``n`` tokens are there (``n`` is capped at the burst)."""
        self._refill()
        n = min(n, self.burst)
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate


@dataclass
class PeerRecord:
    peer_id: str
    node: str = ""
    addrs: list[str] = field(default_factory=list)
    bodies: set[bytes] = field(default_factory=set)  # what the peer said it holds
    shared: set[bytes] = field(default_factory=set)  # what the last sync reconciled
    connected: bool = False
    streams: int = 0
    offences: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=KEEP_OFFENCES))
    offence_count: int = 0
    banned_until: float = 0.0
    syncs: int = 0
    last_sync: dict[str, Any] = field(default_factory=dict)
    events_in: int = 0
    events_out: int = 0
    gossip_in: int = 0
    bucket: TokenBucket = field(default_factory=lambda: TokenBucket(EVENTS_PER_SECOND, EVENT_BURST))
    work: TokenBucket = field(default_factory=lambda: TokenBucket(WORK_RATE, WORK_BURST))
    work_done: int = 0  # reconcile work units spent on this peer's sessions
    # Set once a session completed cleanly over a held body in which the peer
    # held some of the same events (fingerprints agreed somewhere, or it sent
    # events of ours we accepted): it shares a held body (inbound.py's reserve).
    proven: bool = False
    source: str = ""  # the address its last connection came from

    def offend(self, code: str, message: str, now: float | None = None) -> bool:
        """Count an offence; True when the peer has now earned a disconnection."""
        now = time.time() if now is None else now
        self.offences.append((now, code, message))
        self.offence_count += 1
        recent = sum(1 for t, _, _ in self.offences if now - t <= OFFENCE_WINDOW_S)
        if recent >= MAX_OFFENCES:
            self.banned_until = now + BAN_S
            return True
        return False

    def banned(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.banned_until

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "node": self.node,
            "addresses": self.addrs,
            "connected": self.connected,
            "bodies": sorted(b.hex() for b in self.bodies),
            "shared": sorted(b.hex() for b in self.shared),
            "syncs": self.syncs,
            "last_sync": self.last_sync,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "gossip_in": self.gossip_in,
            "offences": self.offence_count,
            "recent_offences": [
                {"at": int(t), "code": c, "reason": m} for t, c, m in list(self.offences)[-5:]
            ],
            "banned": self.banned(),
            "proven": self.proven,
            "work": self.work_done,
            "source": self.source,
        }
