"""The node's libp2p host: identity, listen addresses, the addresses it tells others.

The identity is the node key made by ``imier init`` (an Ed25519 seed sealed
with the passphrase), so the peer id is the same across restarts.
"""

from __future__ import annotations

from typing import Any

import multiaddr
from nacl.signing import SigningKey

from ..protocol.errors import LocalError
from . import quirks

__all__ = ["build_host", "full_addrs", "interface_ips", "parse_multiaddr", "peer_info"]


def parse_multiaddr(text: str, *, need_peer: bool = False) -> Any:
    try:
        ma = multiaddr.Multiaddr(text)
    except Exception as exc:  # the multiaddr package raises several kinds
        raise LocalError(f"{text!r} is not a multiaddr ({exc})",
                         hint="e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...") from None
    if need_peer and "/p2p/" not in text:
        raise LocalError(f"{text!r} does not name a peer", hint="end it with /p2p/PEER_ID ('imier id' on that node)")
    return ma


def peer_info(text: str) -> Any:
    from libp2p.peer.peerinfo import info_from_p2p_addr

    ma = parse_multiaddr(text, need_peer=True)
    try:
        return info_from_p2p_addr(ma)
    except Exception as exc:
        raise LocalError(f"{text!r}: {exc}") from None


def build_host(node_key: SigningKey, listen: list[str]) -> tuple[Any, list[Any]]:
    """``(host, listen multiaddrs)``: TCP, Noise, Yamux (quirks.py)."""
    addrs = [parse_multiaddr(a) for a in listen]
    for a in addrs:
        if "tcp" not in {p.name for p in a.protocols()}:
            raise LocalError(f"listen address {a} is not TCP", hint="e.g. /ip4/0.0.0.0/tcp/4001")
    kp = quirks.key_pair_from_seed(bytes(node_key))
    return quirks.make_host(kp, addrs), addrs


def interface_ips() -> list[str]:
    """The IPv4 addresses of this machine's interfaces (for 0.0.0.0 listeners and mDNS)."""
    try:
        import ifaddr

        out = []
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                if isinstance(ip.ip, str) and ip.ip not in out:
                    out.append(ip.ip)
        return out or ["127.0.0.1"]
    except Exception:  # pragma: no cover - ifaddr missing or broken
        return ["127.0.0.1"]


def full_addrs(host: Any) -> list[str]:
    """Every address the host listens on, with concrete IPs and ``/p2p/PEER_ID``."""
    pid = host.get_id().to_string()
    out: list[str] = []
    for a in host.get_transport_addrs():
        s = str(a)
        if "/p2p/" in s:
            s = s.split("/p2p/")[0]
        if s.startswith("/ip4/0.0.0.0/"):
            rest = s[len("/ip4/0.0.0.0/"):]
            cands = [f"/ip4/{ip}/{rest}" for ip in interface_ips()]
        else:
            cands = [s]
        for c in cands:
            full = f"{c}/p2p/{pid}"
            if full not in out:
                out.append(full)
    return out
