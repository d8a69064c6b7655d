"""Property tests of the pure set reconciliation (protocol/reconcile.py)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imier.protocol.errors import Rejected
from imier.protocol.reconcile import Reconciler, decode_message


def _item(n: int, ts_spread: int = 1000) -> tuple[int, bytes]:
    h = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return (int.from_bytes(h[:4], "big") % ts_spread, h)


def run(a_items, b_items, *, max_rounds: int = 200, budget: int | None = None):
    kw = {} if budget is None else {"frame_budget": budget}
    a = Reconciler(sorted(a_items), **kw)
    b = Reconciler(sorted(b_items), **kw)
    msg = a.initiate()
    side, other = b, a
    for _ in range(max_rounds):
        reply, _, _ = side.reconcile(msg)
        if reply is None:
            break
        msg = reply
        side, other = other, side
    else:
        raise AssertionError("reconciliation did not end")
    return a, b


def check(a_items, b_items, **kw):
    a, b = run(a_items, b_items, **kw)
    ai = {i for _, i in a_items}
    bi = {i for _, i in b_items}
    assert a.have == ai - bi
    assert a.need == bi - ai
    assert b.have == bi - ai
    assert b.need == ai - bi
    return a, b


@settings(max_examples=150, deadline=None)
@given(
    st.sets(st.integers(0, 3000), max_size=400),
    st.sets(st.integers(0, 3000), max_size=400),
    st.sampled_from([10, 1000, 10**9]),
)
def test_any_two_sets_learn_the_symmetric_difference(sa, sb, spread):
    check([_item(n, spread) for n in sa], [_item(n, spread) for n in sb])


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(0, 5000), min_size=500, max_size=2000), st.data())
def test_small_frame_budget_still_converges(shared, data):
    only_a = data.draw(st.sets(st.integers(6000, 9000), max_size=300))
    only_b = data.draw(st.sets(st.integers(6000, 9000), max_size=300)) - only_a
    a = [_item(n) for n in shared | only_a]
    b = [_item(n) for n in shared | only_b]
    ra, _rb = check(a, b, budget=2048)
    # every message stayed near the budget
    assert ra.bytes_sent <= (ra.rounds + 1) * 4096


def test_same_timestamps_everywhere():
    a = [(5, hashlib.sha256(bytes([i, j])).digest()) for i in range(40) for j in range(20)]
    b = a[: len(a) // 2] + [(5, hashlib.sha256(b"x" + bytes([i])).digest()) for i in range(7)]
    check(a, b)


def test_empty_sides():
    check([], [])
    check([_item(n) for n in range(1000)], [])
    check([], [_item(n) for n in range(1000)])


@pytest.mark.parametrize("n", [1000, 10000, 50000])
def test_bytes_grow_with_the_difference_not_the_history(n):
    rng = random.Random(n)
    base = [_item(i, 10**9) for i in range(n)]
    a = list(base)
    b = list(base)
    for k in range(5):
        a.append(_item(n + 10 + k, 10**9))
        b.append(_item(n + 100 + k, 10**9))
    rng.shuffle(a)
    ra, rb = check(a, b)
    total = ra.bytes_sent + rb.bytes_sent
    # ten differing events out of n: a few kilobytes, far below one id per item
    assert total < 20_000, total
    assert total < 32 * n / 4


def test_bytes_scale_logarithmically():
    sizes = {}
    for n in (1000, 30000):
        base = [_item(i, 10**9) for i in range(n)]
        a = base + [_item(n + 1, 10**9)]
        ra, rb = check(a, base)
        sizes[n] = ra.bytes_sent + rb.bytes_sent
    assert sizes[30000] < 3 * sizes[1000], sizes


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",
        b"\x80",  # {}
        b"\x81\xa1r\x91\x93\xc0\x09\xc0",  # unknown mode
        b"\x81\xa1r\x91\x93\x92\x05\xc4\x00\x00\xc0",  # last range not at infinity
        b"\x81\xa1r\x91\x93\xc0\x01\xc4\x03abc",  # short fingerprint
    ],
)
def test_bad_messages_are_rejected_with_a_code(raw):
    with pytest.raises(Rejected) as exc:
        decode_message(raw)
    assert exc.value.code


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_only_rejected_escapes(raw):
    r = Reconciler(sorted(_item(n) for n in range(100)))
    try:
        r.reconcile(raw)
    except Rejected:
        pass


def _exchange(a_items: set, b_items: set) -> tuple[set, set]:
    """One sync session between two pure nodes: reconcile, then each sends its have."""
    ra, rb = run(sorted(a_items), sorted(b_items))
    by_id = {i: (t, i) for t, i in a_items | b_items}
    a_new = a_items | {by_id[i] for i in ra.need}
    b_new = b_items | {by_id[i] for i in rb.need}
    assert {by_id[i] for i in ra.have} <= a_items and {by_id[i] for i in rb.have} <= b_items
    return a_new, b_new


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sets(st.integers(0, 400), max_size=120), min_size=3, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=0, max_size=12),
)
def test_nodes_wired_in_memory_converge_to_the_union(sets, extra_pairs):
    """Any schedule of pairwise sessions that connects the nodes (here: a ring
    pass plus random extra pairs) leaves every node with the union."""
    nodes = [{_item(n) for n in s} for s in sets]
    k = len(nodes)
    pairs = [(i, (i + 1) % k) for i in range(k)] * 2 + [(a % k, b % k) for a, b in extra_pairs]
    for a, b in pairs:
        if a != b:
            nodes[a], nodes[b] = _exchange(nodes[a], nodes[b])
    union = set().union(*nodes)
    assert all(n == union for n in nodes)


def test_messages_stay_under_the_limit_with_long_shared_prefixes():
    """Ids ground to share long prefixes at one timestamp make the longest bounds."""
    base = hashlib.sha256(b"p").digest()[:28]
    a = [(7, base + i.to_bytes(4, "big")) for i in range(0, 40000, 2)]
    b = [(7, base + i.to_bytes(4, "big")) for i in range(1, 40000, 2)]
    sizes: list[int] = []
    ra, rb = Reconciler(sorted(a)), Reconciler(sorted(b))
    msg = ra.initiate()
    side, other = rb, ra
    for _ in range(2000):
        sizes.append(len(msg))
        reply, _, _ = side.reconcile(msg)
        if reply is None:
            break
        msg = reply
        side, other = other, side
    assert max(sizes) <= 48 * 1024 + 200
    assert len(ra.have) == len(a) and len(rb.have) == len(b)
