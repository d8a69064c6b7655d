"""Reconciler.cost: the work a message asks of us, counted before doing it.

The daemon charges this to the peer's buckets before answering (nodeapp/sync.py,
bounds rule 6), so it must (1) never be less than what answering really does,
counted here as ids hashed into sketches and fingerprints computed, and (2)
leave an honest session, even a new node's first one over a large record,
inside the session and round budgets (bounds.session_work, round_work). The
first version of the count charged every range its items: a new node's first
sync of 200k events would have cost 57.6M units against a cap of 5.8M.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imier.nodeapp.bounds import round_work, session_work
from imier.protocol import reconcile as R
from imier.protocol.limits import MAX_TS
from imier.protocol.reconcile import (
    CELL_LEN,
    COUNTED,
    FINGERPRINT,
    ID_LIST,
    SKETCH,
    Reconciler,
    encode_message,
)


def _items(seed: int, n: int) -> list[tuple[int, bytes]]:
    rnd = random.Random(seed)
    return sorted((rnd.randrange(10**9), hashlib.sha256(f"{seed}/{k}".encode()).digest()) for k in range(n))


class _Meter:
    """Counts what Reconciler really does: ids hashed into sketches, fingerprints."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.units = 0
        cells, fp = R._cells, R.fingerprint

        def counted_cells(ids: Sequence[bytes], s: int) -> list[int]:
            self.units += len(ids)
            return cells(ids, s)

        def counted_fp(ids_sum: int, count: int) -> bytes:
            self.units += 1
            return fp(ids_sum, count)

        monkeypatch.setattr(R, "_cells", counted_cells)
        monkeypatch.setattr(R, "fingerprint", counted_fp)

    def answer(self, r: Reconciler, msg: bytes) -> tuple[int, int, Any]:
        before = self.units
        cost = r.cost(msg)
        out = r.reconcile(msg)
        return cost, self.units - before, out


def _session(meter: _Meter, mine: list[tuple[int, bytes]], theirs: list[tuple[int, bytes]]
             ) -> tuple[int, list[int], list[int]]:
    """A whole exchange; the peer (``theirs``) starts. Our costs and measured work, round by round."""
    me, peer = Reconciler(mine), Reconciler(theirs)
    msg = peer.initiate()
    costs: list[int] = []
    did: list[int] = []
    for _ in range(3000):
        cost, done, (reply, _, _) = meter.answer(me, msg)
        costs.append(cost)
        did.append(done)
        if reply is None or me.done:
            break
        msg, _, _ = peer.reconcile(reply)
        if msg is None or peer.done:
            break
    else:
        raise AssertionError("the exchange did not end")
    return len(costs), costs, did


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 3000), keep=st.integers(0, 100), extra=st.integers(0, 200), seed=st.integers(0, 10**6))
def test_the_cost_is_never_less_than_the_work_of_an_honest_round(n: int, keep: int, extra: int, seed: int) -> None:
    mine = _items(seed, n)
    rnd = random.Random(seed)
    theirs = sorted(rnd.sample(mine, n * keep // 100) + _items(seed + 1, extra))
    with pytest.MonkeyPatch.context() as mp:
        _, costs, did = _session(_Meter(mp), mine, theirs)
    assert all(d <= c for c, d in zip(costs, did, strict=True)), list(zip(costs, did, strict=True))
    assert all(c <= round_work(n) for c in costs)


def _random_message(rnd: random.Random, items: list[tuple[int, bytes]]) -> bytes:
    """Ranges an attacker might send: random bounds, modes and payloads (well formed)."""
    cuts = sorted({rnd.randrange(len(items)) for _ in range(rnd.randrange(1, 40))}) if items else []
    ranges: list[tuple[tuple[int, bytes], int, Any]] = []
    for c in cuts:
        ranges.append(((items[c][0], items[c][1][:4]), 0, None))
    ranges.append(((MAX_TS + 1, b""), 0, None))
    out = []
    for upper, _, _ in ranges:
        mode = rnd.choice([FINGERPRINT, COUNTED, SKETCH, ID_LIST, 0])
        if mode == FINGERPRINT:
            payload: Any = os.urandom(16)
        elif mode == COUNTED:
            payload = [os.urandom(16), rnd.randrange(0, 5000)]
        elif mode == SKETCH:
            s = rnd.choice([1, 6, 64, 256])
            payload = [rnd.randrange(0, 1 << 20), os.urandom(3 * s * CELL_LEN)]
        elif mode == ID_LIST:
            payload = [os.urandom(32) for _ in range(rnd.randrange(0, R.ID_LIST_MAX))]
        else:
            payload = None
        out.append((upper, mode, payload))
    msg = encode_message(out)
    return msg if len(msg) <= R.MAX_MESSAGE_BYTES else encode_message(out[-1:])  # its upper is +inf


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), seed=st.integers(0, 10**6))
def test_the_cost_is_never_less_than_the_work_of_a_hostile_message(n: int, seed: int) -> None:
    items = _items(seed, n)
    r = Reconciler(items)
    rnd = random.Random(seed)
    with pytest.MonkeyPatch.context() as mp:
        meter = _Meter(mp)
        for _ in range(3):  # replayed or fresh, each round is counted on its own
            msg = _random_message(rnd, items)
            cost, done, _ = meter.answer(r, msg)
            assert done <= cost


@pytest.mark.parametrize("have", [0.0, 0.5, 0.99])
def test_a_new_nodes_first_session_over_a_large_record_fits_its_budgets(monkeypatch: pytest.MonkeyPatch,
                                                                        have: float) -> None:
    """60,000 items (the old count failed from 50k on): the new node holds nothing,
    half, or all but the last 1%; this node answers. Every round within
    ``round_work``, the session well within ``session_work`` (at most half)."""
    meter = _Meter(monkeypatch)
    n = 60_000
    mine = _items(7, n)
    rounds, costs, did = _session(meter, mine, mine[: int(n * have)])
    assert rounds < 2000  # sync.MAX_ROUNDS
    assert max(costs) <= round_work(n)
    assert sum(costs) <= session_work(n) // 2, (sum(costs), session_work(n))
    assert sum(did) <= sum(costs)


def test_a_replayed_whole_range_sketch_costs_the_items_every_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the replay attacker of tests/integration/hostile_peer.py sends: the cost
    charged each round covers the sketch decode over every item."""
    meter = _Meter(monkeypatch)
    items = _items(3, 20_000)
    r = Reconciler(items)
    msg = encode_message([((MAX_TS + 1, b""), SKETCH, [1 << 20, os.urandom(3 * 256 * CELL_LEN)])])
    for _ in range(3):
        cost, done, _ = meter.answer(r, msg)
        assert done >= 20_000 and cost >= done
