"""Property tests of the sketch mode of the set reconciliation (protocol/reconcile.py):
counted fingerprints, sketches (IBLTs over the ids of a range) and their decoded answers."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imier.protocol import reconcile
from imier.protocol.errors import Rejected
from imier.protocol.reconcile import (
    COUNTED,
    DECODED,
    SKETCH,
    SKETCH_MAX_S,
    Reconciler,
    decode_message,
    sketch,
    sketch_cells,
)


def _item(n: int, spread: int = 10**9) -> tuple[int, bytes]:
    h = hashlib.sha256(b"sk" + n.to_bytes(8, "big")).digest()
    return (int.from_bytes(h[:4], "big") % spread, h)


def run(a_items: list[tuple[int, bytes]], b_items: list[tuple[int, bytes]], *, budget: int | None = None,
        max_rounds: int = 400) -> tuple[Reconciler, Reconciler, list[list[Any]]]:
    """Both sides to the end; also every message's decoded ranges, in order."""
    kw = {} if budget is None else {"frame_budget": budget}
    a, b = Reconciler(sorted(a_items), **kw), Reconciler(sorted(b_items), **kw)
    msg: bytes | None = a.initiate()
    side = b
    transcript: list[list[Any]] = []
    for _ in range(max_rounds):
        assert msg is not None
        transcript.append(decode_message(msg))
        msg, _, _ = side.reconcile(msg)
        if msg is None:
            break
        side = a if side is b else b
    else:
        raise AssertionError("reconciliation did not end")
    ai, bi = {i for _, i in a_items}, {i for _, i in b_items}
    assert a.have == ai - bi and a.need == bi - ai
    assert b.have == bi - ai and b.need == ai - bi
    return a, b, transcript


def _modes(transcript: list[list[Any]]) -> set[int]:
    return {mode for ranges in transcript for _, mode, _ in ranges}


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 20000), min_size=40, max_size=3000),
    st.sets(st.integers(30000, 31000), max_size=60),
    st.sets(st.integers(30000, 31000), max_size=60),
    st.sampled_from([5, 1000, 10**9]),
)
def test_near_equal_sets_learn_the_symmetric_difference(shared, only_a, only_b, spread) -> None:  # type: ignore[no-untyped-def]
    only_b -= only_a
    run([_item(n, spread) for n in shared | only_a], [_item(n, spread) for n in shared | only_b])


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 2000), max_size=500), st.sets(st.integers(0, 2000), max_size=500))
def test_any_two_sets_tiny_equal_or_disjoint(sa, sb) -> None:  # type: ignore[no-untyped-def]
    run([_item(n) for n in sa], [_item(n) for n in sb])
    run([_item(n) for n in sa], [_item(n) for n in sa])  # equal
    run([_item(n) for n in sa], [_item(n + 5000) for n in sb])  # disjoint


def test_the_usual_exchange_is_two_round_trips_with_one_sketch() -> None:
    base = [_item(n) for n in range(20000)]
    extra = [_item(n) for n in range(20000, 20010)]
    _, _, t = run(base + extra[:6], base + extra[6:])
    assert [[mode for _, mode, _ in r] for r in t] == [[COUNTED], [SKETCH], [DECODED], []]
    (_, _, (count, cells)), = t[1]
    assert count == 20004 and len(cells) == 3 * 40 * sketch_cells(2)


def test_equal_sets_cost_one_small_fingerprint() -> None:
    items = [_item(n) for n in range(5000)]
    a, b, t = run(items, items)
    assert len(t) == 2 and t[1] == [] and a.bytes_sent < 40 and b.bytes_sent < 10  # then "done"


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 120), st.integers(0, 10**6))
def test_decode_failures_fall_back(d, salt) -> None:  # type: ignore[no-untyped-def]
    """Sketches sized for one difference never decode d >= 2 by luck alone often: every
    failure is answered by a sketch at least twice as large, then a split; all converge."""
    base = [_item(salt + n) for n in range(3000)]
    only = [_item(salt + 10**7 + n) for n in range(2 * d)]
    orig = reconcile.sketch_cells
    reconcile.sketch_cells = lambda est: 1  # type: ignore[assignment]
    try:
        _, _, t = run(base + only[:d], base + only[d:])  # equal counts: no estimate either
    finally:
        reconcile.sketch_cells = orig  # type: ignore[assignment]
    sizes: dict[Any, list[int]] = {}
    lower: Any = (0, b"")
    for ranges in t:
        lower = (0, b"")
        for upper, mode, payload in ranges:
            if mode == SKETCH:
                sizes.setdefault((lower, upper), []).append(len(payload[1]))
            lower = upper
    assert sizes
    for seq in sizes.values():  # retries over one range at least double
        assert all(b >= 2 * a for a, b in zip(seq, seq[1:], strict=False)), seq


def test_balanced_disjoint_halves_fall_back_to_splits() -> None:
    a = [_item(n) for n in range(0, 6000, 2)]
    b = [_item(n) for n in range(1, 6000, 2)]
    ra, rb, t = run(a, b)
    assert SKETCH in _modes(t)
    assert max(len(reconcile.encode_message(r)) for r in t) <= 48 * 1024 + 200


@pytest.mark.parametrize("budget", [2048, 8192])
def test_small_budgets_keep_sketches_small(budget: int) -> None:
    base = [_item(n) for n in range(8000)]
    only = [_item(n) for n in range(10**6, 10**6 + 300)]
    _, _, t = run(base + only, base, budget=budget, max_rounds=2000)
    for ranges in t:
        for _, mode, payload in ranges:
            if mode == SKETCH:
                assert len(payload[1]) <= budget // 2
        assert len(reconcile.encode_message(ranges)) <= budget + 200


def _rec_bytes(n: int, d: int) -> int:
    base = [_item(k) for k in range(n)]
    a, b, _ = run(base, base[: n - d])
    return a.bytes_sent + b.bytes_sent


@pytest.mark.parametrize("d", [1, 10, 50])
def test_bytes_grow_with_the_difference_not_the_set(d: int) -> None:
    small = _rec_bytes(2000, d)
    large = _rec_bytes(40000, d)
    # sketch cells (~1.5 per difference, 40 bytes) plus the decoded ids (34 bytes)
    assert large <= 1200 + 130 * d, (large, d)
    assert large <= small * 1.3 + 100, (small, large)


# -- hostile input ---------------------------------------------------------------------------------


def _msg(ranges: list[Any]) -> bytes:
    return msgpack.packb({"r": ranges}, use_bin_type=True)  # type: ignore[no-any-return]


ids = st.lists(st.binary(min_size=30, max_size=33), max_size=5)
payloads = st.one_of(
    st.none(), st.integers(-3, 2**64 - 1), st.booleans(), st.binary(max_size=250), ids,
    st.tuples(st.one_of(st.integers(-2, 2**54), st.booleans(), st.binary(max_size=20)),
              st.one_of(st.binary(max_size=480), st.integers(0, 3))).map(list),
    st.tuples(ids, ids).map(list),
    st.tuples(st.binary(min_size=15, max_size=17), st.integers(-1, 2**54)).map(list),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([COUNTED, SKETCH, DECODED]), payloads, st.integers(0, 80))
def test_malformed_sketch_messages_raise_rejected_only(mode, payload, n) -> None:  # type: ignore[no-untyped-def]
    r = Reconciler(sorted(_item(k) for k in range(n)))
    try:
        r.reconcile(_msg([[None, mode, payload]]))
    except Rejected as exc:
        assert exc.code


@settings(max_examples=60, deadline=None)
@given(st.integers(1, SKETCH_MAX_S), st.binary(min_size=40, max_size=40), st.integers(0, 2**53),
       st.integers(0, 300))
def test_well_formed_garbage_sketches_are_answered(s, cell, count, n) -> None:  # type: ignore[no-untyped-def]
    r = Reconciler(sorted(_item(k) for k in range(n)))
    reply, have, need = r.reconcile(_msg([[None, SKETCH, [count, cell * (3 * s)]]]))
    assert reply is not None
    decode_message(reply)
    assert len(reply) <= 64 * 1024


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([3, b""], "bad_sketch"),
        ([3, b"\x00" * 119], "bad_sketch"),
        ([3, b"\x00" * (120 * (SKETCH_MAX_S + 1))], "bad_sketch"),
        ([-1, b"\x00" * 120], "bad_range"),
        ([True, b"\x00" * 120], "bad_range"),
        ([2**53 + 1, b"\x00" * 120], "bad_range"),
        ([b"\x00" * 120], "bad_range"),
    ],
)
def test_bad_sketches_have_codes(payload: Any, code: str) -> None:
    with pytest.raises(Rejected) as exc:
        decode_message(_msg([[None, SKETCH, payload]]))
    assert exc.value.code == code


def test_bad_decoded_ranges_have_codes() -> None:
    x, y = hashlib.sha256(b"x").digest(), hashlib.sha256(b"y").digest()
    lo, hi = sorted([x, y])
    for payload in ([[hi, lo], []], [[x], [x]], [[x, x], []], [[x]], [[b"short"], []],
                    [[x] * 0, sorted(hashlib.sha256(k.to_bytes(2, "big")).digest() for k in range(800))]):
        with pytest.raises(Rejected):
            decode_message(_msg([[None, DECODED, payload]]))
    assert decode_message(_msg([[None, DECODED, [[lo, hi], []]]]))[0][1] == DECODED


def test_a_sketch_minus_another_peels_to_the_difference() -> None:
    a = [_item(k)[1] for k in range(100)]
    b = a[5:] + [_item(1000 + k)[1] for k in range(4)]
    s = sketch_cells(9)
    t = [int.from_bytes(x, "big") ^ int.from_bytes(y, "big")
         for x, y in zip(*(([c[k: k + 40] for k in range(0, len(c), 40)]) for c in (sketch(a, s), sketch(b, s))), strict=True)]
    got = reconcile._peel(t, s)
    assert got is not None and set(got) == set(a) ^ set(b)
