"""The one module that knows py-libp2p's settings and quirks (pinned ==0.8.1).

Everything else in nodeapp/ asks this module for a host, a router or a
key pair, so an upgrade of py-libp2p touches one file. Each patch names the
upstream behaviour it works around (measured: docs/architecture.md).

Importing this module imports libp2p (about a second, and libp2p configures
logging at import): only the daemon and the network commands import it.
"""

from __future__ import annotations

import logging
from typing import Any

import libp2p  # noqa: F401  (import first: it configures logging, which we override below)
import libp2p.network.swarm as _swarm
import libp2p.transport.tcp.tcp as _tcp
import libp2p.pubsub.pubsub as _pubsub
import libp2p.pubsub.rpc_queue as _rpc_queue
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

__all__ = [
    "key_pair_from_seed",
    "port_taken",
    "make_host",
    "make_gossip",
    "configure_logging",
    "GOSSIPSUB_PROTOCOL",
    "QUEUE_SIZE",
]

GOSSIPSUB_PROTOCOL = TProtocol("/meshsub/1.1.0")
QUEUE_SIZE = 1024

# 1. Every dial waits 250 ms before returning even when the first address
#    succeeded (network/swarm.py `_HAPPY_EYEBALLS_DELAY`, 0.8.1). We dial one
#    address at a time, so the head start buys nothing: make it short.
_swarm._HAPPY_EYEBALLS_DELAY = 0.02

# 2. GossipSub drops silently on full queues: per-peer outbound RPC queue of
#    32 (pubsub/rpc_queue.py `OutBoundQueueSize`, bound as a default argument,
#    hence the __defaults__ patch) and per-subscription channels of 32
#    (pubsub/pubsub.py `SUBSCRIPTION_CHANNEL_SIZE`, read at call time).
#    Gossip is only a hint for Imier (sync is the truth), but fewer drops
#    mean lower latency.
_pubsub.SUBSCRIPTION_CHANNEL_SIZE = QUEUE_SIZE
for _cls_name in ("PriorityQueue", "RpcQueue"):
    _cls = getattr(_rpc_queue, _cls_name, None)
    _init = getattr(_cls, "__init__", None)
    if _init is not None and getattr(_init, "__defaults__", None):
        _d = list(_init.__defaults__)
        _d[0] = QUEUE_SIZE
        _init.__defaults__ = tuple(_d)


# 8. The TCP transport sets SO_REUSEPORT on every listening and dialling socket
#    (transport/tcp/tcp.py `_set_reuse_flags`, 0.8.1, for hole punching), so a
#    second daemon given a port already in use listens beside the first and
#    the kernel splits incoming connections between them. Imier does no hole
#    punching: keep SO_REUSEADDR (restarts while old connections linger in
#    TIME_WAIT) and drop SO_REUSEPORT, so a taken port fails to bind.
def _reuse_addr_only(sock: Any) -> None:
    import socket as _socket

    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    except OSError:
        pass


if hasattr(_tcp, "_set_reuse_flags"):
    _tcp._set_reuse_flags = _reuse_addr_only


# 7. Pubsub starts one task per received message, unbounded (pubsub.py
#    `continuously_read_stream` -> `run_task(self.push_msg, ...)`, 0.8.1): a
#    flooding peer makes us run any number of them. Bound the messages being
#    handled at once; beyond it, messages from peers are dropped (gossip is a
#    hint; sync heals), our own publications never are.
MAX_INFLIGHT_MESSAGES = 256
_orig_push_msg = Pubsub.push_msg


async def _bounded_push_msg(self: Any, msg_forwarder: Any, msg: Any) -> None:
    inflight = getattr(self, "_imier_inflight", 0)
    if inflight >= MAX_INFLIGHT_MESSAGES and msg_forwarder != self.my_id:
        self._imier_dropped = getattr(self, "_imier_dropped", 0) + 1
        return
    self._imier_inflight = inflight + 1
    try:
        await _orig_push_msg(self, msg_forwarder, msg)
    finally:
        self._imier_inflight -= 1


Pubsub.push_msg = _bounded_push_msg  # type: ignore[method-assign]


def port_taken(host: str, port: int) -> OSError | None:
    """Whether ``host:port`` cannot be bound now (another listener has it), probed
    the way the transport binds, before libp2p starts (which would only log it)."""
    import socket as _socket

    if port == 0:
        return None
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    s = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(1)
    except OSError as exc:
        return exc
    finally:
        s.close()
    return None


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """The node's libp2p identity from its Ed25519 seed (same public key as PyNaCl's)."""
    return create_new_key_pair(seed)


def make_host(key_pair: KeyPair, listen: list[Any]) -> Any:
    """A host with TCP, Noise only, Yamux only, and no mDNS (discovery.py runs it)."""
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        listen_addrs=listen,
        # 3. Mplex hangs on large transfers (0.8.1): offer Yamux only.
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        # 4. The default offers TLS, SECIO and plaintext too: Noise only.
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        enable_mDNS=False,
    )


def make_gossip(host: Any) -> tuple[Any, Any]:
    """``(pubsub, router)``: GossipSub with a 1 s heartbeat and no spam limiter.

    5. The default heartbeat is 120 s (a new peer joins the mesh minutes
       late), and ``spam_protection_enabled`` rate-limits our own publishes
       to 10/s per topic. Imier bounds peers itself (nodeapp/bounds.py).
    """
    router = GossipSub(
        protocols=[GOSSIPSUB_PROTOCOL],
        degree=6,
        degree_low=4,
        degree_high=12,
        time_to_live=30,
        gossip_window=3,
        gossip_history=5,
        heartbeat_initial_delay=0.2,
        heartbeat_interval=1,
        spam_protection_enabled=False,
        eclipse_protection_enabled=False,
    )
    # Message ids by content: the same event published by two nodes is one message.
    from libp2p.pubsub.pubsub import ContentAddressedMessageIDGenerator

    pubsub = Pubsub(
        host,
        router,
        msg_id_constructor=ContentAddressedMessageIDGenerator(),
        max_inbound_rpc_size=1024 * 1024,
    )
    return pubsub, router


def configure_logging(level: str) -> None:
    """Readable logs for a person: Imier's at ``level``, libp2p's only when something breaks.

    6. ``import libp2p`` configures logging handlers at import time; reset them here.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    lvl = getattr(logging, level.upper(), logging.INFO)
    # libp2p sets levels on its own loggers; filter at the handler instead.
    # Imier reports every failure it acts on in its own words; the library's own
    # messages (dial errors on every retry...) only show with --log-level debug.
    handler.addFilter(lambda r: r.name.startswith("imier")
                      or (lvl <= logging.DEBUG and r.levelno >= logging.WARNING))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("imier").setLevel(lvl)
    libp2p_level = logging.WARNING if lvl <= logging.DEBUG else logging.CRITICAL
    for name in ("libp2p", "multiaddr", "zeroconf", "async_service", "trio-websocket"):
        lg = logging.getLogger(name)
        lg.setLevel(libp2p_level)
        for h in list(lg.handlers):
            lg.removeHandler(h)
        lg.propagate = True
