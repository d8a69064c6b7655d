"""The control socket: ``HOME/daemon.sock``, owner-only (0600), one JSON line each way.

Requests (``{"cmd": ...}``) and what they answer:

* ``info``   -- pid, peer id, full multiaddrs (as in daemon.json)
* ``peers``  -- every peer known: connection, bodies shared, syncs, offences
* ``nudge``  -- publish the outbox now (the CLI sends it after writing events)
* ``sync``   -- ``{"cmd": "sync", "addr": MULTIADDR}``: dial and reconcile once;
  answers the session's statistics
* ``stop``   -- shut the daemon down as SIGTERM would

Answers are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. The
client side (:func:`request`) is plain sockets, so the CLI can use it
without importing trio or libp2p.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

__all__ = ["serve", "request", "MAX_REQUEST"]

log = logging.getLogger("imier.control")
MAX_REQUEST = 64 * 1024


async def serve(node: Any, task_status: Any = None) -> None:
    import trio

    path = node.home.socket_path
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is born 0600
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    listener = trio.SocketListener(sock)
    if task_status is not None:
        task_status.started()
    async with trio.open_nursery() as nursery:
        while True:
            conn = await listener.accept()
            nursery.start_soon(_handle, node, conn)


async def _handle(node: Any, conn: Any) -> None:
    import trio

    async with conn:
        buf = b""
        try:
            with trio.fail_after(5):
                while b"\n" not in buf and len(buf) < MAX_REQUEST:
                    chunk = await conn.receive_some(4096)
                    if not chunk:
                        break
                    buf += chunk
            req = json.loads(buf.split(b"\n", 1)[0] or b"{}")
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            resp = await _answer(node, req)
        except trio.TooSlowError:
            return
        except (ValueError, json.JSONDecodeError) as exc:
            resp = {"ok": False, "error": f"bad request: {exc}"}
        except Exception as exc:  # one bad request must not stop the daemon
            log.warning("control request failed: %s: %s", type(exc).__name__, exc)
            resp = {"ok": False, "error": str(exc)}
        try:
            with trio.fail_after(5):
                await conn.send_all(json.dumps(resp).encode() + b"\n")
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _answer(node: Any, req: dict[str, Any]) -> dict[str, Any]:
    import trio

    cmd = req.get("cmd")
    if cmd == "info":
        return {"ok": True, **node.info()}
    if cmd == "peers":
        doc = node.peers_doc()
        inbound = getattr(node, "inbound", None)
        if inbound is not None:
            doc["inbound"] = inbound.to_json()
        return {"ok": True, **doc}
    if cmd == "nudge":
        node.outbox_event.set()
        node.held(fresh=True)
        return {"ok": True}
    if cmd == "stop":
        os.kill(os.getpid(), signal.SIGTERM)
        return {"ok": True}
    if cmd == "sync":
        from ..protocol.errors import LocalError
        from .host import peer_info

        addr = req.get("addr")
        if not isinstance(addr, str):
            return {"ok": False, "error": "sync needs an addr"}
        try:
            info = peer_info(addr)
        except LocalError as exc:
            return {"ok": False, "error": str(exc)}
        # Already connected to that peer: libp2p reuses the connection without
        # dialling ``addr``, so the answer says so rather than vouch for the address.
        existing = info.peer_id in node.host.get_connected_peers()
        try:
            with trio.fail_after(float(req.get("timeout", 60))):
                await node.host.connect(info)
                stats = await node.sync_with(info.peer_id.to_string())
        except trio.TooSlowError:
            return {"ok": False, "error": f"sync with {addr} timed out"}
        except Exception as exc:
            return {"ok": False, "error": f"cannot reach {addr}: {type(exc).__name__}: {exc}"}
        if stats is None:
            peer = node.peer(info.peer_id.to_string())
            reason = peer.offences[-1][2] if peer.offences else "see the daemon's log"
            return {"ok": False, "error": f"sync with {addr} failed: {reason}"}
        return {"ok": True, "stats": stats.to_json(), "existing_connection": existing}
    return {"ok": False, "error": f"unknown command {cmd!r}"}


def request(socket_path: Path, req: dict[str, Any], timeout: float = 10.0) -> dict[str, Any] | None:
    """Ask the running daemon; ``None`` when no daemon answers on ``socket_path``."""
    if not socket_path.exists():
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(socket_path))
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionRefusedError, FileNotFoundError):
        return None
    except OSError:
        return None
    finally:
        s.close()
    try:
        out = json.loads(buf.split(b"\n", 1)[0])
    except json.JSONDecodeError:
        return None
    return out if isinstance(out, dict) else None
