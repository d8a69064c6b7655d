"""Test vectors for other implementations: docs/protocol-vectors.json.

``python tests/protocol_vectors.py > docs/protocol-vectors.json`` writes them;
tests/test_network_docs.py checks the file still matches the code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import msgpack
from nacl.signing import SigningKey

from imier.protocol import syncwire as wire
from imier.protocol.events import (
    SIGN_CONTEXT, Admit, Amend, Found, Leave, Link, Part, Profile, Propose, Recall, Seal, Stand,
    Unlink, Vote, Withdraw, sign_event,
)
from imier.protocol.reconcile import Reconciler, fingerprint, sketch


def _tagged(v: Any) -> Any:
    """JSON for a msgpack value: bytes become {"bin": HEX} so nothing is ambiguous."""
    if isinstance(v, bytes):
        return {"bin": v.hex()}
    if isinstance(v, dict):
        return {k: _tagged(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_tagged(x) for x in v]
    return v


def event_vectors() -> list[dict[str, Any]]:
    """One signed event of every kind (and every proposal kind), from fixed seeds.

    Each vector gives the signing seed, the event's fields as JSON (bytes tagged
    ``{"bin": HEX}``), the exact bytes that are signed (SIGN_CONTEXT + the map
    without "sig"), the full wire bytes and the id: enough to check an encoder
    and a signer written in another language.
    """
    seed = bytes(range(32))
    key = SigningKey(seed)
    h = [hashlib.sha256(bytes([i])).digest() for i in range(6)]
    body, p = h[0], h[1]
    k2 = bytes(SigningKey(bytes([7]) * 32).verify_key)
    payloads: list[Any] = [
        Admit(member=k2), Leave(), Part(part=h[2], join=True),
        Propose(title="Tool library", text="We open a tool library in the hall."),
        Propose(title="Quorum", text="Lower it", proposal_kind="charter", charter={"quorum": "1/3"}),
        Propose(title="Delegate", text="Ana goes", proposal_kind="mandate", holder=k2, task="delegate",
                term_ms=86_400_000, scope=h[3]),
        Propose(title="Tellers", text="Draw three", proposal_kind="draw", k=3, task="teller", all_members=True),
        Propose(title="Pick", text="One of two", proposal_kind="draw", k=1, task="delegate",
                candidates=tuple(sorted([h[2], h[3]]))),
        Propose(title="Renew", text="Keep going", proposal_kind="renew", committee=h[4]),
        Propose(title="Join the town", text="We federate", proposal_kind="federate", federation=h[4], join=True),
        Propose(title="Ana lost her phone", text="New key", proposal_kind="recover", person=k2, new_key=h[5]),
        Amend(proposal=p, text="We open a tool library in the hall, Saturdays."),
        Vote(target=p, choice="yes"), Vote(target=p, choice="abstain"),
        Vote(target=p, choice="no", severity="minor", category="cost", delegate=k2),
        Vote(target=p, choice="no", severity="blocking", category="safety"),
        Stand(proposal=p, choice="no"), Withdraw(proposal=p),
        Recall(mandate=p, holder=k2, reason="gone"),
        Seal(proposal=p, window="r1", heads=tuple(sorted(h[2:5]))),
        Profile(name="Ana Müller ✓"), Link(device=k2), Unlink(device=k2),
    ]
    out = []
    found = sign_event(key, body=None, ts=1_700_000_000_000, seq=1, prev=[],
                       data=Found(body_kind="community", name="North", charter={"discussion": "60s"}))
    evs = [found] + [
        sign_event(key, body=body, ts=1_700_000_000_000 + 1000 * (i + 1), seq=i + 2,
                   prev=sorted([h[1], h[2]])[: 1 + i % 2], data=d)
        for i, d in enumerate(payloads)
    ]
    for ev in evs:
        full = msgpack.unpackb(ev.raw)
        signed = {k: v for k, v in full.items() if k != "sig"}
        out.append({
            "seed": seed.hex(),
            "event": _tagged(full),
            "signed": _signed_bytes(signed).hex(),
            "raw": ev.raw.hex(),
            "id": ev.id.hex(),
        })
    return out


def _signed_bytes(signed: dict[str, Any]) -> bytes:
    from imier.protocol import canonical

    return SIGN_CONTEXT + canonical.pack(signed)

def build() -> dict[str, Any]:
    ids = [hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()]
    s = sum(int.from_bytes(i, "little") for i in ids)
    a_items = sorted((1_700_000_000_000 + 1000 * i, hashlib.sha256(bytes([i])).digest()) for i in range(40))
    b_items = [x for x in a_items if x[0] != 1_700_000_007_000] + [
        (1_700_000_050_000, hashlib.sha256(b"only b").digest())]
    b_items.sort()
    ra, rb = Reconciler(a_items), Reconciler(b_items)
    transcript = []
    msg = ra.initiate()
    side, name = rb, "b"
    transcript.append({"from": "a", "msg": msg.hex()})
    while True:
        reply, _, _ = side.reconcile(msg)
        if reply is None:
            break
        transcript.append({"from": name, "msg": reply.hex()})
        msg = reply
        side, name = (ra, "a") if side is rb else (rb, "b")
    return {
        "fingerprint": {"ids": [i.hex() for i in ids], "count": 2, "fingerprint": fingerprint(s, 2).hex()},
        "sketch": {"ids": [i.hex() for i in ids], "s": 2, "cells": sketch(ids, 2).hex()},
        "reconcile": {
            "a_items": [[t, i.hex()] for t, i in a_items],
            "b_items": [[t, i.hex()] for t, i in b_items],
            "transcript": transcript,
            "a_have": sorted(i.hex() for i in ra.have), "a_need": sorted(i.hex() for i in ra.need),
        },
        "frames": {
            "hello": wire.hello("north", [ids[0]], [ids[1]]).hex(),
            "offer": wire.offer([ids[0]]).hex(),
            "end": wire.end().hex(),
        },
        "gossip": {"topic": wire.topic_for(ids[0]), "message_of_one_raw_event_b'x'": wire.encode_gossip([b"x"]).hex()},
        "events": event_vectors(),
    }

if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=1)
