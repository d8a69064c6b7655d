"""Bounds on every request: size, rate per client address, concurrent streams.

:class:`Guard` is a plain ASGI middleware in front of the whole app, so no
handler runs for a request over a bound:

* a token bucket per client address (``rate`` tokens a second, ``burst`` at
  most; a request takes one): over it, ``429`` with ``Retry-After``;
* a request body over its route's limit is refused with ``413`` from
  ``Content-Length`` before it is read, or as soon as the bytes received pass
  the limit; a GET carrying a body is refused the same way;
* a Host header naming anything but an IP address, localhost or this
  machine is refused (``421``): a page elsewhere that rebinds its own name to
  this address (DNS rebinding) cannot use the node;
* the security headers of every answer: a Content-Security-Policy allowing
  only this origin, no framing, no referrer, no sniffing.

The buckets themselves are bounded (:data:`MAX_CLIENTS`, least recently
seen dropped first).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, MutableMapping

__all__ = ["Limits", "Bucket", "Guard", "CSP", "MAX_CLIENTS", "body_limit"]

MAX_CLIENTS = 4096
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Limits:
    """The node's settings for its HTTP face (``imier web --rate/--burst/--streams``)."""

    rate: float = 20.0  # requests per second per client address, sustained
    burst: int = 60  # ... and at once
    event_bytes: int = 70 * 1024  # POST /api/events: one signed event is at most 64 KiB
    json_bytes: int = 4 * 1024  # POST /api/join
    streams: int = 64  # concurrent /api/stream connections, all clients
    streams_per_client: int = 4
    keepalive_s: float = 15.0
    poll_s: float = 0.5  # how often the stream looks at the store's data_version
    body_timeout_s: float = 10.0  # a request body must arrive within this
    # Host names answered besides IP literals, localhost and this machine's name
    # (``--allow-host``); any other Host header is refused (DNS rebinding).
    hosts: tuple[str, ...] = ()


class Bucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = now

    def take(self, now: float) -> float:
        """Take one token; 0 when granted, else the seconds until one is there."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else 3600.0


def body_limit(method: str, path: str, limits: Limits) -> int:
    if method == "POST" and path == "/api/events":
        return limits.event_bytes
    if method == "POST" and path == "/api/join":
        return limits.json_bytes
    return 0


class Guard:
    def __init__(self, app: App, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.limits = limits
        self.clock = clock
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()
        self.refused = 0
        self._names: set[str] | None = None

    def _bucket(self, client: str) -> Bucket:
        b = self.buckets.get(client)
        if b is None:
            b = self.buckets[client] = Bucket(self.limits.rate, self.limits.burst, self.clock())
            while len(self.buckets) > MAX_CLIENTS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(client)
        return b

    def _host_ok(self, host: str) -> bool:
        """IP literals, localhost and this machine's names: what a phone or browser on
        the LAN types. A page of another site that rebinds its own name to this
        address arrives with that name, and is refused."""
        if self._names is None:
            import socket

            me = socket.gethostname().lower()
            self._names = {"localhost", me, f"{me}.local", *(h.lower() for h in self.limits.hosts)}
        h = host.lower().rstrip(".")
        if h in self._names or h.endswith(".localhost"):
            return True
        import ipaddress

        try:
            ipaddress.ip_address(h.strip("[]"))
            return True
        except ValueError:
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secure(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                msg = dict(msg)
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in have]
            await send(msg)

        host = _host(scope)
        if host is not None and not self._host_ok(host):
            await _refuse(send_secure, 421, "bad_host", "host",
                          f"this node does not answer for {host!r}; open it by its address "
                          "(or start it with --allow-host NAME)")
            return
        client = (scope.get("client") or ("?", 0))[0]
        wait = self._bucket(client).take(self.clock())
        if wait > 0:
            self.refused += 1
            await _refuse(send_secure, 429, "rate_limited", "client",
                          f"too many requests from {client}; wait {wait:.1f} s",
                          extra=[(b"retry-after", str(max(1, round(wait + 0.5))).encode())])
            return
        limit = body_limit(scope["method"], scope["path"], self.limits)
        length = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    await _refuse(send_secure, 400, "bad_request", "content-length", "not a number")
                    return
        if length is not None and length > limit:
            await _refuse(send_secure, 413, "too_large", "body",
                          f"{length} bytes; this endpoint takes at most {limit}")
            return
        if limit == 0:
            await self.app(scope, receive, send_secure)  # no handler of these reads a body
            return
        # A body endpoint: read the whole body here, within the limit and in bounded
        # time, then hand it to the app (so no handler ever sees more than the limit).
        import trio

        chunks: list[bytes] = []
        received = 0
        with trio.move_on_after(self.limits.body_timeout_s) as late:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                received += len(chunk)
                if received > limit:
                    await _refuse(send_secure, 413, "too_large", "body",
                                  f"this endpoint takes at most {limit} bytes")
                    return
                chunks.append(chunk)
                if not msg.get("more_body", False):
                    break
        if late.cancelled_caught:
            await _refuse(send_secure, 408, "too_slow", "body",
                          f"the body took longer than {self.limits.body_timeout_s:g} s")
            return
        body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_secure)


def _host(scope: Scope) -> str | None:
    """The Host header without its port (``None`` when absent, as from HTTP/1.0)."""
    for k, v in scope.get("headers", []):
        if k == b"host":
            text = str(bytes(v).decode("latin-1")).strip()
            if text.startswith("["):
                return text[: text.find("]") + 1] if "]" in text else text
            return text.rsplit(":", 1)[0] if ":" in text else text
    return None


async def _refuse(send: Send, status: int, code: str, field: str, message: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"code": code, "field": field, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), (b"connection", b"close"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
