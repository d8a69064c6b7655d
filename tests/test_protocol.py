"""protocol/: canonical encoding, signatures, limits, and the refusal of anything else."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from imier.protocol import canonical
from imier.protocol.bundle import read_bundle, write_bundle
from imier.protocol.charter import Charter, parse_duration_ms, parse_ratio
from imier.protocol.errors import Rejected, RemoteError
from imier.protocol.events import (
    Admit,
    Amend,
    Found,
    Leave,
    Part,
    Propose,
    Recall,
    Stand,
    Vote,
    Withdraw,
    decode_event,
    sign_event,
)
from imier.protocol.keys import read_sealed, seal, unseal
from imier.protocol.limits import MAX_EVENT_BYTES, MAX_TEXT

from .strategies import KEYS, events

ID = bytes(range(32))


def test_round_trip_every_kind() -> None:
    k = KEYS[0]
    payloads = [
        Admit(member=bytes(KEYS[1].verify_key)),
        Leave(),
        Part(part=ID, join=True),
        Propose(title="Solar", text="Rates by street"),
        Propose(title="c", text="t", proposal_kind="charter", charter={"quorum": "1/3"}),
        Propose(title="m", text="t", proposal_kind="mandate", holder=ID, task="x", term_ms=1000),
        Propose(title="d", text="t", proposal_kind="draw", candidates=(bytes(31) + b"\x01", ID),
                k=1, task="x"),
        Propose(title="r", text="t", proposal_kind="renew", committee=ID),
        Amend(proposal=ID, text="new text"),
        Vote(target=ID, choice="yes"),
        Vote(target=ID, choice="no", severity="blocking", category="cost", delegate=ID),
        Vote(target=ID, choice="abstain"),
        Stand(proposal=ID, choice="no"),
        Withdraw(proposal=ID),
        Recall(mandate=ID, holder=ID, reason="absent"),
    ]
    found = sign_event(k, body=None, ts=1, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    assert decode_event(found.raw) == found
    assert found.body_id == found.id
    for i, data in enumerate(payloads):
        ev = sign_event(k, body=found.id, ts=10 + i, seq=2 + i, prev=[found.id], data=data)
        back = decode_event(ev.raw)
        assert back == ev and back.id == ev.id and back.raw == ev.raw
        assert back.kind == data.KIND


@settings(max_examples=60, deadline=None)
@given(events())
def test_hypothesis_round_trip(ev) -> None:  # type: ignore[no-untyped-def]
    back = decode_event(ev.raw)
    assert back == ev
    assert back.id == ev.id


@settings(max_examples=60, deadline=None)
@given(events(), st.data())
def test_any_single_byte_mutation_is_rejected(ev, data) -> None:  # type: ignore[no-untyped-def]
    pos = data.draw(st.integers(0, len(ev.raw) - 1))
    delta = data.draw(st.integers(1, 255))
    mutated = bytearray(ev.raw)
    mutated[pos] = (mutated[pos] + delta) % 256
    with pytest.raises(Rejected):
        decode_event(bytes(mutated))


@settings(max_examples=30, deadline=None)
@given(events(), st.data())
def test_truncation_is_rejected(ev, data) -> None:  # type: ignore[no-untyped-def]
    cut = data.draw(st.integers(0, len(ev.raw) - 1))
    with pytest.raises(Rejected):
        decode_event(ev.raw[:cut])


def _found():  # type: ignore[no-untyped-def]
    return sign_event(KEYS[0], body=None, ts=5, seq=1, prev=[], data=Found(body_kind="community", name="N"))


def test_non_canonical_encodings_are_refused() -> None:
    ev = _found()
    value = msgpack.unpackb(ev.raw, raw=False)
    # keys out of order: same value, other bytes
    reordered = msgpack.packb(dict(reversed(list(value.items()))), use_bin_type=True)
    with pytest.raises(Rejected) as e:
        decode_event(reordered)
    assert e.value.code == "not_canonical"
    # an int in a longer form than needed
    longer = ev.raw.replace(b"\xa2ts\x05", b"\xa2ts\xcd\x00\x05")
    assert longer != ev.raw
    with pytest.raises(Rejected):
        decode_event(longer)
    # trailing bytes
    with pytest.raises(Rejected) as e:
        decode_event(ev.raw + b"\x00")
    assert e.value.code == "trailing_bytes"


def test_refusals_name_the_field() -> None:
    ev = _found()
    value = msgpack.unpackb(ev.raw, raw=False)
    cases = {
        "v": ({**value, "v": 2}, "bad_version"),
        "kind": ({**value, "kind": "teleport"}, "unknown_kind"),
        "event": ({**value, "extra": 1}, "unknown_field"),
        "ts": ({**value, "ts": -1}, "bad_field"),
    }
    for fieldname, (bad, code) in cases.items():
        raw = canonical.pack(bad)
        with pytest.raises(Rejected) as e:
            decode_event(raw)
        assert e.value.code == code, fieldname
        assert fieldname in str(e.value)
    floaty = msgpack.packb({**value, "ts": 5.0}, use_bin_type=True)
    with pytest.raises(Rejected):
        decode_event(floaty)


def test_forged_signature_is_refused() -> None:
    ev = _found()
    value = msgpack.unpackb(ev.raw, raw=False)
    value["author"] = bytes(KEYS[1].verify_key)
    with pytest.raises(Rejected) as e:
        decode_event(canonical.pack(value))
    assert e.value.code == "bad_signature"


def test_limits() -> None:
    with pytest.raises(Rejected) as e:
        Propose(title="t", text="x" * (MAX_TEXT + 1))
    assert e.value.field == "data.text"
    with pytest.raises(Rejected):
        decode_event(b"\x00" * (MAX_EVENT_BYTES + 1))
    with pytest.raises(Rejected):
        Vote(target=ID, choice="no", severity="minor", category="Not Lower")
    with pytest.raises(Rejected):
        Vote(target=ID, choice="yes", severity="minor")
    with pytest.raises(Rejected):
        sign_event(KEYS[0], body=ID, ts=1, seq=2, prev=[], data=Leave())
    with pytest.raises(Rejected):
        Propose(title="m", text="t", proposal_kind="mandate")
    # deep nesting is refused before anything else looks at it
    deep: object = 1
    for _ in range(20):
        deep = [deep]
    with pytest.raises(Rejected):
        canonical.unpack(msgpack.packb(deep), max_size=1000)


def test_charter_parsing_and_coherence() -> None:
    assert parse_ratio("9/10", field="x").numerator == 9
    assert parse_duration_ms("3d", field="x") == 3 * 86_400_000
    assert parse_duration_ms("90", field="x") == 90_000
    for bad in ("1/0", "3/2", "a/b", "0.5"):
        with pytest.raises(Rejected):
            parse_ratio(bad, field="quorum")
    with pytest.raises(Rejected):
        parse_duration_ms("0s", field="vote_window")
    c = Charter()
    with pytest.raises(Rejected) as e:
        c.with_changes({"contention_floor": "3/4"})
    assert e.value.code == "incoherent_charter"
    assert c.with_changes({"quorum": "1/3"}).quorum.denominator == 3
    with pytest.raises(Rejected):
        c.with_changes({"colour": "red"})
    assert Charter().with_changes(Charter().to_wire()) == Charter()


def test_sealed_keys() -> None:
    sealed = seal(KEYS[2], "ana", "correct horse")
    assert read_sealed(sealed.blob).public == bytes(KEYS[2].verify_key)
    assert bytes(unseal(sealed.blob, "correct horse")) == bytes(KEYS[2])
    from imier.protocol.errors import LocalError

    with pytest.raises(LocalError) as e:
        unseal(sealed.blob, "wrong")
    assert "wrong passphrase" in str(e.value)
    assert bytes(KEYS[2]).hex() not in str(e.value)
    assert bytes(KEYS[2]) not in sealed.blob


def test_bundle_framing() -> None:
    ev = _found()
    data = write_bundle([ev.raw, ev.raw])
    assert read_bundle(data) == [ev.raw, ev.raw]
    with pytest.raises(RemoteError) as e:
        read_bundle(b"PK\x03\x04 not a bundle")
    assert e.value.code == "not_bundle"
    with pytest.raises(RemoteError) as e:
        read_bundle(data[:-1])
    broken = bytearray(data)
    broken[20] ^= 1
    with pytest.raises(RemoteError) as e:
        read_bundle(bytes(broken))
    assert e.value.code in ("bad_digest", "truncated")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_bundle_reader_only_raises_remote_errors(blob: bytes) -> None:
    for data in (blob, b"IMIER-BUNDLE\n" + blob):
        try:
            read_bundle(data)
        except RemoteError:
            pass


def test_signing_key_is_deterministic() -> None:
    k = SigningKey(b"\x01" * 32)
    a = sign_event(k, body=None, ts=1, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    b = sign_event(k, body=None, ts=1, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    assert a.raw == b.raw and a.id == b.id
