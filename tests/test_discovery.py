"""Discovery plumbing without touching the network: mDNS (a stand-in for zeroconf
that reports a peer from another thread, as zeroconf does) and bootstrap backoff."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing

libp2p = pytest.importorskip("libp2p")

from imier.nodeapp import discovery, quirks  # noqa: E402
from imier.nodeapp.bounds import PeerRecord  # noqa: E402
from imier.nodeapp.node import Options  # noqa: E402


def _peer(seed: int) -> Any:
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import PeerInfo
    import multiaddr

    kp = quirks.key_pair_from_seed(bytes([seed]) * 32)
    return PeerInfo(ID.from_pubkey(kp.public_key), [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/4999")])


class _Host:
    def __init__(self, fail: set[str]) -> None:
        self.me = _peer(1).peer_id
        self.dialled: list[Any] = []
        self.connected: list[Any] = []
        self.fail = fail

    def get_id(self) -> Any:
        return self.me

    def get_connected_peers(self) -> list[Any]:
        return list(self.connected)

    def get_network(self) -> object:
        return object()

    def get_transport_addrs(self) -> list[str]:
        return ["/ip4/0.0.0.0/tcp/4001"]

    async def connect(self, info: Any) -> None:
        self.dialled.append(info)
        if info.peer_id.to_string() in self.fail:
            raise OSError("refused")
        self.connected.append(info.peer_id)


class _Node:
    def __init__(self, opts: Options, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.opts = opts
        self.host = _Host(set(fail))
        self.peers: dict[str, PeerRecord] = {}

    def peer(self, pid: str) -> PeerRecord:
        return self.peers.setdefault(pid, PeerRecord(peer_id=pid))


def test_mdns_peer_reported_from_a_thread_is_dialled(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import libp2p.discovery.mdns.mdns as mdns_mod
    from libp2p.discovery.events.peerDiscovery import peerDiscovery

    other = _peer(2)
    seen: dict[str, Any] = {}

    class FakeMDNS:
        def __init__(self, net: Any, port: int, listen_addrs: list[str]) -> None:
            seen["addrs"], seen["port"] = listen_addrs, port
            self.broadcaster = self

        def register(self) -> None:
            threading.Thread(target=peerDiscovery.emit_peer_discovered, args=(other,)).start()

        def stop(self) -> None:
            seen["stopped"] = True

    monkeypatch.setattr(mdns_mod, "MDNSDiscovery", FakeMDNS)
    node = _Node(Options(mdns=True))

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(discovery.run, node)
            with trio.fail_after(10):
                while not node.host.connected:
                    await trio.sleep(0.05)
            n.cancel_scope.cancel()

    trio.run(main)
    assert node.host.connected == [other.peer_id]
    assert seen["port"] == 4001 and seen["addrs"] and not any("0.0.0.0" in a for a in seen["addrs"])
    assert seen.get("stopped") is True


def test_bootstrap_failures_back_off() -> None:
    bad = _peer(3)
    addr = f"/ip4/127.0.0.1/tcp/4999/p2p/{bad.peer_id.to_string()}"
    node = _Node(Options(mdns=False, bootstrap=[addr]), fail={bad.peer_id.to_string()})

    async def main() -> None:
        with trio.move_on_after(4.5):
            await discovery.run(node)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # tries at about 0 s, 1 s, 3 s (1 s, then 2 s apart), not every second
    assert 2 <= len(node.host.dialled) <= 3, len(node.host.dialled)


def test_gossip_validator_refuses_bad_messages_and_counts_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nacl.signing import SigningKey

    from imier.nodeapp.gossip import Gossip
    from imier.protocol import syncwire as wire
    from imier.protocol.events import Found, sign_event

    k = SigningKey(b"\x03" * 32)
    ev = sign_event(k, body=None, ts=1_700_000_000_000, seq=1, prev=[],
                    data=Found(body_kind="community", name="N"))
    node = _Node(Options())
    node.offences = []  # type: ignore[attr-defined]
    node.offend = lambda peer, code, msg: node.offences.append(code)  # type: ignore[attr-defined]
    g = Gossip.__new__(Gossip)
    g.node = node
    origin = _peer(4).peer_id

    class _Msg:
        def __init__(self, data: bytes) -> None:
            self.data = data
            self.from_id = origin.to_bytes()

    valid = g._validator(ev.id)
    assert valid(origin, _Msg(wire.encode_gossip([ev.raw]))) is True
    tampered = bytearray(ev.raw)
    tampered[ev.raw.index(ev.sig) + 5] ^= 1
    assert valid(origin, _Msg(wire.encode_gossip([bytes(tampered)]))) is False
    assert valid(origin, _Msg(b"\x00garbage")) is False
    assert g._validator(b"\x01" * 32)(origin, _Msg(wire.encode_gossip([ev.raw]))) is False
    assert node.offences == ["bad_signature", "trailing_bytes", "wrong_body"]  # type: ignore[attr-defined]
    assert node.peers == {} or all(p.peer_id == origin.to_string() for p in node.peers.values())
