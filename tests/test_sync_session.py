"""The sync session and the holding rules, in memory: two nodes over a trio memory
stream pair (no libp2p), plus the wire frames' validation."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from imier.nodeapp.bounds import MAX_OFFENCES, PeerRecord, TokenBucket
from imier.nodeapp.node import Node, Options
from imier.nodeapp.holding import held_bodies, offer_for
from imier.nodeapp.sync import StreamGone, run_session
from imier.protocol import syncwire as wire
from imier.protocol.errors import Rejected, RemoteError
from imier.protocol.events import Admit, Found, Vote, sign_event
from imier.store.author import author_event
from imier.store.home import Home
from imier.store.invitations import Invitations

T = 1_700_000_000_000


class _Stream:
    """The libp2p stream calls sync.py uses, over a trio stream."""

    def __init__(self, s: Any) -> None:
        self.s = s

    async def read(self, n: int) -> bytes:
        return bytes(await self.s.receive_some(n))

    async def write(self, data: bytes) -> None:
        await self.s.send_all(data)

    async def close(self) -> None:
        await self.s.aclose()


def _node(tmp_path: Any, name: str) -> tuple[Node, SigningKey]:
    home = Home(tmp_path / name)
    home.create(name, "pw")
    person = home.unlock(home.new_person("p", "pw"), "pw")
    node = Node(home, Options(name=name), node_key=None)
    return node, person


async def _session(a: Node, b: Node) -> tuple[Any, Any]:
    sa, sb = trio.testing.memory_stream_pair()
    out: dict[str, Any] = {}

    async def side(node: Node, s: Any, peer: str, initiator: bool) -> None:
        out[peer] = await run_session(node, _Stream(s), node.peer(peer), initiator=initiator)

    async with trio.open_nursery() as n:
        n.start_soon(side, a, sa, "B", True)
        n.start_soon(side, b, sb, "A", False)
    return out["B"], out["A"]


def _ids(node: Node) -> set[bytes]:
    return {r[0] for r in node.store.conn.execute("SELECT id FROM events")}


def test_two_nodes_reconcile_and_a_new_member_learns_its_body(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, ana = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    found = author_event(a.store, ana, body=None, data=Found(body_kind="community", name="North"), ts=T)
    for i in range(40):
        author_event(a.store, ana, body=found.id, data=Vote(target=found.id, choice="yes"), ts=T + i)
    # b holds nothing yet: it learns of North only once ana admits ben
    assert b.held(fresh=True) == set()
    sa, sb = trio.run(_session, a, b)
    assert sa.bodies == 0 and _ids(b) == set()
    author_event(a.store, ana, body=found.id, data=Admit(member=bytes(ben.verify_key)), ts=T + 100)
    # the admission learnt from a is an invitation (holding.py): nothing stored until followed
    sa, sb = trio.run(_session, a, b)
    assert _ids(b) == set() and sb.new == 0 and b.held(fresh=True) == set()
    assert [i.body for i in Invitations.beside(b.store.path).list(T)] == [found.id]  # type: ignore[union-attr]
    b.store.follow(found.id)
    sa, sb = trio.run(_session, a, b)
    assert _ids(a) == _ids(b) and len(_ids(b)) == 42
    assert sa.have == 42 and sb.need == 42 and sb.new == 42
    assert b.held(fresh=True) == {found.id}
    # now b writes, a catches up; equal sets cost little
    author_event(b.store, ben, body=found.id, data=Vote(target=found.id, choice="no", severity="minor",
                                                        category="cost"), ts=T + 200)
    sa, sb = trio.run(_session, a, b)
    assert _ids(a) == _ids(b) and sa.new == 1
    sa, sb = trio.run(_session, a, b)
    assert sa.have == sa.need == 0 and sa.reconcile_bytes < 200
    assert a.peer("B").offence_count == 0 and b.peer("A").offence_count == 0


def test_a_federation_above_is_not_held_without_its_consent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # docs/rules.md s.9.2: a federation naming East is held by East's nodes only once
    # East carries a ``federate`` proposal naming it (test_hostile_sync.py has that half).
    a, ana = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    north = author_event(a.store, ana, body=None, data=Found(body_kind="community", name="N"), ts=T)
    east = author_event(b.store, ben, body=None, data=Found(body_kind="community", name="E"), ts=T)
    a.store.ingest([east])
    muni = author_event(a.store, ana, body=None, ts=T + 5, data=Found(
        body_kind="municipality", name="M", parts=tuple(sorted([north.id, east.id]))))
    # a founded M (its person wrote there): a holds M and what M names
    assert held_bodies(a.store, a.people()) == {north.id, muni.id, east.id}
    # b holds East only; M names East, but East never consented: a offers East alone
    assert offer_for(a.store, a.held(fresh=True), [east.id], b.people()) == {east.id}
    trio.run(_session, a, b)
    assert b.held(fresh=True) == {east.id}
    assert _ids(b) == {east.id} and b.store.get(muni.id) is None
    assert b.peer("A").offence_count == 0


async def _raw(a: Node, data: bytes) -> Exception | None:
    sa, sb = trio.testing.memory_stream_pair()
    peer = a.peer("X")
    await sb.send_all(data)
    await sb.send_eof() if hasattr(sb, "send_eof") else None
    try:
        with trio.fail_after(5):
            await run_session(a, _Stream(sa), peer, initiator=False)
    except (RemoteError, StreamGone) as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (struct.pack(">I", 2**31) + b"x", "frame_too_large"),
        (struct.pack(">I", 3) + b"\xc1\xc1\xc1", "malformed"),
        (wire.encode_frame({"t": "offer", "bodies": []}), "unexpected_frame"),
        (wire.hello("x", [], []) + wire.offer([]) + wire.rec(b"\x81\xa1r\x91\x93\xc0\x01\xc4\x01a"),
         "bad_range"),
        (wire.hello("x", [], []) + wire.offer([]) + wire.rec(b"\x81\xa1r\x90")
         + wire.events_frame([b"\x80"]), "bad_version"),
    ],
)
def test_bad_input_raises_a_remote_error_with_its_code(tmp_path, data, code) -> None:  # type: ignore[no-untyped-def]
    a, _ = _node(tmp_path, "a")
    exc = trio.run(_raw, a, data)
    if code == "bad_version":
        # a bad event is not fatal to the session: it is counted as an offence
        assert a.peer("X").offence_count == 1 and a.peer("X").offences[0][1] == code
    else:
        assert isinstance(exc, RemoteError) and exc.code == code, exc


def test_offences_lead_to_a_ban() -> None:
    p = PeerRecord(peer_id="x")
    results = [p.offend("malformed", "bad", now=1000.0 + i) for i in range(MAX_OFFENCES)]
    assert results[-1] is True and not any(results[:-1])
    assert p.banned(now=1010.0) and not p.banned(now=1000.0 + 10_000)
    assert p.to_json()["recent_offences"][0]["code"] == "malformed"


def test_token_bucket() -> None:
    now = [0.0]
    b = TokenBucket(10, 20, clock=lambda: now[0])
    assert b.take(20) and not b.take(1)
    assert b.wait_time(5) == pytest.approx(0.5)
    now[0] = 1.0
    assert b.take(10) and not b.take(1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_frames_fuzz_only_rejected_escapes(raw) -> None:  # type: ignore[no-untyped-def]
    try:
        wire.decode_frame(raw)
    except Rejected:
        pass
    try:
        wire.decode_gossip(raw)
    except Rejected:
        pass


def test_frames_round_trip_and_gossip() -> None:
    k = SigningKey(b"\x01" * 32)
    ev = sign_event(k, body=None, ts=T, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    for frame in (wire.hello("n", [ev.id], [bytes(k.verify_key)]), wire.offer([ev.id]),
                  wire.rec(b"\x81\xa1r\x90"), wire.events_frame([ev.raw]), wire.end(), wire.err("x", "y")):
        n = wire.frame_length(frame[:4])
        assert n == len(frame) - 4
        assert wire.decode_frame(frame[4:])["t"]
    assert wire.decode_gossip(wire.encode_gossip([ev.raw])) == [ev.raw]
    assert wire.body_of_topic(wire.topic_for(ev.id)) == ev.id
    assert wire.body_of_topic("imier/body/1/zz") is None
    with pytest.raises(Rejected):
        wire.decode_frame(wire.encode_frame({"t": "hello", "v": 2, "node": "", "bodies": [], "people": []})[4:])


def test_future_events_are_deferred_not_lost(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    a, ana = _node(tmp_path, "a")
    b, _ = _node(tmp_path, "b")
    now = int(time.time() * 1000)
    found = author_event(a.store, ana, body=None, data=Found(body_kind="community", name="N"), ts=now)
    future = author_event(a.store, ana, body=found.id, data=Vote(target=found.id, choice="yes"),
                          ts=now + 3_600_000)
    b.store.follow(found.id)
    sa, sb = trio.run(_session, a, b)
    assert sb.need == 2 and sb.new == 1
    assert found.id in _ids(b) and future.id not in _ids(b)
    assert future.id in b.deferred  # kept in memory, retried by the daemon when its time comes
    assert b.peer("A").offence_count == 0


def test_backoff_grows_and_resets() -> None:
    from imier.nodeapp.discovery import MAX_BACKOFF_S, Backoff

    b = Backoff()
    delays = [b.failed(0.0) for _ in range(10)]
    assert delays[0] <= 1.2 and delays[3] >= 8 * 0.8 and max(delays) <= MAX_BACKOFF_S * 1.2
    assert not b.due(0.0)
    b.succeeded()
    assert b.due(0.0)


def test_advertised_addresses_are_concrete() -> None:
    from imier.nodeapp.host import full_addrs

    class _ID:
        def to_string(self) -> str:
            return "12D3KooWtest"

    class _Host:
        def get_id(self) -> _ID:
            return _ID()

        def get_transport_addrs(self) -> list[str]:
            return ["/ip4/0.0.0.0/tcp/4001", "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWtest"]

    addrs = full_addrs(_Host())
    assert "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWtest" in addrs
    assert "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWtest" in addrs
    assert not any("0.0.0.0" in a for a in addrs)


def test_streams_beyond_the_per_peer_limit_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imier.nodeapp.bounds import MAX_STREAMS

    a, _ = _node(tmp_path, "a")

    class _PID:
        def to_string(self) -> str:
            return "12D3KooWbusy"

    class _Conn:
        peer_id = _PID()

    class _Busy:
        muxed_conn = _Conn()
        closed = False

        async def close(self) -> None:
            self.closed = True

    a.peer("12D3KooWbusy").streams = MAX_STREAMS
    s = _Busy()
    trio.run(a.handle_stream, s)
    rec = a.peer("12D3KooWbusy")
    assert s.closed and rec.offences[-1][1] == "too_many_streams" and rec.streams == MAX_STREAMS


def test_gossip_over_the_rate_limit_is_dropped_not_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, _ = _node(tmp_path, "a")
    k = SigningKey(b"\x05" * 32)
    found = sign_event(k, body=None, ts=T, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    peer = a.peer("G")
    peer.bucket = TokenBucket(1, 1, clock=lambda: 0.0)
    assert trio.run(lambda: a.ingest_remote([found.raw], peer, source="gossip")) == 1
    k2 = SigningKey(b"\x06" * 32)
    other = sign_event(k2, body=None, ts=T, seq=1, prev=[], data=Found(body_kind="community", name="M"))
    assert trio.run(lambda: a.ingest_remote([other.raw], peer, source="gossip")) == 0
    assert _ids(a) == {found.id} and peer.offence_count == 0


def test_inbound_sessions_are_bounded_node_wide(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With every session slot taken, a new inbound stream waits SESSION_WAIT_S,
    then is closed without a session and without counting an offence."""
    import imier.nodeapp.node as node_mod

    a, _ = _node(tmp_path, "a")
    monkeypatch.setattr(node_mod, "SESSION_WAIT_S", 0.05)

    class _PID:
        def to_string(self) -> str:
            return "12D3KooWlate"

    class _Conn:
        peer_id = _PID()

    class _Late:
        muxed_conn = _Conn()
        closed = False

        async def close(self) -> None:
            self.closed = True

        async def read(self, n: int) -> bytes:  # a session would read: it must not start
            raise AssertionError("a session started without a free slot")

    async def scenario() -> None:
        a.session_slots = trio.CapacityLimiter(1)
        holder = object()
        await a.session_slots.acquire_on_behalf_of(holder)
        s = _Late()
        await a.handle_stream(s)
        assert s.closed
        a.session_slots.release_on_behalf_of(holder)

    trio.run(scenario)
    rec = a.peer("12D3KooWlate")
    assert not rec.offences and rec.streams == 0
