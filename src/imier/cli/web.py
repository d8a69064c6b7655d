"""`imier web` (the member and meeting pages) and `imier member requests` (who asked to join).

The web stack (hypercorn, starlette) is imported inside :func:`cmd_web` only,
so no other command pays for it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..protocol.errors import LocalError
from .context import Context, add_json

__all__ = ["register", "add_web_options", "limits_from_args", "web_options_of", "WEB_OPTIONS"]


#: The options of the web pages, the same for `imier web` and `imier daemon --web` (dest names).
WEB_OPTIONS = ("rate", "burst", "streams", "allow_host", "static")


def add_web_options(p: argparse.ArgumentParser, *, daemon: bool = False) -> None:
    """The one option set of the web pages: bounds and hosts (web/limits.py) and --static.
    ``daemon``: the options only count with ``--web HOST:PORT`` (see web_options_of)."""
    g = p.add_argument_group("the web pages (with --web HOST:PORT)" if daemon else "the web pages")
    g.add_argument("--rate", type=float, default=None, metavar="PER_S",
                   help="requests a second each client address may make, sustained (default 20)")
    g.add_argument("--burst", type=int, default=None, metavar="N",
                   help="requests a client address may make at once (default 60)")
    g.add_argument("--streams", type=int, default=None, metavar="N",
                   help="live /api/stream connections at most, all clients together (default 64)")
    g.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name the pages may be opened by, besides IP addresses, localhost "
                   "and this machine's name (repeatable)")
    g.add_argument("--static", type=Path, default=None, metavar="DIR",
                   help="serve the pages from DIR instead of those installed with Imier (page development)")


def web_options_of(args: argparse.Namespace, *, web: str | None) -> tuple[Any, Path | None]:
    """The limits and the static directory the options give; refuses them without an
    address to serve on (``imier daemon --rate 5`` without ``--web``)."""
    if web is None:
        given = [o for o in WEB_OPTIONS if getattr(args, o, None) not in (None, [])]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise LocalError(f"{flag}: an option of the web pages, only with --web HOST:PORT",
                             hint="e.g. imier daemon --web 0.0.0.0:4040 " + flag + " ...")
        return None, None
    static = getattr(args, "static", None)
    if static is not None and not (static / "index.html").is_file():
        raise LocalError(f"--static: {static} holds no index.html")
    return limits_from_args(args), static


def limits_from_args(args: argparse.Namespace) -> Any:
    from ..web.limits import Limits

    lim = Limits()
    if getattr(args, "rate", None) is not None:
        if args.rate <= 0:
            raise LocalError("--rate: must be more than 0")
        lim.rate = args.rate
    if getattr(args, "burst", None) is not None:
        if args.burst < 1:
            raise LocalError("--burst: must be at least 1")
        lim.burst = args.burst
    if getattr(args, "streams", None) is not None:
        if args.streams < 1:
            raise LocalError("--streams: must be at least 1")
        lim.streams = args.streams
    lim.hosts = tuple(h.strip() for h in getattr(args, "allow_host", None) or [] if h.strip())
    return lim


def register(sub: Any) -> None:
    p = sub.add_parser(
        "web", help="serve the member page (phones) and the meeting page (a projector)",
        description=_wrap("Serve this node's member page (each phone makes and keeps its own key and "
        "signs there) and meeting page (a live view of the count for a projector), with the "
        "HTTP API they use (docs/web.md). Listens on 127.0.0.1:4040 unless told otherwise: "
        "give --listen 0.0.0.0:4040 to let the phones of a meeting on the same network in. "
        "Prints the address, and a QR code to scan when run in a terminal."),
        epilog="Examples:\n  imier web\n  imier web --listen 0.0.0.0:4040\n"
        "  imier daemon --web 0.0.0.0:4040",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default=None, metavar="HOST:PORT",
                   help="address to serve on (default 127.0.0.1:4040; 0.0.0.0:4040 for the LAN)")
    add_web_options(p)
    p.set_defaults(func=cmd_web)

    member = _subparsers(sub, "member")
    if member is not None:
        p = member.add_parser(
            "requests", help="join requests made from the member page",
            description=_wrap("List the open join requests of a body (or of every body held): the "
            "name the person gave and the six-digit code their phone shows. Compare the code "
            "with the person, then admit with 'imier member admit BODY CODE'."),
            epilog="Examples:\n  imier member requests North\n  imier member admit North 123-456",
            formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("body", nargs="?", metavar="BODY", help="id, unique id prefix, or name")
        add_json(p)
        p.set_defaults(func=cmd_member_requests)


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=78)


def _subparsers(sub: Any, name: str) -> Any:
    parser = sub.choices.get(name)
    if parser is None:
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _urls_for_people(host: str, port: int) -> list[str]:
    """The addresses to open on a phone: the bound one, or this machine's own when
    bound to every interface (from the routing table and the host name; nothing is sent)."""
    import socket

    if host not in ("0.0.0.0", "::", ""):
        h = f"[{host}]" if ":" in host else host
        return [f"http://{h}:{port}/"]
    found: list[str] = []
    # The address of the interface with the default route: connecting a UDP socket
    # only asks the routing table (no packet is sent; 192.0.2.1 is a documentation address).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            found.append(str(s.getsockname()[0]))
        except OSError:
            pass  # no route at all (an offline network without a gateway)
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    for info in infos:
        found.append(str(info[4][0]))
    found = [a for a in dict.fromkeys(found) if not a.startswith("127.") and a != "0.0.0.0"]
    return [f"http://{a}:{port}/" for a in found] + [f"http://127.0.0.1:{port}/"]


def _print_qr(url: str) -> None:
    import qrcode  # type: ignore[import-untyped]

    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(url)
    qr.make(fit=True)
    qr.print_ascii(out=sys.stdout, invert=True)


def cmd_web(ctx: Context, args: argparse.Namespace) -> int:
    from ..web.server import DEFAULT_LISTEN, parse_listen, run

    home = ctx.home.require()
    listen = args.listen or DEFAULT_LISTEN
    host, _ = parse_listen(listen)
    limits, static = web_options_of(args, web=listen)
    ctx.close()  # the server opens its own store connections

    def ready(binds: list[str]) -> None:
        port = int(binds[0].rsplit(":", 1)[1]) if binds else 0
        urls = _urls_for_people(host, port)
        print(f"Member page: {urls[0]}", flush=True)
        print(f"Meeting page: {urls[0]}meeting", flush=True)
        if len(urls) > 1:
            print("Also: " + "  ".join(urls[1:]), flush=True)
        if host in ("127.0.0.1", "localhost", "::1"):
            print("Only this machine can open it; for the phones of a meeting: "
                  "'imier web --listen 0.0.0.0:4040'", flush=True)
        if sys.stdout.isatty():
            print("Scan to open the member page:")
            _print_qr(urls[0])
        print("Serving until Ctrl-C.", flush=True)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(home, listen, limits=limits, static=static, on_ready=ready)
    return 0


def cmd_member_requests(ctx: Context, args: argparse.Namespace) -> int:
    from ..protocol.events import Found
    from ..store.requests import Requests

    store = ctx.store
    body = ctx.resolve_body(args.body) if args.body else None
    path = ctx.home.require().path / "requests.sqlite3"
    reqs = []
    if path.exists():
        r = Requests.open(path)
        try:
            reqs = r.current(body.id if body else None, now_ms=ctx.now_ms())
        finally:
            r.close()
    if reqs:  # those admitted, or linked as a member's device, since are no longer waiting
        from ..web.source import inside

        taken = {b: inside(store, b, ctx.now_ms()) for b in {q.body for q in reqs}}
        reqs = [q for q in reqs if q.key not in taken[q.body]]
    names = {b.id: b.data.name for b in store.bodies() if isinstance(b.data, Found)}
    doc = [{**q.to_json(), "body_name": names.get(q.body)} for q in reqs]

    def render() -> None:
        from rich.markup import escape
        from rich.table import Table

        if not reqs:
            ctx.console.print("No open join requests. People ask from the member page ('imier web').")
            return
        t = Table(title="Join requests")
        for c in ("body", "name", "code", "key"):
            t.add_column(c)
        for q in reqs:
            t.add_row(escape(names.get(q.body, q.body.hex()[:12])), escape(q.name), q.code, q.key.hex()[:12] + "…")
        ctx.console.print(t)
        ctx.console.print("Compare the code with the person, then: imier member admit BODY CODE")

    ctx.emit(doc, render)
    return 0
