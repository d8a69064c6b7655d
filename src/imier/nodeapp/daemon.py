"""The daemon: one trio program that replicates a node's store with its peers.

Tasks under one nursery (all cancelled together on SIGINT/SIGTERM), each
restarted if it fails on a local error (``keep_running``):

* the libp2p host (listening, Noise, Yamux) and GossipSub (gossip.py),
* the outbox publisher: new local events (written by the CLI) are published,
* the peer watcher: a new connection starts a sync; lost ones are marked,
* the periodic sync with every connected peer (``sync_interval``),
* discovery (discovery.py): bootstrap peers with backoff, mDNS,
* the control socket (control.py) for ``imier peers``, ``imier sync``, nudges,
* the retry of deferred (future-dated) events.

The shared state and the ingest path are node.py's. Shutdown cancels
everything; the store needs no flush (each ingest is a committed
transaction); ``daemon.json`` and the socket are removed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import LocalError
from ..protocol.events import Seal
from ..store.home import Home
from .node import Node, Options, keep_running
from .sync import SyncStats

__all__ = ["Options", "Node", "run_daemon", "one_shot_sync"]

log = logging.getLogger("imier.daemon")


def _write_info(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, path)


SEAL_CHECK_S = 2.0  # how often the daemon looks for windows its tellers should seal
SEAL_IDLE_S = 10.0  # ... at the least, when nothing new arrived


def _tellers(home: Home) -> dict[bytes, Any]:
    """The people's keys on this node that the daemon may sign seals with: those that
    open with IMIER_PASSPHRASE (a key that does not is skipped, and said once)."""
    pw = os.environ.get("IMIER_PASSPHRASE")
    out: dict[bytes, Any] = {}
    if not pw:
        log.info("auto_seal: IMIER_PASSPHRASE is not set, so no teller's key is open; "
                 "seal by hand with 'imier seal PROPOSAL'")
        return out
    for sealed in home.people():
        try:
            key = home.unlock(sealed, pw)
        except Exception as exc:  # noqa: BLE001 -- one person's key never stops the node
            log.warning("auto_seal: %s's key does not open (%s); not sealing for them", sealed.name, exc)
            continue
        out[bytes(key.verify_key)] = key
    return out


async def _seal_loop(home: Home, node: Any) -> None:
    """docs/rules.md s.10.5: seal every closed window a teller on this node has not sealed,
    ``seal_delay`` after its close; the seals go out like any local event."""
    from ..protocol.errors import ImierError
    from .autoseal import auto_seal

    cfg = home.config()
    if not cfg.auto_seal:
        return
    signers = _tellers(home)
    if not signers:
        return
    store = node.store
    seen, last = -1, 0.0
    while True:
        await trio.sleep(SEAL_CHECK_S)
        # A full look tallies the proposals of bodies with tellers: do it when the record
        # changed, else every SEAL_IDLE_S (windows close with time, not with events).
        dv = store.data_version()
        if dv == seen and time.monotonic() - last < SEAL_IDLE_S:
            continue
        seen, last = dv, time.monotonic()
        try:
            made = auto_seal(store, signers, int(time.time() * 1000), seal_delay=cfg.seal_delay_ms)
        except ImierError as exc:
            log.warning("auto_seal: %s", exc)
            continue
        for ev in made:
            assert isinstance(ev.data, Seal)
            log.info("sealed %s of %s as %s", ev.data.window, ev.data.proposal.hex()[:12], ev.author.hex()[:8])
        if made:
            node.outbox_event.set()


async def _run(home: Home, opts: Options, node_key: Any) -> None:
    from libp2p.custom_types import TProtocol

    from . import control, discovery, gossip
    from .host import build_host

    from .inbound import Inbound

    _refuse_taken_ports(opts.listen)
    node = Node(home, opts, node_key)
    host, listen = build_host(node_key, opts.listen)
    node.host = host
    inbound = Inbound(node)
    node.inbound = inbound  # type: ignore[attr-defined]  # control.py shows it in peers
    host.set_stream_handler(TProtocol(wire.SYNC_PROTOCOL), inbound.handle)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with host.run(listen), trio.open_nursery() as nursery:
            node.nursery = nursery
            if not host.get_transport_addrs():
                # py-libp2p 0.8.1 logs a failed listen (port taken) and goes on: refuse here.
                raise LocalError(f"could not listen on {' '.join(opts.listen)} (address in use?)",
                                 hint="choose another port with --listen, or port 0 for any")
            if opts.gossip:
                node.gossip = gossip.Gossip(node)
                await nursery.start(node.gossip.run)
            if getattr(opts, "web", None):  # imier daemon --web HOST:PORT (imier/web/server.py)
                from ..web.server import serve as serve_web

                log.info("web pages on %s", " ".join(await nursery.start(
                    lambda task_status: serve_web(home, opts.web, nudge=lambda: node.outbox_event.set(),  # type: ignore[attr-defined]
                                                  limits=getattr(opts, "web_limits", None),
                                                  static=getattr(opts, "web_static", None),
                                                  task_status=task_status))))
            info = node.info()
            await nursery.start(control.serve, node)
            _write_info(home.daemon_info_path, info)
            log.info("node %s (%s) listening on %s", node.name, info["peer_id"], " ".join(info["addresses"]))
            # One line on stdout once the node listens and answers its control socket,
            # for scripts and service managers to wait on (docs/operations.md).
            print(f"ready {' '.join(info['addresses'])}", flush=True)
            log.info("holding %d bodies; gossip %s, mdns %s, sync every %gs", len(node.held(fresh=True)),
                     "on" if opts.gossip else "off", "on" if opts.mdns else "off", opts.sync_interval_s)
            for name, fn in (("peer watcher", node.watch_peers), ("periodic sync", node.periodic_sync),
                             ("outbox publisher", node.publish_outbox),
                             ("deferred retry", node.retry_deferred),
                             ("teller", lambda: _seal_loop(home, node)),
                             ("discovery", lambda: discovery.run(node))):
                nursery.start_soon(keep_running, name, fn)
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                break
            nursery.cancel_scope.cancel()


def _refuse_taken_ports(listen: list[str]) -> None:
    """A listen port already in use is an error, before anything starts (quirks.py 8)."""
    from . import quirks
    from .host import parse_multiaddr

    for text in listen:
        ma = parse_multiaddr(text)
        names = {p.name for p in ma.protocols()}
        try:
            host = ma.value_for_protocol("ip4") if "ip4" in names else ma.value_for_protocol("ip6")
            port = int(ma.value_for_protocol("tcp"))
        except Exception:
            continue  # build_host says what is wrong with it
        exc = quirks.port_taken(host, port)
        if exc is not None:
            raise LocalError(f"cannot listen on {text}: port {port} is already in use ({exc.strerror})",
                             hint="stop what holds it, or choose another port with --listen")


def run_daemon(home: Home, opts: Options, node_key: Any) -> None:
    """Run until SIGINT/SIGTERM. Raises LocalError when another daemon holds this home."""
    from . import quirks

    quirks.configure_logging(opts.log_level)
    from .control import request

    info_path = home.daemon_info_path
    # The control socket answering is the proof of a running daemon (a pid in a
    # stale daemon.json may belong to another process by now).
    running = request(home.socket_path, {"cmd": "info"}, timeout=3)
    if running is not None and running.get("ok"):
        raise LocalError(f"a daemon (pid {running.get('pid')}) already runs for {home.path}",
                         hint="stop it first, or use another --home")
    t0 = time.monotonic()
    try:
        trio.run(_run, home, opts, node_key)
        log.info("stopped cleanly (%.1f s of running)", time.monotonic() - t0)
    except Exception as exc:  # one clear line for a person, details in the debug log
        leaf: BaseException = exc
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, LocalError):
            raise leaf from None
        log.debug("daemon failed", exc_info=exc)
        raise LocalError(f"the daemon could not run: {type(leaf).__name__}: {leaf}",
                         hint="check the listen addresses ('imier daemon --listen ...')") from None
    finally:
        for p in (info_path, home.socket_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        logging.shutdown()


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _one_shot(home: Home, opts: Options, node_key: Any, addr: str, timeout: float) -> SyncStats:
    from .host import build_host, peer_info

    node = Node(home, opts, node_key)
    host, _ = build_host(node_key, ["/ip4/127.0.0.1/tcp/0"])
    node.host = host
    info = peer_info(addr)
    stats: SyncStats | None = None
    async with host.run([]), trio.open_nursery() as nursery:
        node.nursery = nursery
        with trio.move_on_after(timeout) as scope:
            try:
                await host.connect(info)
            except Exception as exc:  # every kind of dial failure: one clear line
                raise LocalError(f"cannot reach {addr}: {_leaf(exc)}",
                                 hint="is its daemon running? 'imier id' there shows its addresses") from None
            stats = await node.sync_with(info.peer_id.to_string())
        nursery.cancel_scope.cancel()
    if scope.cancelled_caught:
        raise LocalError(f"sync with {addr} took longer than {timeout:.0f} s")
    if stats is None:
        peer = node.peer(info.peer_id.to_string())
        reason = peer.offences[-1][2] if peer.offences else "the session broke off (see the log above)"
        raise LocalError(f"sync with {addr} failed: {reason}")
    return stats


def one_shot_sync(home: Home, opts: Options, node_key: Any, addr: str, timeout: float = 60) -> SyncStats:
    """``imier sync MULTIADDR`` with no daemon running: a temporary host, one session."""
    from . import quirks

    quirks.configure_logging(opts.log_level)
    try:
        return trio.run(_one_shot, home, opts, node_key, addr, timeout)
    except Exception as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, LocalError):
            raise leaf from None
        raise LocalError(f"sync with {addr} failed: {type(leaf).__name__}: {leaf}") from None
