"""Known neighbours across restarts (nodeapp/neighbours.py), strangers' slots (bounds rule 9)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from imier.nodeapp import neighbours as nb
from imier.nodeapp.inbound import Inbound
from imier.nodeapp.neighbours import Neighbours
from imier.nodeapp.node import Node
from imier.nodeapp.sync import StreamGone, run_session
from imier.protocol import syncwire as wire
from imier.protocol.errors import RemoteError

from .test_inbound import _both_follow, _community, _Inbound
from .test_sync_session import _ids, _node, _Stream

NOW = 1_800_000_000_000


def test_a_proven_peer_is_remembered_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "neighbours.json"
    n = Neighbours(path, NOW)
    assert not n.known("P1") and not path.exists()
    n.proved("P1", NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"version": 1, "peers": {"P1": NOW}}
    mtime = path.stat().st_mtime_ns
    n.proved("P1", NOW + 1000)  # seen again within a day: no write
    assert path.stat().st_mtime_ns == mtime
    assert Neighbours(path, NOW + 5).known("P1")
    assert not Neighbours(path, NOW + nb.KEEP_MS + 1).known("P1")  # not seen for 90 days


def test_the_file_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb, "MAX_KEPT", 3)
    n = Neighbours(tmp_path / "neighbours.json", NOW)
    for i in range(5):
        n.proved(f"P{i}", NOW + i)
    again = Neighbours(tmp_path / "neighbours.json", NOW + 10)
    assert sorted(again.peers) == ["P2", "P3", "P4"]


@pytest.mark.parametrize("text", ["{", "[]", '{"version": 2, "peers": {}}', '{"version": 1, "peers": {"x": "y"}}',
                                  "\xff\xfe"])
def test_a_damaged_file_is_one_warning_and_no_neighbours(tmp_path: Path, caplog: Any, text: str) -> None:
    path = tmp_path / "neighbours.json"
    path.write_bytes(text.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="imier.daemon"):
        n = Neighbours(path, NOW)
    assert n.peers == {}
    assert any("starting with no known neighbours" in r.getMessage() for r in caplog.records)
    n.proved("P", NOW)  # and it is written anew
    assert Neighbours(path, NOW).known("P")


def test_a_node_knows_its_neighbours_after_a_restart(tmp_path: Path) -> None:
    """The standing a peer earned (a clean session over a held body) survives the
    daemon's restart: a new Node over the same home treats it as proven."""
    a, _, b, body = _both_follow(tmp_path, 10)

    async def session() -> None:
        sa, sb = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as n:
            n.start_soon(Inbound(a).handle, _Inbound(sa, "B", ("127.0.0.1", 1000)))
            await run_session(b, _Stream(sb), b.peer("A"), initiator=True)

    trio.run(session)  # B downloads: not proven yet
    assert not a.peer("B").proven
    trio.run(session)  # B holds the same events: proven
    assert a.peer("B").proven
    restarted = Node(a.home, a.opts, node_key=None)
    assert restarted.peer("B").proven and not restarted.peer("C").proven
    assert _ids(a) == _ids(b)


def test_strangers_from_one_address_take_one_slot_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds rule 9: a second stranger from the same address waits while the first
    holds a slot, and is closed (no offence) if it is still held after SESSION_WAIT_S;
    a stranger from another address is served meanwhile."""
    import imier.nodeapp.inbound as inbound_mod

    monkeypatch.setattr(inbound_mod, "SESSION_WAIT_S", 0.5)
    a, _, b, body = _both_follow(tmp_path, 10)
    gate = Inbound(a)
    src = gate.source("10.0.0.1")

    async def stranger(name: str, ip: str) -> BaseException | None:
        sa, sb = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as n:
            n.start_soon(gate.handle, _Inbound(sa, name, (ip, 4000)))
            try:
                with trio.fail_after(5):
                    await run_session(b, _Stream(sb), b.peer(name), initiator=True)
            except (StreamGone, RemoteError) as exc:
                return exc
        return None

    async def scenario() -> None:
        src.stranger_sessions = 1  # a stranger from 10.0.0.1 holds a slot
        err = await stranger("S2", "10.0.0.1")
        assert isinstance(err, StreamGone), err
        assert a.peer("S2").offence_count == 0
        assert await stranger("S3", "10.0.0.2") is None  # another address is served
        src.stranger_sessions = 0
        assert await stranger("S4", "10.0.0.1") is None  # and the first, once it is free

    trio.run(scenario)


@pytest.mark.parametrize("first_round", [True, False])
def test_a_stranger_that_goes_quiet_after_the_handshake_loses_its_slot(tmp_path: Path, first_round: bool,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds rule 9: after its first round a stranger's rounds must come within
    STRANGER_ROUND_S (the audit's attacker sent one every 13 s and held a slot 65 s
    per peer id); the first may take the read timeout (15 s: the peer loads its own
    items first, seconds for a million events). Virtual time."""
    import imier.nodeapp.sync as sync_mod
    from imier.nodeapp.bounds import READ_TIMEOUT_S
    from imier.protocol.limits import MAX_TS
    from imier.protocol.reconcile import COUNTED, encode_message

    monkeypatch.setattr(sync_mod, "STRANGER_ROUND_S", 0.3)
    a, ana = _node(tmp_path, "a")
    body = _community(a, ana, 10)
    a.store.follow(body)
    gate = Inbound(a)
    one = wire.rec(encode_message([((MAX_TS + 1, b""), COUNTED, [b"\x07" * 16, 0])]))

    async def quiet(s: Any) -> None:
        await s.send_all(wire.hello("q", [body], []) + wire.offer([body]) + (one if first_round else b""))
        await trio.sleep(60)  # never another round

    async def scenario() -> float:
        sa, sb = trio.testing.memory_stream_pair()
        t0 = trio.current_time()
        async with trio.open_nursery() as n:
            n.start_soon(quiet, sb)
            await gate.handle(_Inbound(sa, "Q", ("10.0.0.9", 1)))
            n.cancel_scope.cancel()
        return trio.current_time() - t0

    took = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    if first_round:
        assert 0.3 <= took < 1
    else:
        assert READ_TIMEOUT_S <= took < READ_TIMEOUT_S + 1
    codes = [c for _, c, _ in a.peer("Q").offences]
    assert codes == ["timeout"], codes
    assert gate.general.available_tokens == gate.general.total_tokens


# -- vouches: a person's signature over their node's key (syncwire.vouch_message) --------


def test_a_vouch_rides_in_the_hello_and_is_checked() -> None:
    from nacl.signing import SigningKey

    person, node, other = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    node_pub = bytes(node.verify_key)
    sig = person.sign(wire.vouch_message(node_pub)).signature
    frame = wire.hello("n", [], [], [(bytes(person.verify_key), sig)])
    h = wire.decode_frame(frame[4:])
    assert h["vouch"] == [[bytes(person.verify_key), sig]]
    assert wire.vouch_valid(bytes(person.verify_key), sig, node_pub)
    assert not wire.vouch_valid(bytes(person.verify_key), sig, bytes(other.verify_key))  # another node
    assert not wire.vouch_valid(bytes(other.verify_key), sig, node_pub)  # another person
    plain = wire.hello("n", [], [])
    assert b"vouch" not in plain and wire.decode_frame(plain[4:])["vouch"] == []  # optional
    for bad in ([[b"x" * 32]], [[b"x" * 31, b"s" * 64]], [[b"x" * 32, b"s" * 63]], "no",
                [[b"x" * 32, b"s" * 64]] * (wire.MAX_VOUCHES + 1)):
        doc = {"t": "hello", "v": 1, "node": "n", "bodies": [], "people": [], "vouch": bad}
        with pytest.raises(Exception) as e:
            wire.decode_frame(wire.encode_frame(doc)[4:])
        assert getattr(e.value, "field", None) == "vouch"


def test_a_new_key_vouches_for_its_node_and_an_old_one_on_unlock(tmp_path: Path) -> None:
    from imier.store.home import Home

    home = Home(tmp_path / "h")
    home.create("n", "pw")
    sealed = home.new_person("ana", "pw")
    path = home.keys_dir / "ana.vouch"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert home.vouches() == [(sealed.public, path.read_bytes())]
    assert wire.vouch_valid(sealed.public, path.read_bytes(), home.node_public())
    path.unlink()  # a key made before vouches existed
    assert home.vouches() == []
    home.unlock(sealed, "pw")
    assert [p for p, _ in home.vouches()] == [sealed.public]
    path.write_bytes(b"\0" * 64)  # one that does not hold for this node key is left out, and remade
    assert home.vouches() == []
    home.unlock(sealed, "pw")
    assert [p for p, _ in home.vouches()] == [sealed.public]
    assert [p.name for p in home.people()] == ["ana"] and home.key_problems() == []


class _KeyedPID:
    def __init__(self, s: str, public: bytes) -> None:
        self.s, self.public = s, public

    def to_string(self) -> str:
        return self.s

    def extract_public_key(self) -> Any:
        public = self.public

        class K:
            def to_bytes(self) -> bytes:
                return public

        return K()


def test_a_node_vouched_for_by_a_member_is_a_neighbour_from_its_first_session(tmp_path: Path) -> None:
    """Inbound invariant 7: b's person is admitted in a's community; b's first session
    carries its vouch, so a serves it as a neighbour (proven, remembered). The same
    hello from a connection whose key is not b's node key is a stranger's."""
    from imier.protocol.events import Admit
    from imier.store.author import author_event

    a, ana, b, body = _both_follow(tmp_path, 10)
    ben = b.home.people()[0].public
    author_event(a.store, ana, body=body, data=Admit(member=ben), ts=NOW)
    gate = Inbound(a)

    async def session(pid: str, node_public: bytes) -> None:
        sa, sb = trio.testing.memory_stream_pair()
        stream = _Inbound(sa, pid, ("10.0.0.5", 7))
        stream.muxed_conn.peer_id = _KeyedPID(pid, node_public)  # type: ignore[assignment]
        async with trio.open_nursery() as n:
            n.start_soon(gate.handle, stream)
            await run_session(b, _Stream(sb), b.peer("A"), initiator=True)

    trio.run(session, "IMPOSTOR", b"\x01" * 32)
    assert not a.peer("IMPOSTOR").proven
    trio.run(session, "B", b.home.node_public())
    assert a.peer("B").proven and a.neighbours.known("B")
