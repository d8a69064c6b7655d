"""Which bodies a node holds, and which bodies it offers a peer. No I/O but the store.

A node holds, derived from its own store only (never from what a peer says):

1. every body in which one of its people authored an event (founded it,
   wrote in it, or admitted another of its people there),
2. every body it follows (``imier body follow``),
3. every federation one of those bodies *consented to* (docs/rules.md s.9.2:
   the body carried a ``federate`` proposal naming it with ``join`` true, and
   no later carried one with ``join`` false), recursively,
4. and everything under each of them (``Store.closure``): a federation's
   verdicts need the records of the bodies it names, if only to see whether
   they consented.

A federation that names our body without our body's consent is *not* held
(rule 3 reads only our body's own record), so an outsider cannot make a node
store a federation by naming its community.

An admission alone is *not* a reason to hold: anyone can found a body and
admit our person, and holding it would store whatever that stranger writes.
An ``admit`` naming one of our people, learnt from a peer, in a body none of
our people wrote in, is kept as an *invitation* (store/invitations.py, at most
64, for a lunar month); ``imier body follow`` accepts it (rule 2). An admit
authored on this node (by one of its people) is rule 1.

In the sync handshake each side sends the bodies it holds and its people's
public keys; each then *offers* the peer the bodies it holds that the peer
would hold with this node's events: the shared ones, the ones where the
peer's people were admitted, and rules 3-4 applied to those. What a peer
offers is only a candidate for the receiver: sync.py stores events of an
offered body only once the receiver's own rules say it holds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ..store import replica
from ..store.db import Store

__all__ = [
    "member_bodies",
    "invited_bodies",
    "held_bodies",
    "offer_for",
    "expand",
    "admitted",
    "consented_federations",
    "placeholder_consented_federations",
]

# (body, proposal id) -> (events held in the body when tallied, verdict); see below.
_TALLIES: dict[tuple[bytes, bytes], tuple[int, tuple[int, bool] | None]] = {}
_MAX_TALLIES = 4096


def member_bodies(store: Store, people: Iterable[bytes]) -> set[bytes]:
    """Bodies where one of ``people`` authored an event (rule 1)."""
    people = set(people)
    if not people:
        return set()
    return replica.authored_bodies(store, people)


def invited_bodies(store: Store, people: Iterable[bytes]) -> set[bytes]:
    """Bodies where one of ``people`` authored an event or is named by an admit held here:
    what a peer with those people would want offered (it decides itself what it holds)."""
    people = set(people)
    if not people:
        return set()
    return replica.authored_bodies(store, people) | set(replica.admits_naming(store, people))


def admitted(store: Store, body: bytes, people: Iterable[bytes]) -> bool:
    """True when ``body``'s record holds an *accepted* admit naming one of ``people``.

    This is what a node checks before it keeps the events of a body a peer
    offered because one of its people was admitted there (sync.py): the admit
    is accepted only with its whole chain back to the body's founding, so
    the body is real and the admission is in its record.
    """
    return bool(replica.admits_naming(store, people, accepted_only=True, body=body))


def placeholder_consented_federations(store: Store, body: bytes, now_ms: int) -> set[bytes]:
    """PLACEHOLDER for the consensus module's consent function (docs/rules.md s.9.2).

    The federations ``body`` has joined by its own carried ``federate``
    proposals, as of ``now_ms``: for each federation named by a ``federate``
    proposal of ``body`` that is carried (final state ``carried``, closed at
    or before ``now_ms``), the latest carried one decides (``join`` true: in,
    false: out). Tallies go through ``consensus.tally_proposal`` over the
    body's closure and are cached per proposal until the body's event count
    changes. The lead replaces this by the consensus helper's pure function
    (see ``consented_federations``).
    """
    props = replica.proposals_of_kind(store, body, "federate")
    if not props:
        return set()
    from ..consensus import NotAProposal, tally_proposal

    marker = replica.body_event_count(store, body)
    decided: list[tuple[int, bytes, bytes, bool]] = []  # (closed_at, id, federation, join)
    events = None
    for p in props:
        fed = getattr(p.data, "federation", None)
        join = getattr(p.data, "join", None)
        if not isinstance(fed, bytes) or not isinstance(join, bool):
            continue
        key = (body, p.id)
        hit = _TALLIES.get(key)
        if hit is not None and hit[0] == marker:
            verdict = hit[1]
        else:
            if events is None:
                events = store.events_for_bodies(store.closure(body))
            try:
                res = tally_proposal(events, p.id, now_ms)
            except NotAProposal:
                res = None
            verdict = None
            if res is not None and res.state == "carried" and res.closed_at is not None:
                verdict = (res.closed_at, join)
            # Only a final state is kept: an open proposal is carried with time alone.
            if res is None or res.state in ("carried", "tabled", "rejected", "withdrawn"):
                if len(_TALLIES) >= _MAX_TALLIES:
                    _TALLIES.clear()
                _TALLIES[key] = (marker, verdict)
        if verdict is not None and verdict[0] <= now_ms:
            decided.append((verdict[0], p.id, fed, verdict[1]))
    out: set[bytes] = set()
    for _, _, fed, join in sorted(decided):
        if join:
            out.add(fed)
        else:
            out.discard(fed)
    return out


# The one switch for the lead: the consensus module's consent function, once merged.
consented_federations: Callable[[Store, bytes, int], set[bytes]] = placeholder_consented_federations


def expand(store: Store, seed: Iterable[bytes], now_ms: int | None = None) -> set[bytes]:
    """Rules 3 and 4: add the federations consented to, recursively, then everything under each."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    up: set[bytes] = set()
    todo = list(seed)
    while todo:
        b = todo.pop()
        if b in up:
            continue
        up.add(b)
        todo.extend(consented_federations(store, b, now) - up)
    out: set[bytes] = set()
    for b in up:
        if b not in out:
            out |= store.closure(b)
    return out


def held_bodies(store: Store, people: Iterable[bytes], now_ms: int | None = None) -> set[bytes]:
    return expand(store, member_bodies(store, people) | set(store.follows()), now_ms)


def offer_for(
    store: Store, mine: set[bytes], their_bodies: Iterable[bytes], their_people: Iterable[bytes],
    now_ms: int | None = None,
) -> set[bytes]:
    """The bodies this node (holding ``mine``) offers a peer that holds ``their_bodies``."""
    seed = (set(their_bodies) & mine) | (invited_bodies(store, their_people) & mine)
    return expand(store, seed, now_ms) & mine
