"""Serving the app: hypercorn's trio worker, inside any trio nursery.

``imier web`` runs :func:`run` (its own ``trio.run``); ``imier daemon --web``
starts :func:`serve` in the daemon's nursery, next to the libp2p host, with
a nudge that wakes the outbox publisher directly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import trio

from ..protocol.errors import LocalError
from ..store.home import Home
from .limits import Limits

__all__ = ["parse_listen", "serve", "run", "DEFAULT_LISTEN"]

log = logging.getLogger("imier.web")
DEFAULT_LISTEN = "127.0.0.1:4040"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4040`` for IPv6) to ``(host, port)``; port 0 picks one."""
    t = text.strip()
    host, sep, port = t.rpartition(":")
    if not sep or not host:
        raise LocalError(f"--listen: {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:4040 or 0.0.0.0:4040")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        n = int(port)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise LocalError(f"--listen: {port!r} is not a port number (0-65535)")
    return host, n


def _config(host: str, port: int) -> Any:
    from hypercorn.config import Config

    cfg = Config()
    cfg.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("imier.web.server")
    cfg.keep_alive_timeout = 30
    cfg.graceful_timeout = 1.0
    cfg.h11_max_incomplete_size = 16 * 1024  # request line and headers
    cfg.backlog = 128
    cfg.include_server_header = False
    return cfg


async def serve(home: Home, listen: str, *, limits: Limits | None = None,
                nudge: Callable[[], None] | None = None, static: Path | None = None,
                task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the member and meeting pages and the API until cancelled.

    ``task_status.started(urls)`` once listening (the bound URLs, the real port
    when ``listen`` asked for port 0).
    """
    from hypercorn.trio import serve as hyper_serve

    from .app import Web

    host, port = parse_listen(listen)
    web = Web(home, limits=limits, nudge=nudge) if static is None else \
        Web(home, limits=limits, nudge=nudge, static=static)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(web.watch)
            try:
                urls = await nursery.start(hyper_serve, web.app, _config(host, port))
            except (OSError, BaseExceptionGroup) as exc:
                leaf = _leaf(exc)
                if not isinstance(leaf, OSError):
                    raise
                raise LocalError(f"cannot listen on {listen}: {leaf.strerror or leaf}",
                                 hint="is another 'imier web' running? choose another port") from None
            log.info("web: serving on %s", " ".join(urls))
            task_status.started(urls)
    finally:
        web.close()


def run(home: Home, listen: str, *, limits: Limits | None = None, static: Path | None = None,
        on_ready: Callable[[list[str]], None] | None = None) -> None:
    """``imier web``: serve until SIGINT/SIGTERM."""
    import signal

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(lambda task_status: serve(home, listen, limits=limits,
                                                                     static=static, task_status=task_status))
                if on_ready is not None:
                    on_ready(urls)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except Exception as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, LocalError):
            raise leaf from None
        log.debug("web failed", exc_info=exc)
        raise LocalError(f"the web server could not run: {type(leaf).__name__}: {leaf}") from None


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
