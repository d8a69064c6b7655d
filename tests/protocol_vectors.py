"""Test vectors for other implementations: docs/protocol-vectors.json.

``python tests/protocol_vectors.py > docs/protocol-vectors.json`` writes them;
tests/test_network_docs.py checks the file still matches the code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from imier.protocol import syncwire as wire
from imier.protocol.reconcile import Reconciler, fingerprint, sketch

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
    }

if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=1)
