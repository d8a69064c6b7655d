"""A hostile sync peer: a raw py-libp2p host speaking /imier/sync/1 as an attacker would.

Run as a script (its own process): ``python hostile_peer.py MODE ADDR [options]``;
prints one JSON line with what it did. Used by tests/integration/test_hostile_sync.py
and bench/hostile.py. Every loop is bounded in count and time.

Modes:

* ``junk``: offer bodies the victim does not hold (founded here) and send their
  events, large ones, as fast as the victim reads them, session after session.
* ``slowloris``: open many streams and send each hello a byte at a time.
* ``replay``: claim the victim's body, then answer every reconcile round with
  the same large sketch, session after session (new peer ids when refused).
* ``future``: claim the victim's body and push events of it dated an hour
  ahead (past ``max_skew``, so the victim can only defer them), ~58 KB each,
  a fresh peer id and signing key every session, until ``--mb`` megabytes
  are sent: a flood of the victim's deferred queue.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import time
from typing import Any

import multiaddr
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from nacl.signing import SigningKey

from imier.nodeapp import quirks
from imier.protocol import canonical
from imier.protocol import syncwire as wire
from imier.protocol.events import Found, Propose, sign_event
from imier.protocol.reconcile import CELL_LEN, COUNTED, SKETCH, Reconciler, encode_message
from imier.protocol.limits import MAX_TS

P = TProtocol(wire.SYNC_PROTOCOL)
_REPORT: dict[str, Any] = {}  # the running attack's counters: printed at its end, or on SIGTERM


def _live(counters: dict[str, Any]) -> dict[str, Any]:
    _REPORT.clear()
    _REPORT.update(counters)
    return _REPORT


def _report_and_exit(_sig: int, _frame: Any) -> None:
    """SIGTERM (the bench stops an attack when it has measured): the report so far."""
    print(json.dumps(_REPORT), flush=True)
    os._exit(0)


class Framed:
    def __init__(self, s: Any) -> None:
        self.s = s
        self.buf = b""

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = await self.s.read(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def frame(self) -> dict[str, Any]:
        (n,) = struct.unpack(">I", await self.read_exactly(4))
        return canonical.unpack(await self.read_exactly(n), max_size=wire.MAX_FRAME_BYTES)  # type: ignore[no-any-return]


def junk_events(n_bodies: int, per_body: int, seed: int) -> tuple[list[bytes], list[Any]]:
    """Bodies founded by keys of ours, each with ``per_body`` proposals of ~30 KB."""
    bodies, evs = [], []
    t = int(time.time() * 1000) - 86_400_000
    text = "x" * 30_000
    for b in range(n_bodies):
        k = SigningKey(bytes([seed % 256, b % 256]) + os.urandom(30))
        f = sign_event(k, body=None, ts=t, seq=1, prev=[], data=Found(body_kind="community", name=f"junk{b}"))
        bodies.append(f.id)
        evs.append(f)
        prev = f
        for i in range(per_body):
            e = sign_event(k, body=f.id, ts=t + 1 + i, seq=i + 2, prev=[prev.id],
                           data=Propose(title=f"j{i}", text=text))
            evs.append(e)
            prev = e
    return bodies, evs


async def _host(seed: bytes, addr: str) -> tuple[Any, Any]:
    h = quirks.make_host(quirks.key_pair_from_seed(seed), [])
    return h, info_from_p2p_addr(multiaddr.Multiaddr(addr))


async def _handshake(s: Any, f: Framed, name: str, bodies: list[bytes]) -> None:
    """hello and offer of ``bodies``, reading the victim's of each."""
    await s.write(wire.hello(name, bodies, []))
    await f.frame()
    await s.write(wire.offer(bodies))
    await f.frame()


async def _offer(s: Any, f: Framed, name: str, bodies: list[bytes], items: list[tuple[int, bytes]],
                 errors: dict[str, int] | None = None) -> list[bytes]:
    """hello, offer and reconcile ``items`` with the victim; the ids it lacks, in
    ``items``' order. A refusal ends the reconciliation; with ``errors``, its code is
    counted there and the session given up (EOFError)."""
    await _handshake(s, f, name, bodies)
    r = Reconciler(items)
    await s.write(wire.rec(r.initiate()))
    while True:
        m = await f.frame()
        if m["t"] != "rec":
            if errors is not None:
                code = str(m.get("code"))
                errors[code] = errors.get(code, 0) + 1
                raise EOFError
            break
        reply, _, _ = r.reconcile(m["m"])
        if reply is None:
            break
        await s.write(wire.rec(reply))
        if r.done:
            break
    return [i for _, i in items if i in r.have]


async def _send(s: Any, order: list[bytes], by_id: dict[bytes, bytes], per: int, out: dict[str, Any]) -> None:
    """The events ``order`` names, ``per`` to a frame, then ``end``; counted in ``out``."""
    for k in range(0, len(order), per):
        raws = [by_id[i] for i in order[k : k + per]]
        await s.write(wire.events_frame(raws))
        out["sent_events"] += len(raws)
        out["sent_bytes"] += sum(map(len, raws))
    await s.write(wire.end())


async def junk(addr: str, seconds: float, n_bodies: int, per_body: int) -> dict[str, Any]:
    bodies, evs = junk_events(n_bodies, per_body, 1)
    items = sorted((e.ts, e.id) for e in evs)
    by_id = {e.id: e.raw for e in evs}
    out = _live({"sessions": 0, "sent_events": 0, "sent_bytes": 0, "refused": 0, "bodies": len(bodies)})
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and n < 200:
        n += 1
        h, info = await _host(os.urandom(32), addr)  # a fresh peer id each session: they cost nothing
        try:
            async with h.run([]):
                with trio.fail_after(max(1.0, deadline - time.monotonic() + 5)):
                    await h.connect(info)
                    s = await h.new_stream(info.peer_id, [P])
                    f = Framed(s)
                    order = await _offer(s, f, "junk", bodies, items)
                    await _send(s, order, by_id, 8, out)
                    out["sessions"] += 1
                    with trio.move_on_after(2):
                        while (await f.frame())["t"] != "end":
                            pass
        except Exception:
            out["refused"] += 1
        await trio.sleep(0.05)
    return out


async def slowloris(addr: str, seconds: float, streams: int, identities: int) -> dict[str, Any]:
    out = _live({"opened": 0, "failed": 0, "bytes": 0})
    hello = wire.hello("slow", [], [])

    async def one_id(k: int) -> None:
        h, info = await _host(bytes([0x51, k]) + b"\x00" * 30, addr)
        async with h.run([]):
            try:
                with trio.fail_after(10):
                    await h.connect(info)
            except Exception:
                out["failed"] += 1
                return

            async def drip() -> None:
                try:
                    s = await h.new_stream(info.peer_id, [P])
                except Exception:
                    out["failed"] += 1
                    return
                out["opened"] += 1
                try:
                    for i in range(len(hello)):
                        await s.write(hello[i : i + 1])
                        out["bytes"] += 1
                        await trio.sleep(2)
                except Exception:
                    out["failed"] += 1

            with trio.move_on_after(seconds):
                async with trio.open_nursery() as n:
                    for _ in range(streams):
                        n.start_soon(drip)
                        await trio.sleep(0.01)

    async with trio.open_nursery() as n:
        for k in range(identities):
            n.start_soon(one_id, k)
    return out


def big_sketch(s: int = 256) -> bytes:
    """A sketch message of 3 s cells over the whole item space (30 KB at s = 256)."""
    cells = os.urandom(3 * s * CELL_LEN)
    return encode_message([((MAX_TS + 1, b""), SKETCH, [1 << 20, cells])])


async def replay(addr: str, seconds: float, body: bytes, rotate: bool, identities: int = 1) -> dict[str, Any]:
    """``identities`` replayers at once, each its own peer id (and connection)."""
    out = _live({"sessions": 0, "rounds": 0, "refused": 0, "identities": 0, "errors": {}})
    async with trio.open_nursery() as nursery:
        for k in range(identities):
            nursery.start_soon(_replay_one, addr, seconds, body, rotate, bytes([0x52, k]) + b"\x52" * 30, out)
    return out


async def _replay_one(addr: str, seconds: float, body: bytes, rotate: bool, seed: bytes,
                      out: dict[str, Any]) -> None:
    msg = wire.rec(big_sketch())
    out["identities"] += 1
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and n < 500:
        n += 1
        h, info = await _host(seed, addr)
        try:
            async with h.run([]):
                with trio.move_on_after(max(0.5, deadline - time.monotonic())):
                    await h.connect(info)
                    while time.monotonic() < deadline:
                        s = await h.new_stream(info.peer_id, [P])
                        f = Framed(s)
                        await _handshake(s, f, "replay", [body])
                        out["sessions"] += 1
                        try:
                            while True:
                                await s.write(msg)
                                m = await f.frame()
                                if m["t"] != "rec":
                                    code = str(m.get("code"))
                                    out["errors"][code] = out["errors"].get(code, 0) + 1  # type: ignore[index]
                                    break
                                out["rounds"] += 1
                        except Exception:
                            pass
                        await trio.sleep(0.05)
        except Exception:
            out["refused"] += 1
            if rotate:
                seed = os.urandom(32)
                out["identities"] += 1
            await trio.sleep(0.2)


async def slowrec(addr: str, seconds: float, body: bytes, identities: int, every: float) -> dict[str, Any]:
    """``identities`` peers at once, each completing the handshake for ``body`` and then
    sending one cheap round (a counted fingerprint that never matches) every
    ``every`` seconds, to hold a session slot; a new peer id when a session ends."""
    out = _live({"sessions": 0, "rounds": 0, "ended": 0, "refused": 0})
    msg = wire.rec(encode_message([((MAX_TS + 1, b""), COUNTED, [os.urandom(16), 0])]))
    deadline = time.monotonic() + seconds

    async def one(k: int) -> None:
        for _ in range(200):  # bounded; the deadline ends it first
            if time.monotonic() >= deadline:
                return
            h, info = await _host(os.urandom(32), addr)
            try:
                async with h.run([]):
                    with trio.move_on_after(max(0.5, deadline - time.monotonic())):
                        await h.connect(info)
                        s = await h.new_stream(info.peer_id, [P])
                        f = Framed(s)
                        await _handshake(s, f, "slowrec", [body])
                        out["sessions"] += 1
                        while True:
                            await s.write(msg)
                            m = await f.frame()
                            if m["t"] != "rec":
                                break
                            out["rounds"] += 1
                            await trio.sleep(every)
                    out["ended"] += 1
            except Exception:
                out["refused"] += 1
                await trio.sleep(0.2)

    async with trio.open_nursery() as n:
        for k in range(identities):
            n.start_soon(one, k)
    return out


def future_events(body: bytes, n: int, ahead_ms: int) -> list[Any]:
    """``n`` proposals in ``body`` by a fresh key, ~58 KB each, dated ``ahead_ms`` from now."""
    k = SigningKey(os.urandom(32))
    t = int(time.time() * 1000) + ahead_ms
    text = "\u00e9" * 29_000  # two bytes each: 58 KB, under MAX_TEXT characters and MAX_EVENT_BYTES
    evs: list[Any] = []
    for i in range(n):
        evs.append(sign_event(k, body=body, ts=t + i, seq=i + 1, prev=[evs[-1].id] if evs else [body],
                              data=Propose(title=f"f{i}", text=text)))
    return evs


async def future(addr: str, seconds: float, body: bytes, mb: float, per_session: int,
                 ahead_ms: int) -> dict[str, Any]:
    out = _live({"sessions": 0, "sent_events": 0, "sent_bytes": 0, "refused": 0, "errors": {}})
    deadline = time.monotonic() + seconds
    goal = int(mb * 1_000_000)
    n = 0
    while time.monotonic() < deadline and out["sent_bytes"] < goal and n < 500:
        n += 1
        evs = future_events(body, per_session, ahead_ms)
        items = [(e.ts, e.id) for e in evs]
        by_id = {e.id: e.raw for e in evs}
        h, info = await _host(os.urandom(32), addr)  # a fresh peer id each session
        try:
            async with h.run([]):
                with trio.fail_after(max(5.0, deadline - time.monotonic() + 30)):
                    await h.connect(info)
                    s = await h.new_stream(info.peer_id, [P])
                    f = Framed(s)
                    order = await _offer(s, f, "future", [body], items, errors=out["errors"])

                    async def drain(fr: Framed) -> None:  # what the victim sends us, read and thrown away
                        with trio.move_on_after(60):
                            while (await fr.frame())["t"] != "end":
                                pass

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(drain, f)
                        await _send(s, order, by_id, 4, out)
                    out["sessions"] += 1
        except Exception:
            out["refused"] += 1
        await trio.sleep(0.05)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["junk", "slowloris", "replay", "future", "slowrec"])
    ap.add_argument("addr")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bodies", type=int, default=10)
    ap.add_argument("--per-body", type=int, default=40)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--identities", type=int, default=1)
    ap.add_argument("--body", default="")
    ap.add_argument("--rotate", action="store_true")
    ap.add_argument("--mb", type=float, default=100, help="future: megabytes to send in all")
    ap.add_argument("--per-session", type=int, default=100, help="future: events a session")
    ap.add_argument("--ahead-ms", type=int, default=3_600_000, help="future: how far ahead")
    ap.add_argument("--every", type=float, default=6.0, help="slowrec: seconds between rounds")
    a = ap.parse_args()
    quirks.configure_logging("critical")
    signal.signal(signal.SIGTERM, _report_and_exit)
    if a.mode == "junk":
        res = trio.run(junk, a.addr, a.seconds, a.bodies, a.per_body)
    elif a.mode == "slowloris":
        res = trio.run(slowloris, a.addr, a.seconds, a.streams, a.identities)
    elif a.mode == "slowrec":
        res = trio.run(slowrec, a.addr, a.seconds, bytes.fromhex(a.body), a.identities, a.every)
    elif a.mode == "future":
        res = trio.run(future, a.addr, a.seconds, bytes.fromhex(a.body), a.mb, a.per_session, a.ahead_ms)
    else:
        res = trio.run(replay, a.addr, a.seconds, bytes.fromhex(a.body), a.rotate, a.identities)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
