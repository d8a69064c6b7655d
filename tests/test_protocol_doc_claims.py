"""What docs/protocol.md section 11 tells an implementer, checked against the code.

Each test pins one answer the page gives, so the page and the code cannot
drift apart silently: the gossip message id, which heads go into ``prev``,
the exact diff answer, the nesting depth and how text lengths are counted.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from nacl.signing import SigningKey

from imier.protocol import canonical
from imier.protocol.errors import Rejected
from imier.protocol.events import Admit, Found, Profile, Vote, sign_event
from imier.protocol.reconcile import DIFF, ID_LIST, Reconciler, decode_message, encode_message
from imier.store.author import choose_prev
from imier.store.db import Store

T0 = 1_767_225_600_000


def _key(n: int) -> SigningKey:
    return SigningKey(hashlib.sha256(f"doc-claims {n}".encode()).digest())


def test_1_gossip_message_id_is_base64_of_sha256_of_the_data() -> None:
    pytest.importorskip("libp2p")
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.pubsub import ContentAddressedMessageIDGenerator

    data = canonical.pack({"ev": [b"\x01" * 40], "v": 1})
    msg = rpc_pb2.Message(data=data, seqno=b"\x00" * 8, from_id=b"someone")
    expected = base64.b64encode(hashlib.sha256(data).digest())
    assert ContentAddressedMessageIDGenerator().generate_id(msg) == expected
    assert len(expected) == 44 and expected.endswith(b"=")
    # The node's router is built with exactly this generator.
    from imier.nodeapp import quirks

    assert "ContentAddressedMessageIDGenerator()" in open(quirks.__file__, encoding="utf-8").read()


def test_2_prev_is_the_own_previous_event_then_the_newest_heads() -> None:
    """Twelve heads: a member's next event names its own last event and the 7 newest."""
    founder, others = _key(0), [_key(i) for i in range(1, 13)]
    store = Store.memory()
    found = sign_event(founder, body=None, ts=T0, seq=1, prev=[], data=Found(body_kind="community", name="North"))
    body = found.id
    evs = [found]
    last = found
    for i, k in enumerate(others, 1):
        last = sign_event(founder, body=body, ts=T0 + i, seq=i + 1, prev=[last.id],
                          data=Admit(member=bytes(k.verify_key)))
        evs.append(last)
    # Every admitted person votes on the founding, naming only the last admit: 12 heads.
    votes = [
        sign_event(k, body=body, ts=T0 + 100 + i, seq=1, prev=[last.id], data=Vote(target=body, choice="yes"))
        for i, k in enumerate(others)
    ]
    res = store.ingest(evs + votes)
    assert len(res.rejected) == 0
    heads = store.heads(body)
    assert len(heads) == 12
    # The founder: own newest event (the last admit, no longer a head) + the 7 newest heads.
    seq, prev, min_ts = choose_prev(store, body, bytes(founder.verify_key))
    newest = [h for _, h in sorted(heads, reverse=True)[:7]]
    assert seq == len(others) + 2
    assert prev == sorted([last.id, *newest])
    assert min_ts == max(v.ts for v in votes)
    # A voter: own vote (itself a head) + the 7 newest other heads.
    voter = others[0]
    seq, prev, _ = choose_prev(store, body, bytes(voter.verify_key))
    own = votes[0].id
    assert seq == 2
    assert prev == sorted([own, *[h for _, h in sorted(heads, reverse=True) if h != own][:7]])


def test_6_diff_lists_unlisted_ids_in_item_order_with_an_exact_bitfield() -> None:
    def ident(n: int) -> bytes:
        return hashlib.sha256(bytes([n])).digest()

    # The answerer's items: timestamps out of id order, so item order != id order.
    mine = sorted((1000 - n, ident(n)) for n in range(10))
    theirs_listed = [ident(0), ident(3), ident(50), ident(7), ident(60)]  # 50 and 60 the answerer lacks
    msg = encode_message([((2**53 + 1, b""), ID_LIST, theirs_listed)])
    answer = Reconciler(mine)
    reply, have, need = answer.reconcile(msg)
    assert reply is not None
    ((_, mode, (extra, bits)),) = decode_message(reply)
    assert mode == DIFF
    listed = set(theirs_listed)
    assert extra == [i for _, i in mine if i not in listed]  # (ts, id) order, not id order
    assert extra != sorted(extra)
    assert len(bits) == (len(theirs_listed) + 7) // 8 == 1
    assert bits == bytes([0b10100])  # bits 2 and 4: the third and fifth listed ids are lacking
    assert set(need) == {ident(50), ident(60)} and have == extra


def test_7_the_top_level_container_counts_in_the_six_levels() -> None:
    def nest(n: int) -> object:
        v: object = 1
        for _ in range(n):
            v = [v]
        return v

    assert canonical.unpack(canonical.pack(nest(6)), max_size=100) == nest(6)
    with pytest.raises(Rejected) as exc:
        canonical.pack(nest(7))
    assert exc.value.code == "too_deep"


def test_8_text_lengths_are_unicode_code_points() -> None:
    for ch in ("a", "é", "語", "😀"):  # 1, 2, 3 and 4 bytes in UTF-8
        assert Profile(name=ch * 64).name == ch * 64
        with pytest.raises(Rejected) as exc:
            Profile(name=ch * 65)
        assert exc.value.code == "too_long"
