"""Turning what a person types into ids: bodies, events, keys and scopes.

A reference is either exact bytes (a caller that already holds the id, like
the page) or the text a person typed: a full id, a unique id prefix of at
least 4 hex digits, or a name known to this node. Every miss is one
:class:`~imier.protocol.errors.Rejected` naming the field, never a traceback
(64 characters that are not hex are "not an id", not ``bytes.fromhex``'s error).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..protocol.errors import Rejected
from ..protocol.events import FEDERATION_KINDS, Event, Found
from ..store.db import Store

__all__ = ["Ref", "is_hex", "body", "event", "key", "scope", "short"]

#: An id as bytes, or the text a person typed.
Ref = bytes | str

_HEX = frozenset("0123456789abcdef")


def is_hex(t: str) -> bool:
    return bool(t) and all(c in _HEX for c in t)


def short(b: bytes) -> str:
    return b.hex()[:12]


def body(store: Store, ref: Ref, *, field: str = "body") -> Event:
    """A body's founding event, by full id, unique id prefix or name."""
    bodies = store.bodies()
    if isinstance(ref, bytes):
        for b in bodies:
            if b.id == ref:
                return b
        raise Rejected("unknown_body", f"no body {short(ref)} on this node", field=field,
                       hint="'imier body list' shows the bodies held here; sync or import to get others")
    t = ref.strip().lower()
    by_id = [b for b in bodies if b.id.hex().startswith(t)] if is_hex(t) else []
    if len(by_id) == 1:
        return by_id[0]
    by_name = [b for b in bodies if isinstance(b.data, Found) and b.data.name.lower() == t]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_id) > 1 or len(by_name) > 1:
        raise Rejected("ambiguous", f"{ref!r} names several bodies", field=field,
                       hint="use more of the id ('imier body list')")
    raise Rejected("unknown_body", f"no body {ref!r} on this node", field=field,
                   hint="'imier body list' shows the bodies held here; sync or import to get others")


def event(store: Store, ref: Ref, *, kinds: Sequence[str], what: str, field: str = "id") -> Event:
    """An accepted event of one of ``kinds`` by full id or unique prefix (4+ hex digits)."""
    if isinstance(ref, bytes):
        ev = store.get(ref)
        if ev is None or ev.kind not in kinds or store.state(ref) != 1:
            raise Rejected("unknown_event", f"no {what} {short(ref)} on this node", field=field,
                           hint="'imier status' lists the proposals held here")
        return ev
    t = ref.strip().lower()
    if not is_hex(t) or len(t) < 4:
        raise Rejected("not_an_id", f"{ref!r} is not an id", field=field,
                       hint=f"give the {what}'s id or at least 4 hex digits of it")
    ids = store.find_prefix(bytes.fromhex(t if len(t) % 2 == 0 else t[:-1]))
    evs = [e for e in (store.get(i) for i in ids) if e is not None and e.kind in kinds]
    evs = [e for e in evs if e.id.hex().startswith(t)]
    if len(evs) == 1:
        return evs[0]
    if len(evs) > 1:
        raise Rejected("ambiguous", f"{ref!r} matches several events", field=field, hint="give more of the id")
    raise Rejected("unknown_event", f"no {what} {ref!r} on this node", field=field,
                   hint="'imier status' lists the proposals held here")


def key(ref: Ref, people: Mapping[str, bytes], *, field: str) -> bytes:
    """A public key: 32 bytes, 64 hex digits, or the name of a person on this node."""
    if isinstance(ref, bytes):
        if len(ref) != 32:
            raise Rejected("not_a_key", "a public key is 32 bytes", field=field)
        return ref
    name = ref.strip()
    if name in people:
        return people[name]
    t = name.lower()
    if len(t) != 64 or not is_hex(t):
        raise Rejected("not_a_key", f"{ref!r} is not a public key", field=field,
                       hint="64 hex digits, as 'imier key new' prints, or a person's name on this node")
    return bytes.fromhex(t)


def scope(store: Store, ref: Ref, *, field: str = "scope") -> bytes:
    """What a mandate serves: a proposal or a federation held here, by id or unique prefix."""
    if isinstance(ref, bytes):
        ev = store.get(ref)
        if ev is not None and store.state(ref) == 1 and _is_scope(ev):
            return ref
        raise Rejected("unknown_scope", f"no proposal or federation {short(ref)} on this node", field=field)
    t = ref.strip().lower()
    if not is_hex(t) or len(t) < 4:
        raise Rejected("not_an_id", f"{ref!r} is not an id", field=field,
                       hint="give a proposal's or a federation's id, or 4+ hex digits of it")
    ids = store.find_prefix(bytes.fromhex(t if len(t) % 2 == 0 else t[:-1]))
    hits = [e for e in (store.get(i) for i in ids)
            if e is not None and e.id.hex().startswith(t) and _is_scope(e)]
    if len(hits) == 1:
        return hits[0].id
    if len(hits) > 1:
        raise Rejected("ambiguous", f"{ref!r} matches several proposals or federations", field=field,
                       hint="give more of the id")
    raise Rejected("unknown_scope", f"no proposal or federation {ref!r} on this node", field=field,
                   hint="'imier status' lists proposals, 'imier body list' federations")


def _is_scope(ev: Event) -> bool:
    if ev.kind == "propose":
        return True
    return isinstance(ev.data, Found) and ev.data.body_kind in FEDERATION_KINDS
