"""libp2p peer ids for Ed25519 keys, computed without importing libp2p.

A peer id is base58btc(multihash(identity, protobuf PublicKey{Type=Ed25519,
Data=key})): the protobuf for a 32-byte Ed25519 key is ``08 01 12 20 || key``
and the identity multihash prefixes ``00 24``. The CLI uses this so that
`imier init` and `imier id` answer without loading the network stack.
"""

from __future__ import annotations

__all__ = ["peer_id", "b58encode"]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def peer_id(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    proto = b"\x08\x01\x12\x20" + public_key
    return b58encode(b"\x00" + bytes([len(proto)]) + proto)
