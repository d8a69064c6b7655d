"""Range-based set reconciliation over ``(timestamp, id)`` items (Negentropy-style).

Pure: bytes in, bytes out, no I/O, no clock. Two :class:`Reconciler` objects,
each over its own sorted item set, exchange messages until both know the
symmetric difference: ``have`` (ids I hold that the peer lacks) and ``need``
(ids the peer holds that I lack). Traffic grows with the difference and the
logarithm of the set size, not with the set size (docs/protocol.md, "Sync").

Invariants:

1. A message is a list of ranges ``[upper, mode, payload]`` that together
   cover ``[(0, b""), +inf)`` in strictly increasing order: each range's
   lower bound is the previous range's upper bound, the last upper is
   ``nil`` (infinity). An empty list means "I have nothing more to say".
2. Modes: ``0`` skip (agreed), ``1`` fingerprint (16 bytes over the sender's
   items in the range), ``2`` id list (every id the sender holds in the
   range), ``3`` diff (the answer to an id list: the ids the answerer holds
   in the range that were not listed, and a bitfield over the listed ids
   that the answerer lacks), ``4`` counted fingerprint (fingerprint and
   item count), ``5`` sketch (an invertible Bloom lookup table over the
   sender's ids in the range, and its item count), ``6`` decoded (the answer
   to a sketch that decoded: the ids the answerer holds that the sender
   lacks, and the ids the sender holds that the answerer lacks).
3. A fingerprint mismatch is answered by an id list when the answerer holds
   fewer than ``ID_LIST_MAX`` items in the range, else by a sketch sized
   from the difference of the two counts when it fits (``sketch_cells``),
   else by ``BUCKETS`` counted sub-ranges. A sketch is answered by a
   ``decoded`` when the answerer's own sketch subtracted from it peels to
   nothing, else like a mismatch but with a sketch at least twice as large.
   An id list is answered by a diff when the answerer holds at most
   ``DIFF_MAX`` items in the range, else by a split. Every answer is over a
   strictly smaller part of the item space, or is a strictly larger sketch
   (bounded by ``SKETCH_MAX_S``), so the exchange ends.
4. An outgoing message stays under ``frame_budget`` bytes: once the budget
   is used, the rest of the space is sent as one counted fingerprint, to be
   reconciled in later rounds.
5. The item set must not change during a session (callers take a snapshot).
6. Everything received is validated; bad input raises :class:`Rejected`
   with a code, never anything else.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import canonical
from .errors import Rejected
from .limits import ID_LEN, MAX_TS

__all__ = [
    "BUCKETS",
    "COUNTED",
    "DECODED",
    "DIFF",
    "DIFF_MAX",
    "FINGERPRINT",
    "FRAME_BUDGET",
    "ID_LIST",
    "ID_LIST_MAX",
    "MAX_MESSAGE_BYTES",
    "SKETCH",
    "SKETCH_MAX_S",
    "SKIP",
    "Reconciler",
    "fingerprint",
    "sketch",
    "sketch_cells",
]

SKIP, FINGERPRINT, ID_LIST, DIFF, COUNTED, SKETCH, DECODED = 0, 1, 2, 3, 4, 5, 6
_ASKS = (FINGERPRINT, COUNTED, SKETCH, ID_LIST)  # modes that want an answer (not SKIP, DIFF, DECODED)
BUCKETS = 16
_SPLIT_COST = 5 * BUCKETS  # a split: a fingerprint, a bound and a range for each bucket
ID_LIST_MAX = 2 * BUCKETS  # a mismatched range with fewer items is sent as ids
DIFF_MAX = 128  # an id list is answered by a diff when we hold at most this many there
FP_LEN = 16
FRAME_BUDGET = 48 * 1024
MAX_MESSAGE_BYTES = 64 * 1024  # what we accept from a peer
MAX_RANGES = 4000
MAX_COUNT = 1 << 53  # an item count in a counted fingerprint or a sketch
# Sketches: 3 sub-tables of s cells; a cell is 32 bytes of xored ids then 8
# bytes of xored checks (docs/protocol.md, section 7).
CELL_LEN = 40
SKETCH_MAX_S = 256  # at most 768 cells (30,720 bytes) in a sketch we accept
SKETCH_MAX_ITEMS = 1 << 17  # larger ranges are split rather than sketched
_SKETCH_TAG = b"imier/sketch/1\x00"
_MASK64 = (1 << 64) - 1
_MOD = 1 << 256

Item = tuple[int, bytes]
Bound = tuple[int, bytes]  # (ts, id prefix); ts > MAX_TS means +inf
_ZERO: Bound = (0, b"")
_INF: Bound = (MAX_TS + 1, b"")


def fingerprint(ids_sum: int, count: int) -> bytes:
    """16 bytes: sha256 of (sum of ids as little-endian integers mod 2^256) || count."""
    return hashlib.sha256(
        (ids_sum % _MOD).to_bytes(32, "little") + count.to_bytes(8, "little")
    ).digest()[:FP_LEN]


def sketch_cells(est: int) -> int:
    """Sub-table size ``s`` (the sketch has ``3 s`` cells) for an expected difference of ``est``.

    About 1.5 cells per difference plus 18, which decodes >= 95% of the time.
    """
    return max(1, -(-(3 * est + 36) // 6))


_SKETCH_BASE = hashlib.sha256(_SKETCH_TAG)  # copied per id: the tag is hashed once
_WORDS = struct.Struct("<QQQ")


def _hash(i: bytes) -> tuple[int, int, int, int]:
    """The id's three 64-bit position words and its 8-byte check, from sha256(tag || id)."""
    h = _SKETCH_BASE.copy()
    h.update(i)
    d = h.digest()
    p0, p1, p2 = _WORDS.unpack_from(d)
    return p0, p1, p2, int.from_bytes(d[24:32], "big")


def _cells(ids: Sequence[bytes], s: int) -> list[int]:
    """The sketch as 3 s integers: a cell's 40 bytes (xor of ids || xor of checks), big-endian.

    The hot loop of answering a sketch (every id of the range, every time), so
    :func:`_hash` is inlined: the same words, about half the time.
    """
    t = [0] * (3 * s)
    s2 = 2 * s
    base, unpack, frm = _SKETCH_BASE, _WORDS.unpack_from, int.from_bytes
    for i in ids:
        h = base.copy()
        h.update(i)
        d = h.digest()
        p0, p1, p2 = unpack(d)
        v = frm(i + d[24:32], "big")  # id << 64 | check
        t[p0 % s] ^= v
        t[s + p1 % s] ^= v
        t[s2 + p2 % s] ^= v
    return t


def sketch(ids: Sequence[bytes], s: int) -> bytes:
    """The wire form of the sketch over ``ids`` with sub-tables of ``s`` cells."""
    return b"".join(v.to_bytes(CELL_LEN, "big") for v in _cells(ids, s))


def _peel(t: list[int], s: int) -> list[bytes] | None:
    """The ids of a subtracted sketch, or None when it does not decode completely."""
    m = 3 * s
    out: list[bytes] = []
    stack = [c for c in range(m) if t[c]]
    while stack:  # each pass pops one; at most m ids are peeled, each pushing 3
        c = stack.pop()
        x = t[c]
        if not x:
            continue
        i = (x >> 64).to_bytes(32, "big")
        p0, p1, p2, chk = _hash(i)
        if chk != x & _MASK64:
            continue
        cells = (p0 % s, s + p1 % s, 2 * s + p2 % s)
        if c not in cells:
            continue
        for p in cells:
            t[p] ^= x
            if t[p]:
                stack.append(p)
        out.append(i)
        if len(out) > m:
            return None
    if any(t):
        return None
    return out


def _min_bound(prev: Item, cur: Item) -> Bound:
    """The shortest bound b with prev < b <= cur."""
    if prev[0] != cur[0]:
        return (cur[0], b"")
    a, b = prev[1], cur[1]
    k = 0
    while k < len(a) and a[k] == b[k]:
        k += 1
    return (cur[0], b[: k + 1])


@dataclass
class Reconciler:
    """One side of a reconciliation. ``items`` must be sorted, unique ``(ts, id)``."""

    items: Sequence[Item]
    frame_budget: int = FRAME_BUDGET
    have: set[bytes] = field(default_factory=set)
    need: set[bytes] = field(default_factory=set)
    bytes_sent: int = 0
    bytes_received: int = 0
    rounds: int = 0
    done: bool = False

    def __post_init__(self) -> None:
        self.items = list(self.items)
        self._ids = {i for _, i in self.items}
        # prefix sums of ids (mod 2^256) make any range's fingerprint O(1).
        self._psum = [0]
        acc = 0
        for _, i in self.items:
            acc = (acc + int.from_bytes(i, "little")) % _MOD
            self._psum.append(acc)

    # -- positions --------------------------------------------------------------

    def _index(self, bound: Bound) -> int:
        """Index of the first item >= bound."""
        return bisect.bisect_left(self.items, bound)

    def _fp(self, lo: int, hi: int) -> bytes:
        return fingerprint(self._psum[hi] - self._psum[lo], hi - lo)

    # -- the two calls ------------------------------------------------------------

    def initiate(self) -> bytes:
        """The first message: our ids if few, else one fingerprint of everything.

        Equal sets (the steady state of periodic syncs) then cost two short
        messages; a mismatch is split by the peer, at the cost of half a round trip.
        """
        n = len(self.items)
        if n < ID_LIST_MAX:
            return self._emit([(_INF, ID_LIST, [i for _, i in self.items])])
        return self._emit([(_INF, COUNTED, [self._fp(0, n), n])])

    def reconcile(self, msg: bytes) -> tuple[bytes | None, list[bytes], list[bytes]]:
        """Take the peer's message; return ``(reply, new have ids, new need ids)``.

        ``reply`` is ``None`` when the peer said it was done; an empty-range
        reply (``done`` set) tells the peer we are.
        """
        self.bytes_received += len(msg)
        ranges = decode_message(msg)
        if not ranges:
            self.done = True
            return None, [], []
        self.rounds += 1
        have: list[bytes] = []
        need: list[bytes] = []
        out = _Out(self.frame_budget)
        lower = _ZERO
        for upper, mode, payload in ranges:
            if out.overflow_from is not None and mode in _ASKS:
                lower = upper  # its answer would be dropped: the closing fingerprint covers it
                continue
            lo, hi = self._index(lower), self._index(upper)
            if mode == SKIP:
                out.skip(upper)
            elif mode == FINGERPRINT:
                if payload == self._fp(lo, hi):
                    out.skip(upper)
                else:
                    self._mismatch(out, upper, lo, hi, 0, 0)
            elif mode == COUNTED:
                if payload[0] == self._fp(lo, hi) and payload[1] == hi - lo:
                    out.skip(upper)
                else:
                    self._mismatch(out, upper, lo, hi, abs(payload[1] - (hi - lo)), 0)
            elif mode == SKETCH:
                count, cells = payload
                s = len(cells) // (3 * CELL_LEN)
                decoded = self._decode(lo, hi, cells, s)
                if decoded is None:
                    self._mismatch(out, upper, lo, hi, abs(count - (hi - lo)), 2 * s)
                else:
                    mine_only, theirs_only = decoded
                    if out.add(upper, DECODED, [mine_only, theirs_only]):
                        have.extend(mine_only)
                        need.extend(theirs_only)
            elif mode == DECODED:
                theirs_only, mine_only = payload
                in_range = {i for _, i in self.items[lo:hi]}
                have.extend(i for i in mine_only if i in in_range)
                need.extend(i for i in theirs_only if i not in self._ids)
                out.skip(upper)
            elif mode == ID_LIST:
                theirs: list[bytes] = payload
                if hi - lo > DIFF_MAX:
                    self._split(out, upper, lo, hi)
                else:
                    mine = [i for _, i in self.items[lo:hi]]
                    tset = set(theirs)
                    extra = [i for i in mine if i not in tset]
                    bits = bytearray((len(theirs) + 7) // 8)
                    for n, t in enumerate(theirs):
                        if t not in self._ids:
                            bits[n // 8] |= 1 << (n % 8)
                    if out.fits_diff(upper, len(extra), len(bits)):
                        out.add(upper, DIFF, [extra, bytes(bits)])
                        have.extend(extra)
                        need.extend(t for t in theirs if t not in self._ids)
                    else:
                        out.overflow()
            elif mode == DIFF:
                extra, bits = payload
                mine = [i for _, i in self.items[lo:hi]]
                if len(bits) != (len(mine) + 7) // 8:
                    raise Rejected("bad_bitfield", "diff bitfield does not match our id list")
                for n, i in enumerate(mine):
                    if bits[n // 8] >> (n % 8) & 1:
                        have.append(i)
                for t in extra:
                    if t not in self._ids:
                        need.append(t)
                out.skip(upper)
            lower = upper
        if out.overflow_from is not None:
            lo = self._index(out.overflow_from)
            n = len(self.items)
            out.ranges.append((_INF, COUNTED, [self._fp(lo, n), n - lo]))
        have = [i for i in dict.fromkeys(have) if i not in self.have]
        need = [i for i in dict.fromkeys(need) if i not in self.need]
        self.have.update(have)
        self.need.update(need)
        if all(mode == SKIP for _, mode, _ in out.ranges):
            self.done = True
            return self._emit([]), have, need
        return self._emit(out.ranges), have, need

    def cost(self, msg: bytes) -> int:
        """An upper bound of the work :meth:`reconcile` would do for ``msg``, before doing it.

        The unit is one id hashed into a sketch (about a microsecond). The
        branches mirror :meth:`reconcile`: a fingerprint or counted range that
        could mismatch into a sketch costs its items, one that could only be
        split costs ``BUCKETS`` fingerprints and bounds (5 units each), a sketch costs its items to
        decode and again to answer with a larger one, id lists and answers cost
        a set operation per id (an eighth of a unit). Every range costs 4 more
        (decoding, bisecting, encoding its answer) and the message a unit per 32
        bytes (decoding and the canonical check). Raises :class:`Rejected` for a message that does not decode,
        as :meth:`reconcile` would.
        """
        ranges = decode_message(msg)
        units = len(msg) // 32 + 1
        lower = _ZERO
        for upper, mode, payload in ranges:
            units += 4  # decoding and checking it, two bisections, its answer's encoding
            if mode == SKIP:
                lower = upper
                continue
            lo, hi = self._index(lower), self._index(upper)
            n = hi - lo
            if mode == FINGERPRINT:
                units += 1 + self._mismatch_cost(n, 0, 0)
            elif mode == COUNTED:
                units += 1 + self._mismatch_cost(n, abs(payload[1] - n), 0)
            elif mode == SKETCH:
                s = len(payload[1]) // (3 * CELL_LEN)
                decode = n + 6 * s if n <= SKETCH_MAX_ITEMS else 0
                units += decode + self._mismatch_cost(n, abs(payload[0] - n), 2 * s)
            elif mode == DECODED:
                units += (n + len(payload[0]) + len(payload[1])) // 8 + 1
            elif mode == ID_LIST:
                units += _SPLIT_COST if n > DIFF_MAX else (n + 2 * len(payload)) // 8 + 1
            elif mode == DIFF:
                units += (n + len(payload[0])) // 8 + 1
            lower = upper
        return units + 1  # the closing fingerprint

    # -- helpers ------------------------------------------------------------------

    def _mismatch_cost(self, n: int, est: int, min_s: int) -> int:
        """What :meth:`_mismatch` may cost over ``n`` items (see :meth:`cost`)."""
        if ID_LIST_MAX <= n <= SKETCH_MAX_ITEMS:
            s = max(min_s, sketch_cells(est))
            if s <= self._max_s():
                return n + 3 * s
        if n < ID_LIST_MAX:
            return n // 8 + 1
        return _SPLIT_COST


    def _mismatch(self, out: _Out, upper: Bound, lo: int, hi: int, est: int, min_s: int) -> None:
        """Answer a range whose contents differ: ids if few, a sketch if it fits, else a split."""
        n = hi - lo
        if n >= ID_LIST_MAX and n <= SKETCH_MAX_ITEMS:
            s = max(min_s, sketch_cells(est))
            if s <= self._max_s():
                out.add(upper, SKETCH, [n, sketch([i for _, i in self.items[lo:hi]], s)])
                return
        self._split(out, upper, lo, hi)

    def _max_s(self) -> int:
        """The largest sketch we send: at most SKETCH_MAX_S, and half the frame budget."""
        return min(SKETCH_MAX_S, self.frame_budget // (2 * 3 * CELL_LEN))

    def _decode(self, lo: int, hi: int, cells: bytes, s: int) -> tuple[list[bytes], list[bytes]] | None:
        """``(mine only, theirs only)`` from the peer's sketch over this range, or None."""
        if hi - lo > SKETCH_MAX_ITEMS:
            return None
        mine = [i for _, i in self.items[lo:hi]]
        t = _cells(mine, s)
        for c in range(3 * s):
            t[c] ^= int.from_bytes(cells[c * CELL_LEN : (c + 1) * CELL_LEN], "big")
        ids = _peel(t, s)
        if ids is None:
            return None
        in_range = set(mine)
        mine_only = sorted(i for i in ids if i in in_range)
        theirs_only = sorted(i for i in ids if i not in in_range)
        if any(i in self._ids for i in theirs_only):
            return None  # an id we hold outside the range: not a decoding of this range
        return mine_only, theirs_only

    def _split(self, out: _Out, upper: Bound, lo: int, hi: int) -> None:
        n = hi - lo
        if n < ID_LIST_MAX:
            out.add(upper, ID_LIST, [i for _, i in self.items[lo:hi]])
            return
        per, rem = divmod(n, BUCKETS)
        start = lo
        for b in range(BUCKETS):
            end = start + per + (1 if b < rem else 0)
            if b == BUCKETS - 1:
                ub = upper
            else:
                ub = _min_bound(self.items[end - 1], self.items[end])
            out.add(ub, COUNTED, [self._fp(start, end), end - start])
            start = end

    def _emit(self, ranges: list[tuple[Bound, int, Any]]) -> bytes:
        raw = encode_message(ranges)
        self.bytes_sent += len(raw)
        return raw


class _Out:
    """An outgoing message under construction, with its byte budget (invariant 4)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.ranges: list[tuple[Bound, int, Any]] = []
        self.size = 8
        self.overflow_from: Bound | None = None
        self._last_upper: Bound = _ZERO

    def skip(self, upper: Bound) -> None:
        if self.overflow_from is not None:
            return
        if self.ranges and self.ranges[-1][1] == SKIP:
            self.ranges[-1] = (upper, SKIP, None)
        else:
            self.ranges.append((upper, SKIP, None))
            self.size += 16 + len(upper[1])
        self._last_upper = upper

    def fits_diff(self, upper: Bound, n_ids: int, n_bits: int) -> bool:
        cost = 24 + len(upper[1]) + 34 * n_ids + n_bits
        return self.overflow_from is None and self.size + cost <= self.budget

    def add(self, upper: Bound, mode: int, payload: Any) -> bool:
        """Append a range; False (and overflow) when the budget is used."""
        if self.overflow_from is not None:
            return False
        # An upper bound on the encoded size: 14 bytes of framing and ts, the
        # bound's prefix, then the payload (so a message never exceeds the budget
        # by more than the closing fingerprint).
        cost = 24 + len(upper[1])
        if mode == FINGERPRINT:
            cost += FP_LEN + 2
        elif mode == ID_LIST:
            cost += 34 * len(payload)
        elif mode == DIFF:
            cost += 34 * len(payload[0]) + len(payload[1])
        elif mode == COUNTED:
            cost += FP_LEN + 2 + 12
        elif mode == SKETCH:
            cost += 12 + 3 + len(payload[1])
        elif mode == DECODED:
            cost += 6 + 34 * (len(payload[0]) + len(payload[1]))
        if self.size + cost > self.budget and self.ranges:
            self.overflow()
            return False
        self.ranges.append((upper, mode, payload))
        self.size += cost
        self._last_upper = upper
        return True

    def overflow(self) -> None:
        """Stop here: the rest of the space goes as one fingerprint (see close)."""
        if self.overflow_from is None:
            self.overflow_from = self._last_upper


# -- wire form ----------------------------------------------------------------------


def _enc_bound(b: Bound) -> Any:
    return None if b[0] > MAX_TS else [b[0], b[1]]


def encode_message(ranges: list[tuple[Bound, int, Any]]) -> bytes:
    """``{"r": [[upper, mode, payload], ...]}`` in canonical msgpack."""
    out = []
    for upper, mode, payload in ranges:
        out.append([_enc_bound(upper), mode, payload])
    return canonical.pack({"r": out})


def _dec_bound(v: Any) -> Bound:
    if v is None:
        return _INF
    if (
        not isinstance(v, list)
        or len(v) != 2
        or not isinstance(v[0], int)
        or isinstance(v[0], bool)
        or not (0 <= v[0] <= MAX_TS)
        or not isinstance(v[1], bytes)
        or len(v[1]) > ID_LEN
    ):
        raise Rejected("bad_bound", "a range bound is [ts, id prefix] or nil", field="r")
    return (v[0], v[1])


def _ids(v: Any, limit: int) -> list[bytes]:
    if not isinstance(v, list) or len(v) > limit:
        raise Rejected("bad_ids", f"an id list is a list of at most {limit} ids", field="r")
    for i in v:
        if not isinstance(i, bytes) or len(i) != ID_LEN:
            raise Rejected("bad_ids", "ids are 32 bytes", field="r")
    return v


def _count(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not (0 <= v <= MAX_COUNT):
        raise Rejected("bad_range", "an item count is an int 0 .. 2^53", field="r")
    return v


def decode_message(msg: bytes) -> list[tuple[Bound, int, Any]]:
    """Validate a reconciliation message (invariants 1-2) and return its ranges."""
    value = canonical.unpack(msg, max_size=MAX_MESSAGE_BYTES)
    if not isinstance(value, dict) or set(value) != {"r"} or not isinstance(value["r"], list):
        raise Rejected("bad_message", "a reconciliation message is {\"r\": [...]}", field="r")
    raw_ranges = value["r"]
    if len(raw_ranges) > MAX_RANGES:
        raise Rejected("too_many_ranges", f"more than {MAX_RANGES} ranges", field="r")
    ranges: list[tuple[Bound, int, Any]] = []
    prev = _ZERO
    for n, r in enumerate(raw_ranges):
        if not isinstance(r, list) or len(r) != 3:
            raise Rejected("bad_range", "a range is [upper, mode, payload]", field=f"r[{n}]")
        upper = _dec_bound(r[0])
        if upper <= prev:
            raise Rejected("bad_order", "range bounds must increase", field=f"r[{n}]")
        mode, payload = r[1], r[2]
        if mode == SKIP:
            if payload is not None:
                raise Rejected("bad_range", "a skip carries nil", field=f"r[{n}]")
        elif mode == FINGERPRINT:
            if not isinstance(payload, bytes) or len(payload) != FP_LEN:
                raise Rejected("bad_range", f"a fingerprint is {FP_LEN} bytes", field=f"r[{n}]")
        elif mode == ID_LIST:
            payload = _ids(payload, ID_LIST_MAX)
            if len(payload) != len(set(payload)):
                raise Rejected("bad_ids", "ids in a list are unique", field=f"r[{n}]")
        elif mode == DIFF:
            if not isinstance(payload, list) or len(payload) != 2:
                raise Rejected("bad_range", "a diff is [ids, bitfield]", field=f"r[{n}]")
            extra = _ids(payload[0], DIFF_MAX)
            bits = payload[1]
            if not isinstance(bits, bytes) or len(bits) > (ID_LIST_MAX + 7) // 8:
                raise Rejected("bad_bitfield", "bad diff bitfield", field=f"r[{n}]")
            payload = (extra, bits)
        elif mode == COUNTED:
            if (
                not isinstance(payload, list)
                or len(payload) != 2
                or not isinstance(payload[0], bytes)
                or len(payload[0]) != FP_LEN
            ):
                raise Rejected("bad_range", "a counted fingerprint is [bin 16, count]", field=f"r[{n}]")
            payload = (payload[0], _count(payload[1]))
        elif mode == SKETCH:
            if not isinstance(payload, list) or len(payload) != 2:
                raise Rejected("bad_range", "a sketch is [count, cells]", field=f"r[{n}]")
            count, cells = _count(payload[0]), payload[1]
            if (
                not isinstance(cells, bytes)
                or len(cells) == 0
                or len(cells) % (3 * CELL_LEN)
                or len(cells) > SKETCH_MAX_S * 3 * CELL_LEN
            ):
                raise Rejected("bad_sketch", "sketch cells are 3 s x 40 bytes, 1 <= s <= 256",
                               field=f"r[{n}]")
            payload = (count, cells)
        elif mode == DECODED:
            if not isinstance(payload, list) or len(payload) != 2:
                raise Rejected("bad_range", "a decoded range is [ids, ids]", field=f"r[{n}]")
            a = _ids(payload[0], 3 * SKETCH_MAX_S)
            b = _ids(payload[1], 3 * SKETCH_MAX_S)
            if (
                len(a) + len(b) > 3 * SKETCH_MAX_S
                or any(x >= y for x, y in zip(a, a[1:], strict=False))
                or any(x >= y for x, y in zip(b, b[1:], strict=False))
                or not set(a).isdisjoint(b)
            ):
                raise Rejected("bad_ids", "decoded ids: two increasing, disjoint lists, at most 768",
                               field=f"r[{n}]")
            payload = (a, b)
        else:
            raise Rejected("bad_mode", f"unknown range mode {mode!r}", field=f"r[{n}]")
        ranges.append((upper, mode, payload))
        prev = upper
    if ranges and ranges[-1][0] != _INF:
        raise Rejected("bad_cover", "the last range must end at infinity (nil)", field="r")
    return ranges
