"""A second reconciler written from docs/protocol.md section 7 alone (plain msgpack,
no code shared with protocol/reconcile.py), run against the real one: if the page
is precise enough to reimplement, both sides end knowing the same difference."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from imier.protocol.reconcile import Reconciler

INF = None


def _below(item: tuple[int, bytes], bound: Any) -> bool:
    return bound is INF or (item[0], item[1]) < (bound[0], bound[1])


def _fp(ids: list[bytes]) -> bytes:
    total = sum(int.from_bytes(i, "little") for i in ids) % 2**256
    return hashlib.sha256(total.to_bytes(32, "little") + len(ids).to_bytes(8, "little")).digest()[:16]


def _sep(prev: tuple[int, bytes], nxt: tuple[int, bytes]) -> list[Any]:
    if prev[0] != nxt[0]:
        return [nxt[0], b""]
    k = next(k for k in range(32) if prev[1][k] != nxt[1][k])
    return [nxt[0], nxt[1][: k + 1]]


class SpecSide:
    def __init__(self, items: list[tuple[int, bytes]]) -> None:
        self.items = sorted(items)
        self.ids = {i for _, i in self.items}
        self.have: set[bytes] = set()
        self.need: set[bytes] = set()

    def _in(self, lower: Any, upper: Any) -> list[tuple[int, bytes]]:
        return [x for x in self.items if not _below(x, lower) and _below(x, upper)]

    def _split(self, mine: list[tuple[int, bytes]], upper: Any) -> list[list[Any]]:
        if len(mine) < 32:
            return [[upper, 2, [i for _, i in mine]]]
        n, out, start = len(mine), [], 0
        for b in range(16):
            end = start + n // 16 + (1 if b < n % 16 else 0)
            ub = upper if b == 15 else _sep(mine[end - 1], mine[end])
            out.append([ub, 1, _fp([i for _, i in mine[start:end]])])
            start = end
        return out

    def answer(self, msg: bytes) -> bytes | None:
        ranges = msgpack.unpackb(msg, raw=False)["r"]
        if not ranges:
            return None
        out: list[list[Any]] = []
        lower: Any = [0, b""]
        for upper, mode, payload in ranges:
            mine = self._in(lower, upper)
            mids = [i for _, i in mine]
            if mode == 0 or (mode == 1 and payload == _fp(mids)):
                out.append([upper, 0, None])
            elif mode == 1 or (mode == 2 and len(mine) > 128):
                out.extend(self._split(mine, upper))
            elif mode == 2:
                listed = set(payload)
                extra = [i for i in mids if i not in listed]
                bits = bytearray((len(payload) + 7) // 8)
                for k, t in enumerate(payload):
                    if t not in self.ids:
                        bits[k // 8] |= 1 << (k % 8)
                        self.need.add(t)
                self.have.update(extra)
                out.append([upper, 3, [extra, bytes(bits)]])
            else:  # a diff
                extra, bits = payload
                self.need.update(t for t in extra if t not in self.ids)
                self.have.update(i for k, i in enumerate(mids) if bits[k // 8] >> (k % 8) & 1)
                out.append([upper, 0, None])
            lower = [0, b""] if upper is INF else upper
        merged: list[list[Any]] = []
        for r in out:
            if merged and r[1] == 0 and merged[-1][1] == 0:
                merged[-1][0] = r[0]
            else:
                merged.append(r)
        if all(r[1] == 0 for r in merged):
            merged = []
        return msgpack.packb({"r": merged}, use_bin_type=True)  # type: ignore[no-any-return]


def _items(ns: set[int]) -> list[tuple[int, bytes]]:
    out = []
    for n in ns:
        h = hashlib.sha256(n.to_bytes(4, "big")).digest()
        out.append((h[0] % 7, h))  # few timestamps: bounds need id prefixes
    return out


@settings(max_examples=120, deadline=None)
@given(st.sets(st.integers(0, 2000), max_size=600), st.sets(st.integers(0, 2000), max_size=600),
       st.booleans())
def test_the_spec_side_and_the_real_side_agree(sa, sb, spec_starts) -> None:  # type: ignore[no-untyped-def]
    real, spec = Reconciler(sorted(_items(sa))), SpecSide(_items(sb))
    a_ids, b_ids = {i for _, i in _items(sa)}, {i for _, i in _items(sb)}
    if spec_starts:  # the spec side opens with one fingerprint (or its ids if few)
        mine = spec.items
        first = ([[INF, 2, [i for _, i in mine]]] if len(mine) < 32
                 else [[INF, 1, _fp([i for _, i in mine])]])
        msg: bytes | None = msgpack.packb({"r": first}, use_bin_type=True)
        turn = "real"
    else:
        msg, turn = real.initiate(), "spec"
    for _ in range(200):
        assert msg is not None
        if turn == "spec":
            msg = spec.answer(msg)
            if msg is None:
                break
            turn = "real"
        else:
            msg, _, _ = real.reconcile(msg)
            if msg is None:
                break
            turn = "spec"
    assert real.have == a_ids - b_ids and real.need == b_ids - a_ids
    assert spec.have == b_ids - a_ids and spec.need == a_ids - b_ids
