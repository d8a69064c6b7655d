"""Finding peers: bootstrap multiaddrs (with backoff) and mDNS on the local network.

* Bootstrap: every address of ``--bootstrap`` and the config's
  ``network.bootstrap`` is dialled until connected, and again whenever the
  connection is lost, waiting 1 s, 2 s, 4 s ... up to ``MAX_BACKOFF_S``
  between failed attempts (reset on success).
* mDNS (on by default, ``--no-mdns``): the node announces its concrete
  interface addresses (never ``0.0.0.0``, quirk 5 of docs/architecture.md) and
  dials the peers it hears about, with the same backoff.

Every dial runs under a deadline.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import trio

from ..protocol.errors import LocalError

__all__ = ["run", "Backoff", "MAX_BACKOFF_S"]

log = logging.getLogger("imier.discovery")
MAX_BACKOFF_S = 30.0
DIAL_TIMEOUT_S = 5.0


class Backoff:
    """Exponential backoff with jitter, per target."""

    def __init__(self, base: float = 1.0, cap: float = MAX_BACKOFF_S) -> None:
        self.base, self.cap = base, cap
        self.failures = 0
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = float(min(self.cap, self.base * 2 ** (self.failures - 1)) * random.uniform(0.8, 1.2))
        self.next_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_at = 0.0


async def _dial(node: Any, info: Any) -> None:
    with trio.fail_after(DIAL_TIMEOUT_S):
        await node.host.connect(info)


async def run(node: Any) -> None:
    from .host import peer_info

    targets: dict[str, tuple[Any, Backoff]] = {}
    for addr in node.opts.bootstrap:
        try:
            targets[addr] = (peer_info(addr), Backoff())
        except LocalError as exc:
            log.warning("bootstrap address ignored: %s", exc)
    found_send, found_recv = trio.open_memory_channel[Any](64)
    async with trio.open_nursery() as nursery:
        if node.opts.mdns:
            nursery.start_soon(_mdns, node, found_send)
        while True:
            # peers heard of on the local network join the targets
            while True:
                try:
                    info = found_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                key = f"mdns:{info.peer_id}"
                if key not in targets and info.peer_id != node.host.get_id():
                    log.info("found %s on the local network", info.peer_id)
                    targets[key] = (info, Backoff())
            now = trio.current_time()
            connected = {p.to_string() for p in node.host.get_connected_peers()}
            for addr, (info, backoff) in list(targets.items()):
                pid = info.peer_id.to_string()
                if pid in connected:
                    backoff.succeeded()
                    continue
                if node.peer(pid).banned() or not backoff.due(now):
                    continue
                try:
                    await _dial(node, info)
                    backoff.succeeded()
                    log.info("connected to %s", addr)
                except Exception as exc:  # TooSlowError, dial failures of all kinds
                    delay = backoff.failed(trio.current_time())
                    log.info("cannot reach %s (%s); next try in %.0f s", addr,
                             type(exc).__name__, delay)
            await trio.sleep(1.0)


async def _mdns(node: Any, found: trio.MemorySendChannel[Any]) -> None:
    """Announce and listen on mDNS. zeroconf runs in its own threads; its blocking
    calls (start-up, registration, shutdown) run in worker threads we can abandon,
    so neither start-up nor a 2-second shutdown waits on the network."""
    try:
        import libp2p.discovery.mdns.mdns as mdns_mod
        from libp2p.discovery.events.peerDiscovery import peerDiscovery

        from .host import full_addrs
    except Exception as exc:  # pragma: no cover
        log.warning("mDNS unavailable: %s", exc)
        return
    addrs = [a.split("/p2p/")[0] for a in full_addrs(node.host)]
    # Peers on the network cannot use our loopback addresses: announce the others.
    reachable = [a for a in addrs if not a.startswith("/ip4/127.")]
    if reachable:
        addrs = reachable
    else:
        log.info("mDNS: listening on loopback only, so only this machine can use what we "
                 "announce; listen on /ip4/0.0.0.0/tcp/PORT for a meeting's network")
    port = 0
    for a in addrs:
        parts = a.split("/")
        if "tcp" in parts:
            port = int(parts[parts.index("tcp") + 1])
            break
    token = trio.lowlevel.current_trio_token()

    def _offer(info: Any) -> None:
        try:
            found.send_nowait(info)
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass

    def on_peer(info: Any) -> None:  # called from zeroconf's thread
        try:
            token.run_sync_soon(_offer, info)
        except trio.RunFinishedError:
            pass

    net = node.host.get_network()
    mdns: Any = None
    peerDiscovery.register_peer_discovered_handler(on_peer)
    try:
        try:
            mdns = await trio.to_thread.run_sync(  # type: ignore[call-arg]
                lambda: mdns_mod.MDNSDiscovery(net, port=port, listen_addrs=addrs),
                abandon_on_cancel=True,
            )
            # Not MDNSDiscovery.start(): its stale-entry cleanup task is not needed to dial.
            await trio.to_thread.run_sync(mdns.broadcaster.register, abandon_on_cancel=True)  # type: ignore[call-arg]
        except Exception as exc:
            log.warning("mDNS could not start (%s); use --bootstrap to name peers", exc)
            await trio.sleep_forever()
        log.info("mDNS: announcing %s", " ".join(addrs))
        await trio.sleep_forever()
    finally:
        peerDiscovery.unregister_peer_discovered_handler(on_peer)
        if mdns is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await trio.to_thread.run_sync(mdns.stop, abandon_on_cancel=True)  # type: ignore[call-arg]
                except Exception:
                    pass
