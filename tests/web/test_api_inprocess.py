"""`imier.web.server.serve` inside a trio nursery (as the daemon runs it), on 127.0.0.1:
the stream's keepalive comments, and a clean stop when the nursery is cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from imier.store.home import Home
from imier.web.limits import Limits
from imier.web.server import serve


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "home")
    h.create("inproc", "pw")
    h.close()
    return h


def test_stream_keepalive_and_cancel(home: Home) -> None:
    got: dict[str, bytes] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(lambda task_status: serve(
                home, "127.0.0.1:0", limits=Limits(keepalive_s=0.3), task_status=task_status))
            host, port = urls[0].removeprefix("http://").rsplit(":", 1)
            with trio.fail_after(20):
                stream = await trio.open_tcp_stream(host, int(port))
                await stream.send_all(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                buf = b""
                while buf.count(b": keepalive\n\n") < 2:
                    chunk = await stream.receive_some(4096)
                    assert chunk, buf
                    buf += chunk
                got["stream"] = buf
                await stream.aclose()
            nursery.cancel_scope.cancel()

    trio.run(main)
    head = got["stream"].split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200") and b"content-type: text/event-stream" in head
    assert b"content-security-policy: default-src 'self'" in head
    assert b"retry: 2000" in got["stream"]


def test_port_taken_is_one_clear_error(home: Home) -> None:
    from imier.protocol.errors import LocalError

    async def main() -> None:
        with trio.socket.socket() as s:
            await s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: serve(home, f"127.0.0.1:{port}",
                                                              task_status=task_status))

    with pytest.raises((LocalError, BaseExceptionGroup)) as e:
        trio.run(main)
    leaf: BaseException = e.value
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, LocalError) and "cannot listen" in str(leaf)
