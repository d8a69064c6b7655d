"""Frames of the sync stream (/imier/sync/1) and gossip messages. Pure.

A sync frame on the stream is ``u32 big-endian length || canonical msgpack
map``; the map's ``"t"`` names the frame (docs/protocol.md, "Sync")::

    hello  {"t": "hello", "v": 1, "node": str, "bodies": [bin32], "people": [bin32],
            "vouch": [[bin32, bin64]]}        "vouch" optional: see :func:`vouch_message`
    offer  {"t": "offer", "bodies": [bin32]}
    rec    {"t": "rec", "m": bin}             a reconcile.py message
    ev     {"t": "ev", "ev": [bin]}           signed events (each <= MAX_EVENT_BYTES)
    end    {"t": "end"}
    err    {"t": "err", "code": str, "msg": str}

A gossip message (one GossipSub topic per body, ``imier/body/1/<hex id>``)
is ``{"v": 1, "ev": [bin]}``: one or a few signed events of that body.

Every field is checked here; anything else raises :class:`RemoteError` or
:class:`Rejected` with a code.
"""

from __future__ import annotations

import struct
from typing import Any

from . import canonical
from .errors import Rejected, RemoteError
from .limits import ID_LEN, MAX_EVENT_BYTES, MAX_NAME
from .reconcile import MAX_MESSAGE_BYTES

__all__ = [
    "SYNC_PROTOCOL",
    "SYNC_VERSION",
    "MAX_FRAME_BYTES",
    "MAX_EVENTS_PER_FRAME",
    "EVENT_FRAME_TARGET",
    "MAX_BODIES",
    "MAX_PEOPLE",
    "LEN",
    "encode_frame",
    "frame_length",
    "decode_frame",
    "hello",
    "offer",
    "rec",
    "events_frame",
    "end",
    "err",
    "topic_for",
    "body_of_topic",
    "encode_gossip",
    "decode_gossip",
    "MAX_GOSSIP_EVENTS",
    "MAX_VOUCHES",
    "vouch_message",
    "vouch_valid",
]

SYNC_PROTOCOL = "/imier/sync/1"
SYNC_VERSION = 1
MAX_FRAME_BYTES = 1024 * 1024
EVENT_FRAME_TARGET = 256 * 1024  # senders batch events up to about this much
MAX_EVENTS_PER_FRAME = 1024
MAX_BODIES = 4096
MAX_PEOPLE = 1024
MAX_VOUCHES = 16
VOUCH_TAG = b"imier/vouch/1\x00"
MAX_GOSSIP_EVENTS = 16
MAX_GOSSIP_BYTES = 256 * 1024
LEN = struct.Struct(">I")
TOPIC_PREFIX = "imier/body/1/"


def encode_frame(value: dict[str, Any]) -> bytes:
    body = canonical.pack(value)
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError("frame larger than the protocol allows")
    return LEN.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The length announced by a 4-byte header; refuses oversized frames before reading them."""
    (n,) = LEN.unpack(header)
    if n > MAX_FRAME_BYTES:
        raise RemoteError("frame_too_large", f"{n} bytes announced, limit {MAX_FRAME_BYTES}", field="frame")
    if n == 0:
        raise RemoteError("bad_frame", "empty frame", field="frame")
    return int(n)


def _ids(v: Any, name: str, limit: int) -> list[bytes]:
    if not isinstance(v, list) or len(v) > limit:
        raise Rejected("bad_field", f"a list of at most {limit} ids", field=name)
    for i in v:
        if not isinstance(i, bytes) or len(i) != ID_LEN:
            raise Rejected("bad_field", "ids are 32 bytes", field=name)
    if len(set(v)) != len(v):
        raise Rejected("bad_field", "duplicate ids", field=name)
    return v


def vouch_message(node_public: bytes) -> bytes:
    """What a person signs to vouch for a node as theirs: the tag and the node's
    Ed25519 public key (the key its libp2p peer id is made of). A peer that shows a
    valid vouch by a person of a body we hold is a node of one of its people."""
    return VOUCH_TAG + node_public


def vouch_valid(person: bytes, sig: bytes, node_public: bytes) -> bool:
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(person).verify(vouch_message(node_public), sig)
        return True
    except (BadSignatureError, ValueError, TypeError):
        return False


_OPTIONAL: dict[str, set[str]] = {"hello": {"vouch"}}
_SHAPES: dict[str, set[str]] = {
    "hello": {"t", "v", "node", "bodies", "people"},
    "offer": {"t", "bodies"},
    "rec": {"t", "m"},
    "ev": {"t", "ev"},
    "end": {"t"},
    "err": {"t", "code", "msg"},
}


def decode_frame(body: bytes) -> dict[str, Any]:
    """A frame's map, validated for its type."""
    value = canonical.unpack(body, max_size=MAX_FRAME_BYTES)
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise Rejected("bad_frame", "a frame is a map with a type \"t\"", field="frame")
    t = value["t"]
    keys = _SHAPES.get(t)
    if keys is None:
        raise Rejected("unknown_frame", f"unknown frame type {t!r}", field="t")
    if not keys <= set(value) <= keys | _OPTIONAL.get(t, set()):
        raise Rejected("bad_frame", f"a {t} frame has exactly {', '.join(sorted(keys))}"
                       + (f" (and may have {', '.join(sorted(_OPTIONAL[t]))})" if t in _OPTIONAL else ""),
                       field=t)
    if t == "hello":
        if value["v"] != SYNC_VERSION:
            raise Rejected("bad_version", f"sync version {value['v']!r} is not supported", field="v")
        node = value["node"]
        if not isinstance(node, str) or len(node) > MAX_NAME:
            raise Rejected("bad_field", f"node name: text of at most {MAX_NAME}", field="node")
        _ids(value["bodies"], "bodies", MAX_BODIES)
        _ids(value["people"], "people", MAX_PEOPLE)
        vouch = value.get("vouch", [])
        if not isinstance(vouch, list) or len(vouch) > MAX_VOUCHES or not all(
                isinstance(v, list) and len(v) == 2 and isinstance(v[0], bytes) and len(v[0]) == ID_LEN
                and isinstance(v[1], bytes) and len(v[1]) == 64 for v in vouch):
            raise Rejected("bad_field", f"at most {MAX_VOUCHES} [person key, signature] pairs", field="vouch")
        value["vouch"] = vouch
    elif t == "offer":
        _ids(value["bodies"], "bodies", MAX_BODIES)
    elif t == "rec":
        if not isinstance(value["m"], bytes) or len(value["m"]) > MAX_MESSAGE_BYTES:
            raise Rejected("bad_field", "a reconcile message is bytes", field="m")
    elif t == "ev":
        evs = value["ev"]
        if not isinstance(evs, list) or len(evs) > MAX_EVENTS_PER_FRAME:
            raise Rejected("bad_field", f"at most {MAX_EVENTS_PER_FRAME} events", field="ev")
        for e in evs:
            if not isinstance(e, bytes) or len(e) > MAX_EVENT_BYTES:
                raise Rejected("too_large", "an event is bytes within the size limit", field="ev")
    elif t == "err":
        if not isinstance(value["code"], str) or not isinstance(value["msg"], str):
            raise Rejected("bad_field", "code and msg are text", field="err")
    return value


def hello(node: str, bodies: list[bytes], people: list[bytes],
          vouch: list[tuple[bytes, bytes]] | None = None) -> bytes:
    doc: dict[str, Any] = {"t": "hello", "v": SYNC_VERSION, "node": node[:MAX_NAME], "bodies": sorted(bodies),
                           "people": sorted(people)}
    if vouch:
        doc["vouch"] = [[p, sig] for p, sig in sorted(vouch)[:MAX_VOUCHES]]
    return encode_frame(doc)


def offer(bodies: list[bytes]) -> bytes:
    return encode_frame({"t": "offer", "bodies": sorted(bodies)})


def rec(msg: bytes) -> bytes:
    return encode_frame({"t": "rec", "m": msg})


def events_frame(raws: list[bytes]) -> bytes:
    return encode_frame({"t": "ev", "ev": list(raws)})


def end() -> bytes:
    return encode_frame({"t": "end"})


def err(code: str, msg: str) -> bytes:
    return encode_frame({"t": "err", "code": code[:64], "msg": msg[:500]})


# -- gossip ---------------------------------------------------------------------------


def topic_for(body: bytes) -> str:
    return TOPIC_PREFIX + body.hex()


def body_of_topic(topic: str) -> bytes | None:
    if not topic.startswith(TOPIC_PREFIX):
        return None
    try:
        b = bytes.fromhex(topic[len(TOPIC_PREFIX):])
    except ValueError:
        return None
    return b if len(b) == ID_LEN else None


def encode_gossip(raws: list[bytes]) -> bytes:
    return canonical.pack({"ev": list(raws), "v": 1})


def decode_gossip(data: bytes) -> list[bytes]:
    value = canonical.unpack(data, max_size=MAX_GOSSIP_BYTES)
    if not isinstance(value, dict) or set(value) != {"ev", "v"} or value["v"] != 1:
        raise Rejected("bad_gossip", "a gossip message is {\"ev\": [...], \"v\": 1}", field="gossip")
    evs = value["ev"]
    if not isinstance(evs, list) or not (1 <= len(evs) <= MAX_GOSSIP_EVENTS):
        raise Rejected("bad_gossip", f"1 to {MAX_GOSSIP_EVENTS} events", field="ev")
    for e in evs:
        if not isinstance(e, bytes) or len(e) > MAX_EVENT_BYTES:
            raise Rejected("too_large", "an event is bytes within the size limit", field="ev")
    return evs
