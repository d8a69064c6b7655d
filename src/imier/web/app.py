"""The HTTP face of a node: the member page, the meeting page and their JSON API.

A Starlette app (ASGI, on trio under hypercorn: server.py). Reads only,
except ``POST /api/events`` (a signed event, which authenticates itself) and
``POST /api/join`` (a request to be admitted, which admits nobody by
itself). No cookies, no sessions. Every request passes limits.Guard first
(size, rate, security headers). docs/web.md documents every endpoint.

Store access runs in worker threads, each call on a connection of its own
kind: a small pool of readers, one writer (posted events, join requests) and
the watcher's (the stream). The trio thread only moves bytes.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TypeVar

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..protocol.errors import Rejected
from ..store.db import Store
from ..store.home import Home
from ..store.requests import Requests
from . import source
from .limits import Guard, Limits
from .watch import Watcher

__all__ = ["Web", "STATIC"]

log = logging.getLogger("imier.web")
STATIC = Path(__file__).resolve().parent / "static"
T = TypeVar("T")

for _ext, _type in ((".js", "text/javascript"), (".mjs", "text/javascript"), (".css", "text/css"),
                    (".json", "application/json"), (".svg", "image/svg+xml"),
                    (".webmanifest", "application/manifest+json"), (".wasm", "application/wasm")):
    mimetypes.add_type(_type, _ext)


def _connect(path: Path) -> Store:
    return Store.open(path, threads=True)  # one connection, used by one worker thread at a time


def _err(status: int, code: str, field: str | None, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "field": field, "message": message}, status_code=status,
                        headers={"cache-control": "no-store"})


def _ok(doc: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers={"cache-control": "no-store"})


def _hex32(text: str | None, field: str) -> bytes:
    t = (text or "").strip().lower()
    try:
        b = bytes.fromhex(t)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise Rejected("bad_field", "64 hex digits expected", field=field)
    return b


def _message(exc: Rejected) -> str:
    """The reason without the ``field: `` prefix RemoteError puts in front."""
    m = exc.message
    prefix = f"{exc.field}: " if exc.field else ""
    return m[len(prefix):] if prefix and m.startswith(prefix) else m


class Web:
    """One node's HTTP face: the stores it reads, the streams it feeds, the app."""

    READERS = 2

    def __init__(self, home: Home, *, limits: Limits | None = None,
                 nudge: Callable[[], None] | None = None,
                 clock: Callable[[], int] = source.now_ms, max_skew_ms: int | None = None,
                 static: Path = STATIC) -> None:
        self.home = home
        self.limits = limits or Limits()
        self.clock = clock
        # A given nudge runs on the trio thread (the daemon's outbox event); the
        # default asks a daemon over its control socket, from a worker thread.
        self.nudge = nudge or self._nudge_daemon
        self._nudge_blocks = nudge is None
        self.max_skew_ms = home.config().max_skew_ms if max_skew_ms is None else max_skew_ms
        self.static = static
        self._readers = [_connect(home.store_path) for _ in range(self.READERS)]
        self._reader_sem = trio.Semaphore(self.READERS)
        self._writer = _connect(home.store_path)
        self._requests = Requests.for_home(home.path, check_same_thread=False)
        self._write_lock = trio.Lock()
        self._watcher = Watcher(_connect(home.store_path))
        self._wake = trio.Event()
        self._subscribers: set[trio.MemorySendChannel[dict[str, Any]]] = set()
        self._streams_by_client: dict[str, int] = {}
        self.streams = 0
        self.app = Guard(self._starlette(), self.limits)

    def close(self) -> None:
        for s in (*self._readers, self._writer, self._watcher.store):
            s.close()
        self._requests.close()

    # -- running store work off the trio thread ----------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._reader_sem:
            store = self._readers.pop()
            try:
                return await trio.to_thread.run_sync(fn, store, *args)
            finally:
                self._readers.append(store)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._write_lock:
            return await trio.to_thread.run_sync(fn, *args)

    def _nudge_daemon(self) -> None:
        """Tell a running daemon to publish now (as the CLI does after a write)."""
        if self.home.socket_path.exists():
            from ..nodeapp.control import request

            request(self.home.socket_path, {"cmd": "nudge"}, timeout=0.5)

    def _local_names(self) -> dict[bytes, str]:
        try:
            return {p.public: p.name for p in self.home.people()}
        except Exception:
            return {}

    # -- the stream's poll loop ---------------------------------------------------------------

    async def watch(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Poll the store (cheaply) and send every changed status to every stream."""
        await trio.to_thread.run_sync(self._watcher.tick, self.clock())  # the baseline
        task_status.started()
        while True:
            with trio.move_on_after(self.limits.poll_s):
                await self._wake.wait()  # an event posted here: look now, not at the next poll
            self._wake = trio.Event()
            try:
                changed = await trio.to_thread.run_sync(self._watcher.tick, self.clock())
            except sqlite3.OperationalError as exc:  # a busy store: look again next time
                log.info("web: status watch: %s", exc)
                continue
            except Exception:  # never let one bad tally stop the stream (or the daemon)
                log.exception("web: status watch failed; trying again")
                self._watcher.version = None
                await trio.sleep(5)
                continue
            for doc in changed:
                for ch in list(self._subscribers):
                    try:
                        ch.send_nowait(doc)
                    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                        # Too slow to keep up: drop it; EventSource reconnects by itself.
                        self._subscribers.discard(ch)
                        ch.close()

    # -- handlers ----------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        return _ok(await self._read(source.status_all, self.clock()))

    async def status_one(self, request: Request) -> Response:
        pid = _hex32(request.path_params["proposal"], "proposal")
        try:
            return _ok(await self._read(source.status_one, pid, self.clock()))
        except source.NotFound as exc:
            return _err(404, exc.code, exc.field, exc.message)

    async def next(self, request: Request) -> Response:
        q = request.query_params
        author = _hex32(q.get("author"), "author")
        body = _hex32(q.get("body"), "body")
        try:
            return _ok(await self._read(source.next_for, author, body, self.clock()))
        except source.NotFound as exc:
            return _err(404, exc.code, exc.field, exc.message)

    async def now(self, request: Request) -> Response:
        return _ok({"now_ms": self.clock()})

    async def bodies(self, request: Request) -> Response:
        names = self._local_names()
        return _ok(await self._read(source.bodies_doc, self.clock(), names))

    async def person(self, request: Request) -> Response:
        key = _hex32(request.query_params.get("key"), "key")
        names = self._local_names()
        return _ok(await self._read(source.person_doc, key, self.clock(), names))

    async def post_event(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/octet-stream":
            return _err(415, "bad_content_type", "content-type",
                        "send the signed event's bytes as application/octet-stream")
        raw = await request.body()
        if not raw:
            return _err(400, "empty", "body", "no event in the request body")
        try:
            got = await self._write(self._intake, raw)
        except Rejected as exc:
            status = {"unknown_body": 404, "causality": 409, "seq_taken": 409, "not_admitted": 403,
                      "future": 422}.get(exc.code, 400)
            return _err(status, exc.code, exc.field or "event", _message(exc))
        if got.new:
            self._wake.set()
            if self._nudge_blocks:
                await trio.to_thread.run_sync(self.nudge)
            else:
                self.nudge()
        return _ok({"id": got.event.id.hex(), "state": got.state}, 201 if got.new else 200)

    def _intake(self, raw: bytes) -> source.Intake:
        return source.intake(self._writer, raw, now=self.clock(), max_skew_ms=self.max_skew_ms)

    async def post_join(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":  # never a "simple" cross-site form post
            return _err(415, "bad_content_type", "content-type", "send the request as application/json")
        try:
            doc = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _err(400, "bad_json", "body", "the body is one JSON object")
        if not isinstance(doc, dict):
            return _err(400, "bad_json", "body", "the body is one JSON object")
        unknown = set(doc) - {"body", "key", "name"}
        if unknown:
            return _err(400, "unknown_field", sorted(unknown)[0], "unknown field")
        body = _hex32(doc.get("body") if isinstance(doc.get("body"), str) else None, "body")
        key = _hex32(doc.get("key") if isinstance(doc.get("key"), str) else None, "key")
        name = doc.get("name")
        held = await self._read(lambda s: s.state(body) == 1)
        if not held:
            return _err(404, "unknown_body", "body", "this node does not hold that body")
        now = self.clock()
        req = await self._write(lambda: self._requests.add(body, key, name, now_ms=now))
        return _ok({"code": req.code}, 201)

    async def list_join(self, request: Request) -> Response:
        body = _hex32(request.query_params.get("body"), "body")
        now = self.clock()
        reqs = await self._write(lambda: self._requests.current(body, now_ms=now))
        if reqs:  # those admitted, or linked as a member's device, since are no longer waiting
            taken = await self._read(source.inside, body, now)
            reqs = [r for r in reqs if r.key not in taken]
        return _ok([{"key": r.key.hex(), "name": r.name, "code": r.code} for r in reqs])

    async def stream(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if self.streams >= self.limits.streams:
            return _err(503, "too_many_streams", None,
                        f"{self.limits.streams} live streams already; try again later")
        if self._streams_by_client.get(client, 0) >= self.limits.streams_per_client:
            return _err(429, "too_many_streams", "client",
                        f"at most {self.limits.streams_per_client} live streams per address")
        initial = request.query_params.get("initial") in ("1", "true", "yes")
        send, recv = trio.open_memory_channel[dict[str, Any]](256)
        self._subscribers.add(send)
        self.streams += 1
        self._streams_by_client[client] = self._streams_by_client.get(client, 0) + 1
        first = list(self._watcher.current()) if initial else []

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n: imier status stream\n\n"
                for doc in first:
                    yield _sse(doc)
                while True:
                    with trio.move_on_after(self.limits.keepalive_s):
                        try:
                            doc = await recv.receive()
                        except trio.EndOfChannel:
                            return  # dropped as too slow: the client reconnects
                        yield _sse(doc)
                        continue
                    yield ": keepalive\n\n"
            finally:
                self._subscribers.discard(send)
                send.close()
                self.streams -= 1
                n = self._streams_by_client.get(client, 1) - 1
                if n <= 0:
                    self._streams_by_client.pop(client, None)
                else:
                    self._streams_by_client[client] = n

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def page(self, request: Request) -> Response:
        name = "meeting.html" if request.url.path.rstrip("/") == "/meeting" else "index.html"
        path = self.static / name
        if not path.is_file():
            return _err(404, "no_page", None, f"{name} is not installed with this node")
        return FileResponse(path, media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache"})

    async def qr(self, request: Request) -> Response:
        """``GET /api/qr?text=...``: the QR code of ``text`` as SVG (the member page's link
        for a second phone); at most qr.MAX_TEXT bytes."""
        from . import qr

        text = request.query_params.get("text", "")
        if not text.strip():
            return _err(400, "missing_field", "text", "give the text to encode: ?text=...")
        if len(text.encode()) > qr.MAX_TEXT:
            return _err(400, "too_long", "text", f"at most {qr.MAX_TEXT} bytes")
        picture = await trio.to_thread.run_sync(qr.svg, text)
        return Response(picture, media_type="image/svg+xml", headers={"cache-control": "no-store"})

    async def api_missing(self, request: Request) -> Response:
        return _err(404, "unknown_endpoint", None, f"no endpoint {request.url.path} (see docs/web.md)")

    # -- the app ---------------------------------------------------------------------------------

    def _starlette(self) -> Starlette:
        async def rejected(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, Rejected)
            return _err(400, exc.code, exc.field, _message(exc))

        async def failed(request: Request, exc: Exception) -> Response:
            if isinstance(exc, sqlite3.OperationalError):  # locked by a long write elsewhere
                return _err(503, "busy", None, "the store is busy; try again in a moment")
            log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
            return _err(500, "internal", None, f"{type(exc).__name__}: the node could not answer")

        routes: list[Any] = [
            Route("/api/status", self.status, methods=["GET"]),
            Route("/api/status/{proposal}", self.status_one, methods=["GET"]),
            Route("/api/next", self.next, methods=["GET"]),
            Route("/api/events", self.post_event, methods=["POST"]),
            Route("/api/stream", self.stream, methods=["GET"]),
            Route("/api/bodies", self.bodies, methods=["GET"]),
            Route("/api/person", self.person, methods=["GET"]),
            Route("/api/now", self.now, methods=["GET"]),
            Route("/api/join", self.post_join, methods=["POST"]),
            Route("/api/join", self.list_join, methods=["GET"]),
            Route("/api/qr", self.qr, methods=["GET"]),
            Route("/api/{rest:path}", self.api_missing),
            Route("/", self.page, methods=["GET"]),
            Route("/meeting", self.page, methods=["GET"]),
        ]
        if self.static.is_dir():
            routes.append(Mount("/", app=StaticFiles(directory=str(self.static)), name="static"))
        return Starlette(routes=routes, exception_handlers={Rejected: rejected, Exception: failed})


def _sse(doc: dict[str, Any]) -> str:
    return "event: status\ndata: " + json.dumps(doc, separators=(",", ":")) + "\n\n"
