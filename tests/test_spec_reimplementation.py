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
BUDGET = 48 * 1024
TAG = b"imier/sketch/1\x00"


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


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _where(i: bytes, s: int) -> tuple[list[int], bytes]:
    h = hashlib.sha256(TAG + i).digest()
    return [j * s + int.from_bytes(h[8 * j : 8 * j + 8], "little") % s for j in range(3)], h[24:32]


def _sketch(ids: list[bytes], s: int) -> list[bytes]:
    cells = [bytes(40)] * (3 * s)
    for i in ids:
        where, check = _where(i, s)
        for c in where:
            cells[c] = _xor(cells[c], i + check)
    return cells


def _peel(cells: list[bytes], s: int) -> list[bytes] | None:
    out: list[bytes] = []
    progress = True
    while progress:
        progress = False
        for c, cell in enumerate(cells):
            if cell == bytes(40):
                continue
            where, check = _where(cell[:32], s)
            if check != cell[32:] or c not in where:
                continue
            i = cell[:32]
            for p in where:
                cells[p] = _xor(cells[p], i + check)
            out.append(i)
            progress = True
    if any(c != bytes(40) for c in cells) or len(out) > 3 * s:
        return None
    return out


def _size(e: int) -> int:
    return max(1, -(-(3 * e + 36) // 6))


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
            part = [i for _, i in mine[start:end]]
            out.append([ub, 4, [_fp(part), len(part)]])
            start = end
        return out

    def _mismatch(self, mine: list[tuple[int, bytes]], upper: Any, e: int, m: int) -> list[list[Any]]:
        s = max(m, _size(e))
        if len(mine) >= 32 and len(mine) <= 131072 and s <= 204:
            return [[upper, 5, [len(mine), b"".join(_sketch([i for _, i in mine], s))]]]
        return self._split(mine, upper)

    def _range(self, lower: Any, upper: Any, mode: int, payload: Any) -> tuple[list[list[Any]], set[bytes], set[bytes]]:
        """The answer to one range, and the ids it makes have and need."""
        mine = self._in(lower, upper)
        mids = [i for _, i in mine]
        skip: list[list[Any]] = [[upper, 0, None]]
        if mode == 0:
            return skip, set(), set()
        if mode == 1:
            return (skip if payload == _fp(mids) else self._mismatch(mine, upper, 0, 0)), set(), set()
        if mode == 4:
            if payload == [_fp(mids), len(mids)]:
                return skip, set(), set()
            return self._mismatch(mine, upper, abs(payload[1] - len(mids)), 0), set(), set()
        if mode == 5:
            count, raw = payload
            s = len(raw) // 120
            cells = [_xor(a, raw[40 * c : 40 * c + 40]) for c, a in enumerate(_sketch(mids, s))]
            peeled = _peel(cells, s)
            if peeled is not None and not any(i in self.ids and i not in mids for i in peeled):
                mine_only = sorted(i for i in peeled if i in mids)
                theirs = sorted(i for i in peeled if i not in mids)
                return [[upper, 6, [mine_only, theirs]]], set(mine_only), set(theirs)
            return self._mismatch(mine, upper, abs(count - len(mids)), 2 * s), set(), set()
        if mode == 6:
            theirs, mine_only = payload
            return skip, {i for i in mine_only if i in mids}, {t for t in theirs if t not in self.ids}
        if mode == 2:
            if len(mine) > 128:
                return self._split(mine, upper), set(), set()
            listed = set(payload)
            extra = [i for i in mids if i not in listed]
            bits = bytearray((len(payload) + 7) // 8)
            for k, t in enumerate(payload):
                if t not in self.ids:
                    bits[k // 8] |= 1 << (k % 8)
            return [[upper, 3, [extra, bytes(bits)]]], set(extra), {t for t in payload if t not in self.ids}
        extra, bits = payload  # a diff
        return (skip, {i for k, i in enumerate(mids) if bits[k // 8] >> (k % 8) & 1},
                {t for t in extra if t not in self.ids})

    def answer(self, msg: bytes) -> bytes | None:
        ranges = msgpack.unpackb(msg, raw=False)["r"]
        if not ranges:
            return None
        out: list[list[Any]] = []
        size = 16
        lower: Any = [0, b""]
        for upper, mode, payload in ranges:
            part, have, need = self._range(lower, upper, mode, payload)
            cost = len(msgpack.packb(part, use_bin_type=True))
            if out and size + cost > BUDGET:  # the frame budget: the rest as one counted fingerprint
                rest = [i for _, i in self._in(lower, INF)]
                out.append([INF, 4, [_fp(rest), len(rest)]])
                break
            out.extend(part)
            size += cost
            self.have |= have
            self.need |= need
            lower = upper
        merged: list[list[Any]] = []
        for r in out:
            if merged and r[1] == 0 and merged[-1][1] == 0:
                merged[-1][0] = r[0]
            else:
                merged.append(r)
        if all(r[1] == 0 for r in merged):
            merged = []
        return msgpack.packb({"r": merged}, use_bin_type=True)  # type: ignore[no-any-return]

    def first(self, counted: bool) -> bytes:
        ids = [i for _, i in self.items]
        if len(ids) < 32:
            r: list[Any] = [INF, 2, ids]
        else:
            r = [INF, 4, [_fp(ids), len(ids)]] if counted else [INF, 1, _fp(ids)]
        return msgpack.packb({"r": [r]}, use_bin_type=True)  # type: ignore[no-any-return]


def _items(ns: set[int]) -> list[tuple[int, bytes]]:
    out = []
    for n in ns:
        h = hashlib.sha256(n.to_bytes(4, "big")).digest()
        out.append((h[0] % 7, h))  # few timestamps: bounds need id prefixes
    return out


def _run(sa: set[int], sb: set[int], opener: str) -> tuple[Reconciler, SpecSide]:
    real, spec = Reconciler(sorted(_items(sa))), SpecSide(_items(sb))
    msg: bytes | None
    if opener == "real":
        msg, turn = real.initiate(), "spec"
    else:  # the spec side opens with a counted or a plain fingerprint (or its ids if few)
        msg, turn = spec.first(opener == "spec-counted"), "real"
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
    else:
        raise AssertionError("reconciliation did not end")
    a_ids, b_ids = {i for _, i in _items(sa)}, {i for _, i in _items(sb)}
    assert real.have == a_ids - b_ids and real.need == b_ids - a_ids
    assert spec.have == b_ids - a_ids and spec.need == a_ids - b_ids
    return real, spec


OPENERS = st.sampled_from(["real", "spec-counted", "spec-plain"])


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 2000), max_size=600), st.sets(st.integers(0, 2000), max_size=600), OPENERS)
def test_the_spec_side_and_the_real_side_agree(sa, sb, opener) -> None:  # type: ignore[no-untyped-def]
    _run(sa, sb, opener)


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(0, 3000), min_size=200, max_size=800), st.data(), OPENERS)
def test_the_spec_side_and_the_real_side_agree_on_near_equal_sets(shared, data, opener) -> None:  # type: ignore[no-untyped-def]
    """The sketch path: few differences among many items, both directions."""
    only_a = data.draw(st.sets(st.integers(4000, 4100), max_size=40))
    only_b = data.draw(st.sets(st.integers(4000, 4100), max_size=40)) - only_a
    _run(shared | only_a, shared | only_b, opener)


def test_the_spec_sketch_matches_the_vectors() -> None:
    import json
    from pathlib import Path

    v = json.loads((Path(__file__).resolve().parent.parent / "docs" / "protocol-vectors.json").read_text())
    ids = [bytes.fromhex(i) for i in v["sketch"]["ids"]]
    assert b"".join(_sketch(ids, v["sketch"]["s"])).hex() == v["sketch"]["cells"]
