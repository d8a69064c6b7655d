"""The kinds of docs/rules.md s.9-11 on the wire: seal, profile, link, unlink,
and the federate / recover / all-members draw proposals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey, VerifyKey

from imier.protocol import Rejected
from imier.protocol.events import Link, Profile, Propose, Seal, decode_event, sign_event
from imier.protocol.limits import MAX_EVENT_BYTES, MAX_SEAL_HEADS

KEY = SigningKey(bytes([3]) * 32)
B = bytes([1]) * 32
P = bytes([2]) * 32


def _ev(data: object) -> bytes:
    return sign_event(KEY, body=B, ts=10, seq=2, prev=[B], data=data).raw  # type: ignore[arg-type]


def test_a_seal_with_the_most_heads_fits_one_event() -> None:
    heads = tuple(sorted(i.to_bytes(32, "big") for i in range(MAX_SEAL_HEADS)))
    raw = _ev(Seal(proposal=P, window="c", heads=heads))
    assert len(raw) <= MAX_EVENT_BYTES
    assert decode_event(raw).data == Seal(proposal=P, window="c", heads=heads)


@pytest.mark.parametrize("build, field", [
    (lambda: Seal(proposal=P, window="r4", heads=(B,)), "data.window"),
    (lambda: Seal(proposal=P, window="r1", heads=()), "data.heads"),
    (lambda: Seal(proposal=P, window="r1", heads=(P, B)), "data.heads"),
    (lambda: Seal(proposal=P, window="r1",
                  heads=tuple(sorted(i.to_bytes(32, "big") for i in range(MAX_SEAL_HEADS + 1)))), "data.heads"),
    (lambda: Profile(name="x" * 65), "data.name"),
    (lambda: Profile(name=" "), "data.name"),
    (lambda: Link(device=b"\x01" * 31), "data.device"),
    (lambda: Propose(title="t", text="x", proposal_kind="federate", federation=P), "data.join"),
    (lambda: Propose(title="t", text="x", proposal_kind="federate", join=True), "data.federation"),
    (lambda: Propose(title="t", text="x", proposal_kind="recover", person=P, new_key=P), "data.new_key"),
    (lambda: Propose(title="t", text="x", proposal_kind="draw", k=1, task="teller"), "data.candidates"),
    (lambda: Propose(title="t", text="x", proposal_kind="draw", k=1, task="teller", all_members=True,
                     candidates=(P,)), "data.candidates"),
    (lambda: Propose(title="t", text="x", proposal_kind="draw", k=1, task="teller",
                     all_members=False), "data.all_members"),
    (lambda: Propose(title="t", text="x", proposal_kind="general", federation=P), "data.federation"),
])
def test_bad_new_payloads_name_their_field(build: object, field: str) -> None:
    with pytest.raises(Rejected) as e:
        build()  # type: ignore[operator]
    assert e.value.field == field


def test_profile_length_is_counted_in_code_points() -> None:
    name = "é" * 64  # 128 bytes of UTF-8, 64 code points
    assert decode_event(_ev(Profile(name=name))).data == Profile(name=name)


def test_event_vectors_verify_and_decode() -> None:
    doc = json.loads((Path(__file__).resolve().parent.parent / "docs" / "protocol-vectors.json").read_text())
    kinds = set()
    for v in doc["events"]:
        raw = bytes.fromhex(v["raw"])
        ev = decode_event(raw)
        assert ev.id.hex() == v["id"]
        VerifyKey(ev.author).verify(bytes.fromhex(v["signed"]), ev.sig)
        assert SigningKey(bytes.fromhex(v["seed"])).verify_key == VerifyKey(ev.author)
        kinds.add(ev.kind if ev.kind != "propose" else f"propose:{ev.data.proposal_kind}")  # type: ignore[union-attr]
    assert {"seal", "profile", "link", "unlink", "propose:federate", "propose:recover"} <= kinds
