"""Network commands: `imier daemon`, `imier peers`, `imier sync`, `imier id`.

libp2p is imported inside the command functions only (through nodeapp), so
`imier vote`, `propose` and `status` never pay for it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..protocol.errors import LocalError
from .context import Context, add_json

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "daemon", help="run this node: replicate its bodies' events with peers",
        description="Run the node until interrupted (Ctrl-C or SIGTERM): listen for peers, "
        "publish new local events, and reconcile the events of shared bodies with every "
        "peer on connect, on hints and periodically. Settings come from HOME/config.toml "
        "(docs/operations.md); these options override it.")
    p.add_argument("--listen", action="append", default=[], metavar="MULTIADDR",
                   help="listen address, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable)")
    p.add_argument("--bootstrap", action="append", default=[], metavar="MULTIADDR",
                   help="a peer to connect to, ending in /p2p/PEER_ID (repeatable)")
    p.add_argument("--no-mdns", action="store_true", help="do not look for peers on the local network")
    p.add_argument("--no-gossip", action="store_true",
                   help="replicate by sync alone (no GossipSub); slower, same result")
    p.add_argument("--sync-interval", metavar="DURATION",
                   help="how often to reconcile with each peer (e.g. 30s)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="how much to log (default: the config's, else info)")
    p.add_argument("--web", metavar="HOST:PORT",
                   help="also serve the member and meeting pages here (as 'imier web')")
    from .web import add_web_options

    add_web_options(p, daemon=True)  # the same options as 'imier web'
    p.set_defaults(func=cmd_daemon)

    p = sub.add_parser("peers", help="connected peers and what they share with us",
                       description="Ask the running daemon for its peers: connection, node "
                       "name, bodies shared, syncs, and offences (refused data, with reasons).")
    add_json(p)
    p.set_defaults(func=cmd_peers)

    p = sub.add_parser("sync", help="reconcile once with one peer, then exit",
                       description="Reconcile the events of the bodies shared with the peer at "
                       "MULTIADDR (ending in /p2p/PEER_ID). Through the running daemon if there "
                       "is one, else with a temporary host.")
    p.add_argument("addr", metavar="MULTIADDR")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    add_json(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("id", help="this node's peer id and addresses",
                       description="The node's peer id and addresses: full multiaddrs ending in "
                       "/p2p/PEER_ID while the daemon runs, else the configured listen addresses.")
    add_json(p)
    p.set_defaults(func=cmd_id)


def _daemon_info(ctx: Context) -> dict[str, Any] | None:
    from ..nodeapp.control import request

    home = ctx.home.require()
    resp = request(home.socket_path, {"cmd": "info"}, timeout=5)
    if resp and resp.get("ok"):
        return resp
    return None


def cmd_daemon(ctx: Context, args: argparse.Namespace) -> int:
    from ..protocol.charter import parse_duration_ms

    home = ctx.home.require()
    home.check_key_permissions()  # the daemon opens every person's key (auto_seal)
    from .web import web_options_of

    # The web pages' options, and the address, fail here, before the node starts.
    web_limits, web_static = web_options_of(args, web=args.web)
    if args.web:
        from ..web.server import parse_listen

        parse_listen(args.web)
    cfg = home.config()
    if _daemon_info(ctx) is not None:
        raise LocalError(f"a daemon already runs for {home.path}", hint="'imier peers' talks to it")
    key = home.node_key(ctx.passphrase())
    from ..nodeapp.daemon import Options, run_daemon

    opts = Options.from_config(cfg)
    if args.listen:
        opts.listen = list(args.listen)
    opts.bootstrap = list(dict.fromkeys(opts.bootstrap + list(args.bootstrap)))
    if args.no_mdns:
        opts.mdns = False
    if args.no_gossip:
        opts.gossip = False
    if args.sync_interval:
        opts.sync_interval_s = parse_duration_ms(args.sync_interval, field="--sync-interval") / 1000
    if args.log_level:
        opts.log_level = args.log_level
    if args.web:
        opts.web = args.web  # type: ignore[attr-defined]  # read by nodeapp/daemon.py
        opts.web_limits = web_limits  # type: ignore[attr-defined]
        opts.web_static = web_static  # type: ignore[attr-defined]
    ctx.close()  # the daemon opens its own store connection
    run_daemon(home, opts, key)
    return 0


def _need_daemon(ctx: Context, req: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    from ..nodeapp.control import request

    home = ctx.home.require()
    resp = request(home.socket_path, req, timeout=timeout)
    if resp is None:
        raise LocalError("no daemon is running for this node", hint="start one with 'imier daemon'")
    if not resp.get("ok"):
        raise LocalError(str(resp.get("error", "the daemon refused")))
    return resp


def cmd_peers(ctx: Context, args: argparse.Namespace) -> int:
    from ..protocol.events import Found

    resp = _need_daemon(ctx, {"cmd": "peers"})
    resp.pop("ok", None)
    names = {b.id.hex(): b.data.name for b in ctx.store.bodies() if isinstance(b.data, Found)}

    def render() -> None:
        peers = resp["peers"]
        print(f"this node {resp['peer_id']}: holds {len(resp['held'])} bodies, {resp['events']} events")
        if not peers:
            print("no peers yet")
        for p in peers:
            state = "connected" if p["connected"] else "not connected"
            if p["banned"]:
                state = "refused (too many offences)"
            print(f"{p['peer_id']}  {p['node'] or '?'}  {state}")
            shared = ", ".join(sorted(names.get(b, b[:12]) for b in p["shared"])) or "no bodies"
            print(f"    shares {shared}; {p['syncs']} syncs; "
                  f"{p['events_in']} events in, {p['events_out']} out")
            if p["offences"]:
                print(f"    {p['offences']} offences:")
                for o in p["recent_offences"]:
                    print(f"      {o['code']}: {o['reason']}")

    ctx.emit(resp, render)
    return 0


def cmd_sync(ctx: Context, args: argparse.Namespace) -> int:
    from ..nodeapp.control import request

    home = ctx.home.require()
    resp = request(home.socket_path, {"cmd": "sync", "addr": args.addr, "timeout": args.timeout},
                   timeout=args.timeout + 5)
    if resp is not None:
        if not resp.get("ok"):
            raise LocalError(str(resp.get("error")))
        stats = resp["stats"]
        stats["existing_connection"] = bool(resp.get("existing_connection"))
        via = "daemon"
    else:
        from ..nodeapp.daemon import Options, one_shot_sync

        key = home.node_key(ctx.passphrase())
        opts = Options.from_config(home.config())
        opts.log_level = "warning"
        ctx.close()
        stats = one_shot_sync(home, opts, key, args.addr, timeout=args.timeout).to_json()
        via = "temporary host"
    stats["via"] = via

    def render() -> None:
        print(f"synced with {args.addr} ({via}): {stats['bodies']} shared bodies, "
              f"{stats['items']} events here before")
        if stats.get("existing_connection"):
            print("  over the daemon's existing connection to that peer (the address was not dialled)")
        print(f"  sent {stats['have']} events, received {stats['new']} new")
        print(f"  reconciliation: {stats['reconcile_bytes']} bytes in {stats['rounds']} rounds; "
              f"handshake {stats['handshake_bytes']} bytes; events {stats['event_bytes']} bytes")

    ctx.emit(stats, render)
    return 0


def cmd_id(ctx: Context, args: argparse.Namespace) -> int:
    from ..protocol.peerid import peer_id

    home = ctx.home.require()
    info = _daemon_info(ctx)
    if info is not None:
        doc = {"peer_id": info["peer_id"], "addresses": info["addresses"], "running": True}
    else:
        pid = peer_id(home.node_public())
        cfg = home.config()
        doc = {"peer_id": pid, "addresses": [f"{a}/p2p/{pid}" for a in cfg.listen], "running": False}

    def render() -> None:
        print(f"peer id: {doc['peer_id']}")
        print("addresses (daemon running):" if doc["running"] else
              "configured listen addresses (no daemon running; a port 0 is chosen at start):")
        for a in doc["addresses"]:
            print(f"  {a}")

    ctx.emit(doc, render)
    return 0

