"""Pure look-ups about bodies and people for the store, the daemon and the CLI.

Each takes a set of accepted events (what the node holds of the bodies
concerned, e.g. the store's closure of a body) and a time, and answers as
the decision procedure would (docs/rules.md s.9.2, s.10.1, s.11):

* :func:`members_of_federation` (alias :func:`consenting_parts`): the member
  bodies of a federation at ``t``, named by it *and* consenting.
* :func:`pending_invitations`: federations that name a body without its
  consent (``body show``, holding).
* :func:`person_of`: the person a key acts for in a body at ``t``.
* :func:`profile_names`: ``{person key: name}`` from a body's ``profile`` events.
* :func:`tellers_of`: the tellers of a body at ``t``.

For many questions over the same events, build one ``Engine(Record(events))``
and call its methods (``parts_at``, ``invitations``, ``devices``, ``tellers``).
"""

from __future__ import annotations

from typing import Iterable

from ..protocol.events import Event, Profile
from .engine import Engine
from .record import FOREVER, Record

__all__ = [
    "members_of_federation",
    "consenting_parts",
    "pending_invitations",
    "person_of",
    "profile_names",
    "tellers_of",
]


def members_of_federation(events: Iterable[Event], fed: bytes, t: int) -> set[bytes]:
    """Member bodies of federation ``fed`` at ``t``: those it names (founding ``parts``,
    a ``part`` join by one of its people) whose own record holds a carried ``federate``
    proposal naming it with ``join`` true (and no later carried ``join`` false)."""
    return Engine(Record(events)).parts_at(fed, t)


consenting_parts = members_of_federation


def pending_invitations(events: Iterable[Event], body: bytes, t: int) -> list[bytes]:
    """Federations that name ``body`` at ``t`` without its consent, sorted by id.
    ``events`` must hold those federations' records (their ``found`` and ``part``
    events) and ``body``'s record."""
    return Engine(Record(events)).invitations(body, t)


def person_of(events: Iterable[Event], body: bytes, key: bytes, t: int) -> bytes | None:
    """The person (first key) that ``key`` acts for in ``body`` at ``t``: ``key`` itself
    unless it is a linked device (or was unlinked or replaced by a recovery: None)."""
    return Engine(Record(events)).devices(body, t + 1).person(key, t)


def profile_names(events: Iterable[Event], body: bytes, t: int = FOREVER) -> dict[bytes, str]:
    """``{person key: name}`` in ``body``: the latest ``profile`` by ``(timestamp, id)``
    in the body's record, by any of the person's devices, stamped at or before ``t``.
    Show a name with a short key prefix, never alone (two people may share a name)."""
    eng = Engine(Record(events))
    dev = eng.devices(body, t)
    out: dict[bytes, str] = {}
    for ev in eng.record.profiles:  # in (ts, id) order: the latest wins
        if ev.body != body or ev.ts > t or not eng.record.counted(ev):
            continue
        who = dev.person(ev.author, ev.ts)
        if who is not None:
            assert isinstance(ev.data, Profile)
            out[who] = ev.data.name
    return out


def tellers_of(events: Iterable[Event], body: bytes, t: int) -> frozenset[bytes]:
    """Holders at ``t`` of in-force ``teller`` mandates of ``body`` (s.10.1)."""
    return Engine(Record(events)).tellers(body, t)
