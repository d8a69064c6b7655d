"""Inbound sessions (inbound.py) and the work budget (bounds.py), in memory: two real
Nodes over trio memory streams, the gate between them."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from imier.nodeapp import bounds
from imier.nodeapp.bounds import round_work, session_work
from imier.nodeapp.inbound import Inbound
from imier.nodeapp.sync import StreamGone, run_session
from imier.protocol import syncwire as wire
from imier.protocol.errors import RemoteError
from imier.protocol.events import Found, Vote
from imier.protocol.limits import MAX_TS
from imier.protocol.reconcile import CELL_LEN, SKETCH, Reconciler, encode_message
from imier.store.author import author_event

from .test_sync_session import T, _ids, _node, _Stream


class _PID:
    def __init__(self, s: str) -> None:
        self.s = s

    def to_string(self) -> str:
        return self.s


class _Conn:
    def __init__(self, pid: str) -> None:
        self.peer_id = _PID(pid)


class _Inbound(_Stream):
    """A memory stream that looks like a libp2p stream from ``pid`` at ``addr``."""

    def __init__(self, s: Any, pid: str, addr: tuple[str, int]) -> None:
        super().__init__(s)
        self.muxed_conn = _Conn(pid)
        self.addr = addr

    def get_remote_address(self) -> tuple[str, int]:
        return self.addr


def _community(node: Any, key: Any, n: int) -> bytes:
    found = author_event(node.store, key, body=None, data=Found(body_kind="community", name="N"), ts=T)
    for i in range(n):
        author_event(node.store, key, body=found.id, data=Vote(target=found.id, choice="yes"), ts=T + 1 + i)
    return found.id


def _both_follow(tmp_path: Any, n: int) -> tuple[Any, Any, Any, bytes]:
    """Nodes a (ana, a community of ``n`` votes) and b, both following it: ``(a, ana, b, body)``."""
    a, ana = _node(tmp_path, "a")
    b, _ = _node(tmp_path, "b")
    body = _community(a, ana, n)
    a.store.follow(body)
    b.store.follow(body)
    return a, ana, b, body


def test_the_work_of_a_message_is_counted_from_its_ranges() -> None:
    items = [(T + i, bytes([i % 256, i // 256]) + b"\0" * 30) for i in range(1000)]
    items.sort()
    r = Reconciler(items)
    first = r.initiate()  # one counted fingerprint over everything: it may be answered by a sketch of all
    assert 1000 < r.cost(first) <= 1000 + 3 * 256 + 8 + len(first) // 32
    assert r.cost(encode_message([])) == 2
    assert round_work(1000) == 2000 + bounds.WORK_ROUND_BASE
    assert session_work(1000) == bounds.WORK_SESSION_FACTOR * 1000 + bounds.WORK_SESSION_BASE


def test_a_replayed_sketch_ends_the_session_within_its_budget(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bounds, "WORK_SESSION_BASE", 0)
    a, ana = _node(tmp_path, "a")
    body = _community(a, ana, 300)
    msg = wire.rec(encode_message([((MAX_TS + 1, b""), SKETCH, [1 << 20, b"\x01" * (3 * 64 * CELL_LEN)])]))
    peer = a.peer("X")
    rounds = 0

    async def attacker(s: Any) -> None:
        nonlocal rounds
        await s.send_all(wire.hello("x", [body], []) + wire.offer([body]))
        buf = b""
        try:
            while rounds < 500:
                await s.send_all(msg)
                while True:  # read one frame
                    if len(buf) >= 4 and len(buf) >= 4 + wire.frame_length(buf[:4]):
                        n = wire.frame_length(buf[:4])
                        frame = wire.decode_frame(buf[4 : 4 + n])
                        buf = buf[4 + n :]
                        if frame["t"] == "rec":
                            rounds += 1
                        break
                    chunk = await s.receive_some(65536)
                    if not chunk:
                        return
                    buf += chunk
        except trio.BrokenResourceError:
            return

    async def scenario() -> BaseException | None:
        sa, sb = trio.testing.memory_stream_pair()
        err: BaseException | None = None
        async with trio.open_nursery() as n:
            n.start_soon(attacker, sb)
            try:
                await run_session(a, _Stream(sa), peer, initiator=False)
            except RemoteError as exc:
                err = exc
            await sa.aclose()
        return err

    err = trio.run(scenario)
    assert isinstance(err, RemoteError) and err.code == "work_budget"
    items = 301
    assert peer.work_done <= session_work(items) and rounds < 30  # 24 x items over ~items a round


def test_slots_reserved_for_a_peer_that_shares_a_held_body(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Strangers holding every general slot do not keep out a proven peer; a new
    stranger waits SESSION_WAIT_S and is closed without an offence."""
    import imier.nodeapp.inbound as inbound_mod

    monkeypatch.setattr(inbound_mod, "SESSION_WAIT_S", 0.2)
    a, _, b, body = _both_follow(tmp_path, 20)
    gate = Inbound(a)
    gate.general = trio.CapacityLimiter(1)
    a.peer("GOOD").proven = True

    async def good() -> None:
        sa, sb = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as n:
            n.start_soon(gate.handle, _Inbound(sa, "GOOD", ("127.0.0.1", 1000)))
            await run_session(b, _Stream(sb), b.peer("A"), initiator=True)

    async def stranger(name: str, port: int) -> None:
        sa, sb = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as n:
            n.start_soon(gate.handle, _Inbound(sa, name, ("127.0.0.1", port)))
            with pytest.raises(StreamGone):  # closed: no slot for it
                with trio.fail_after(2):
                    await run_session(b, _Stream(sb), b.peer(name), initiator=True)

    async def scenario() -> None:
        holder = object()
        await gate.general.acquire_on_behalf_of(holder)  # a stranger's session in progress
        await stranger("S1", 2000)
        assert a.peer("S1").offence_count == 0 and a.peer("S1").streams == 0
        await good()
        gate.general.release_on_behalf_of(holder)

    trio.run(scenario)
    assert _ids(a) == _ids(b) and len(_ids(b)) == 21


def test_streams_per_connection_are_bounded_whatever_the_peer_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imier.nodeapp.bounds import MAX_STREAMS_PER_CONN

    a, _ = _node(tmp_path, "a")
    gate = Inbound(a)

    class _Closed:
        def __init__(self, pid: str) -> None:
            self.muxed_conn = _Conn(pid)
            self.closed = False

        def get_remote_address(self) -> tuple[str, int]:
            return ("10.0.0.9", 4444)

        async def close(self) -> None:
            self.closed = True

    gate.conns[("10.0.0.9", 4444)] = inbound_counter = type(gate.source("x"))()
    inbound_counter.streams = MAX_STREAMS_PER_CONN
    s = _Closed("fresh-id")
    trio.run(gate.handle, s)
    assert s.closed and a.peer("fresh-id").offences[-1][1] == "too_many_streams"


def test_a_slow_hello_ends_at_the_handshake_deadline(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import imier.nodeapp.sync as sync_mod

    monkeypatch.setattr(sync_mod, "HANDSHAKE_S", 0.3)
    a, _ = _node(tmp_path, "a")
    hello = wire.hello("slow", [], [])

    async def scenario() -> BaseException | None:
        sa, sb = trio.testing.memory_stream_pair()
        out: BaseException | None = None
        async with trio.open_nursery() as n:
            async def drip() -> None:
                for i in range(len(hello)):
                    try:
                        await sb.send_all(hello[i : i + 1])
                    except trio.BrokenResourceError:
                        return
                    await trio.sleep(0.05)  # each byte well within the read deadline

            n.start_soon(drip)
            try:
                await run_session(a, _Stream(sa), a.peer("S"), initiator=False)
            except RemoteError as exc:
                out = exc
            n.cancel_scope.cancel()
        return out

    err = trio.run(scenario)
    assert isinstance(err, RemoteError) and err.code == "slow_handshake"


def test_a_junk_source_gets_no_allowance_for_unheld_bodies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After UNHELD_STRIKES sessions of junk from one address, a fresh peer id from
    it has its session ended at the first event of a body we do not hold."""
    import imier.nodeapp.sync as sync_mod
    from imier.nodeapp.inbound import UNHELD_STRIKES
    from imier.protocol.events import Propose

    a, ana = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    junk = author_event(b.store, ben, body=None, data=Found(body_kind="community", name="J"), ts=T)
    for i in range(10):
        author_event(b.store, ben, body=junk.id, data=Propose(title=f"j{i}", text="x" * 20_000), ts=T + 1 + i)
    gate = Inbound(a)
    orig = sync_mod.offer_for

    async def one(name: str) -> str:
        sa, sb = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as n:
            n.start_soon(gate.handle, _Inbound(sa, name, ("10.1.1.1", 7000)))
            try:
                with trio.fail_after(5):
                    await run_session(b, _Stream(sb), b.peer(name), initiator=True)
            except (StreamGone, RemoteError):
                pass
        last = a.peer(name).offences[-1] if a.peer(name).offences else (0.0, "", "")
        return f"{last[1]}: {last[2]}"

    sync_mod.offer_for = lambda store, mine, *_a, **_k: {junk.id}  # type: ignore[assignment]
    try:
        codes = [trio.run(one, f"J{k}") for k in range(UNHELD_STRIKES + 1)]
    finally:
        sync_mod.offer_for = orig  # type: ignore[assignment]
    assert all(c.startswith("unheld_body: ") for c in codes), codes
    assert _ids(a) == set()
    # the first ones were read to the end and dropped; the last was cut at its first event
    assert all("sent 11 events" in c for c in codes[:UNHELD_STRIKES]), codes
    assert "more than 0 bytes" in codes[-1], codes


def test_a_strangers_round_waits_while_a_neighbour_reconciles() -> None:
    """Priority (bounds rule 8): no wait when no neighbour is served; a wait until the
    neighbour's session is done; never longer than NEIGHBOUR_WAIT_S."""
    from imier.nodeapp.sync import Priority

    async def main() -> None:
        p = Priority()
        t0 = trio.current_time()
        await p.after_neighbours()
        assert trio.current_time() == t0 and p.waits == 0

        async def neighbour(seconds: float) -> None:
            with p.neighbour():
                await trio.sleep(seconds)

        async with trio.open_nursery() as n:
            n.start_soon(neighbour, 0.5)
            await trio.sleep(0.01)
            await p.after_neighbours()
            assert 0.5 <= trio.current_time() - t0 < 0.6 and p.waits == 1
        assert p.serving == 0
        t1 = trio.current_time()
        async with trio.open_nursery() as n:
            n.start_soon(neighbour, 60)
            await trio.sleep(0.01)
            await p.after_neighbours()
            waited = trio.current_time() - t1
            n.cancel_scope.cancel()
        assert bounds.NEIGHBOUR_WAIT_S <= waited < bounds.NEIGHBOUR_WAIT_S + 0.1
        assert p.serving == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_background_loop_on_a_full_disk_logs_one_line_not_a_traceback(caplog: Any) -> None:
    """A daemon's loop that meets a full disk (the outbox publisher, audit of issue 10)
    says so in one warning line and tries again later; a bug keeps its traceback."""
    import logging

    from imier.nodeapp.node import keep_running
    from imier.store.db import StoreError

    calls = {"n": 0}

    async def full_then_fine() -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StoreError("the disk is full", hint="free some space")

    async def bug_then_fine() -> None:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise KeyError("x")

    with caplog.at_level(logging.WARNING, logger="imier.daemon"):
        trio.run(keep_running, "outbox publisher", full_then_fine, clock=trio.testing.MockClock(autojump_threshold=0))
        warned = [r for r in caplog.records if "outbox publisher" in r.getMessage()]
        assert len(warned) == 2 and all(r.exc_info is None for r in warned)
        assert "the disk is full (free some space); trying again in" in warned[0].getMessage()
        caplog.clear()
        calls["n"] = 0
        trio.run(keep_running, "gossip", bug_then_fine, clock=trio.testing.MockClock(autojump_threshold=0))
        assert any(r.exc_info is not None for r in caplog.records)
