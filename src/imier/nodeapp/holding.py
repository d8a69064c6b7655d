"""Which bodies a node holds, and which bodies it offers a peer. No I/O but the store.

A node holds (ARCHITECTURE.md, CLI.md ``body follow``):

1. every body in which one of its people authored an event or was admitted,
2. every body it follows,
3. the federations above those (``Store.parents``, recursively),
4. and everything under each of them (``Store.closure``): a federation's
   verdicts need the membership of every body under it.

In the sync handshake each side sends the bodies it holds and its people's
public keys; each then *offers* the peer the bodies it would hold if it had
this node's events: the shared ones, the ones where the peer's people are
members, and rules 3-4 applied to those. The set reconciled is the union of
both offers, so a node learns of a new admission of one of its people, and
of a new federation above its bodies, from any peer that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..protocol.events import Admit, decode_event
from ..store.db import Store

__all__ = ["member_bodies", "held_bodies", "offer_for", "expand"]


def member_bodies(store: Store, people: Iterable[bytes]) -> set[bytes]:
    """Bodies where one of ``people`` authored an event or was admitted (rule 1)."""
    people = set(people)
    if not people:
        return set()
    out: set[bytes] = set()
    ps = list(people)
    q = f"SELECT DISTINCT body FROM events WHERE author IN ({','.join('?' * len(ps))})"
    out.update(r[0] for r in store.conn.execute(q, ps))
    for body, raw in store.conn.execute("SELECT body, raw FROM events WHERE kind = 'admit'"):
        if body in out:
            continue
        ev = decode_event(raw, verify=False)
        if isinstance(ev.data, Admit) and ev.data.member in people:
            out.add(body)
    return out


def expand(store: Store, seed: Iterable[bytes]) -> set[bytes]:
    """Rules 3 and 4: add the federations above, then everything under each."""
    up: set[bytes] = set()
    todo = list(seed)
    while todo:
        b = todo.pop()
        if b in up:
            continue
        up.add(b)
        todo.extend(store.parents(b) - up)
    out: set[bytes] = set()
    for b in up:
        if b not in out:
            out |= store.closure(b)
    return out


def held_bodies(store: Store, people: Iterable[bytes]) -> set[bytes]:
    return expand(store, member_bodies(store, people) | set(store.follows()))


def offer_for(
    store: Store, mine: set[bytes], their_bodies: Iterable[bytes], their_people: Iterable[bytes]
) -> set[bytes]:
    """The bodies this node (holding ``mine``) offers a peer that holds ``their_bodies``."""
    seed = (set(their_bodies) & mine) | (member_bodies(store, their_people) & mine)
    return expand(store, seed) & mine
