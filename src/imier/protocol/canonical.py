"""Canonical msgpack: one byte string per value, and nothing else accepted.

Rules (docs/protocol.md, "Canonical encoding"):

1. Only nil, bool, int (-2**63 .. 2**64-1), str (UTF-8), bin, array and map
   with str keys. No floats, no ext types.
2. Every value uses the shortest msgpack form (msgpack-python's packer does
   this for ints, strs, bins, arrays and maps).
3. Map keys are sorted by their UTF-8 bytes; no duplicate keys.
4. Decoding re-encodes the value and requires the same bytes; any other
   encoding of the same value is refused, so one value has one id.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import Rejected

__all__ = ["pack", "pack_canonical", "canonicalize", "unpack", "MAX_DEPTH"]

MAX_DEPTH = 6


_SCALARS = (type(None), bool, int, str, bytes)
_SCALAR_TYPES = frozenset(_SCALARS)


def _canon(value: Any, depth: int = 0) -> Any:
    # Exact-type checks first, and no call per scalar: this runs for every
    # event decoded (docs/performance.md); subclasses take the isinstance path.
    if depth > MAX_DEPTH:
        raise Rejected("too_deep", f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t in _SCALAR_TYPES:
        return value
    d = depth + 1
    if t is dict or isinstance(value, dict):
        try:
            keys = sorted(value, key=str.encode)
        except TypeError:
            raise Rejected("bad_key", "map keys must be strings") from None
        if d > MAX_DEPTH:
            return {k: _canon(value[k], d) for k in keys}
        out = {}
        for k in keys:
            v = value[k]
            out[k] = v if type(v) in _SCALAR_TYPES else _canon(v, d)
        return out
    if t is list or t is tuple or isinstance(value, (list, tuple)):
        if d <= MAX_DEPTH:
            return [v if type(v) in _SCALAR_TYPES else _canon(v, d) for v in value]
        return [_canon(v, d) for v in value]
    if isinstance(value, _SCALARS):
        return value
    raise Rejected("bad_type", f"type {type(value).__name__} cannot be encoded")


def canonicalize(value: Any) -> Any:
    """``value`` with every map's keys in canonical order, lists for tuples;
    :class:`Rejected` if it cannot be encoded. ``pack(v) == pack_canonical(canonicalize(v))``."""
    return _canon(value)


def pack(value: Any) -> bytes:
    """Encode ``value`` canonically."""
    return msgpack.packb(_canon(value), use_bin_type=True)  # type: ignore[no-any-return]


def pack_canonical(value: Any) -> bytes:
    """Encode a value :func:`canonicalize` returned, without walking it again."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _check_types(value: Any, depth: int = 0) -> None:
    # Only what msgpack.unpackb(raw=False, strict_map_key=True) can return
    # reaches here: exact types, so type() lookups suffice.
    if depth > MAX_DEPTH:
        raise Rejected("too_deep", f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t in _SCALAR_TYPES:
        return
    if t is dict:
        d = depth + 1
        for k, v in value.items():
            if type(k) is not str and not isinstance(k, str):
                raise Rejected("bad_key", "map keys must be strings")
            if type(v) not in _SCALAR_TYPES or d > MAX_DEPTH:
                _check_types(v, d)
    elif t is list:
        d = depth + 1
        for v in value:
            if type(v) not in _SCALAR_TYPES or d > MAX_DEPTH:
                _check_types(v, d)
    elif t is float or isinstance(value, float):
        raise Rejected("bad_type", "floating point values are not allowed")
    elif isinstance(value, list):
        for v in value:
            _check_types(v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise Rejected("bad_key", "map keys must be strings")
            _check_types(v, depth + 1)
    elif not isinstance(value, _SCALARS):
        raise Rejected("bad_type", f"type {type(value).__name__} is not allowed")


def unpack(data: bytes, *, max_size: int, check_canonical: bool = True, check_types: bool = True) -> Any:
    """Decode one canonical msgpack value of at most ``max_size`` bytes.

    ``check_types=False`` is for a caller that validates every field itself
    and then requires the bytes to re-encode exactly from those validated
    fields (events.decode_event): no disallowed type can survive that.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise Rejected("bad_type", "expected bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise Rejected("too_large", f"{len(data)} bytes, limit is {max_size}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=4096,
            max_map_len=64,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise Rejected("trailing_bytes", "bytes after the end of the value") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise Rejected("malformed", f"not valid msgpack ({type(exc).__name__})") from None
    if check_types or check_canonical:
        _check_types(value)
    if check_canonical and pack(value) != data:
        raise Rejected("not_canonical", "not in canonical msgpack form")
    return value
