"""What the HTTP face reads and writes, in one place (synchronous, one Store each call).

Every function here takes a :class:`~imier.store.db.Store` and plain values and
returns JSON-ready documents; app.py runs them in worker threads. Nothing here
decides: it calls the library the CLI calls.

* :func:`status_all` / :func:`status_one` / :func:`status_of_body`: the documents
  of ``imier status --json``, from the same library calls as the CLI
  (:func:`imier.api.read.documents`, :func:`~imier.api.read.proposal_document`):
  kept results where their inputs are unchanged, checked on every call.
* :func:`intake`: a posted event goes through the store's one intake
  (:func:`imier.store.intake.take`, ``local=True`` so the daemon publishes it),
  after the page's own checks (the body is held, the seq is not taken).
* :class:`People`: persons, devices and names as consensus reads them
  (docs/decisions.md 40-41).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Iterable

from ..protocol.errors import Rejected
from ..protocol.events import Event, Found, decode_event
from ..protocol.limits import MAX_PREV
from ..store.db import ACCEPTED, Store

__all__ = [
    "now_ms", "status_all", "status_one", "status_of_body", "body_names", "next_for", "intake",
    "Intake", "NotFound", "members", "inside", "bodies_doc", "person_doc", "display", "People",
]


class NotFound(Exception):
    """The thing asked for is not held here: ``code``, ``field``, ``message``."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


def now_ms() -> int:
    """The node's clock, read as the CLI reads it: ``IMIER_NOW`` (ms since the epoch,
    ISO 8601, or ``+DURATION`` from now) for tests and rehearsals, else the wall clock.
    (Not imported from ``imier.cli``: only the CLI imports the CLI.)"""
    real = int(time.time() * 1000)
    fixed = os.environ.get("IMIER_NOW", "").strip()
    if not fixed:
        return real
    if fixed.isdigit():
        return int(fixed)
    if fixed.startswith("+"):
        from ..protocol.charter import parse_duration_ms

        return real + parse_duration_ms(fixed[1:], field="IMIER_NOW")
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(fixed)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


# -- status: the documents of `imier status --json` ---------------------------------


def proposal_events(store: Store, body: bytes) -> list[Event]:
    """What ``cli/decide.py``'s ``proposal_events`` reads: the body's closure."""
    return store.events_for_bodies(store.closure(body))


def body_names(store: Store) -> dict[bytes, str]:
    return {b.id: b.data.name for b in store.bodies() if isinstance(b.data, Found)}


def status_of_body(store: Store, body: bytes, as_of: int,
                   names: dict[bytes, str] | None = None) -> list[dict[str, Any]]:
    """The status documents of every proposal of ``body`` (as ``imier status`` lists them)."""
    from ..api import read

    return list(read.documents(store, as_of, [body])["proposals"])


def status_all(store: Store, as_of: int) -> dict[str, Any]:
    """``imier status --json``: every proposal of the bodies this node holds."""
    from ..api import read

    return read.documents(store, as_of)


def status_one(store: Store, proposal: bytes, as_of: int) -> dict[str, Any]:
    """``imier status PROPOSAL --json`` (the same document, from the same library call)."""
    from ..api import read

    prop = store.get(proposal)
    if prop is None or prop.kind != "propose" or store.state(proposal) != ACCEPTED:
        raise NotFound("unknown_proposal", "proposal", "this node holds no such proposal")
    try:
        return read.proposal_document(store, prop.id, as_of)
    except read.Void as exc:
        raise NotFound("not_a_proposal", "proposal", f"not a valid proposal: {exc}") from None


# -- signing the next event ------------------------------------------------------------


def next_for(store: Store, author: bytes, body: bytes, now: int) -> dict[str, Any]:
    """What a device needs to sign its next event in ``body`` (docs/rules.md s.8, s.9.4):
    its own next ``seq``, the heads to name in ``prev`` (never one timestamped after
    the node's clock; always its own previous event), and the least timestamp allowed."""
    if store.state(body) != ACCEPTED:
        raise NotFound("unknown_body", "body", "this node does not hold that body")
    last = store.last_own(body, author)
    prev: list[bytes] = []
    ts_min = 0
    seq = 1
    if last is not None:
        seq = last[0] + 1
        prev.append(last[1])
        ts_min = last[2]
    for ts, hid in store.heads(body):
        if len(prev) >= MAX_PREV:
            break
        if ts > now or hid in prev:
            continue  # a head from the future would make the new event wait (s.9.4)
        prev.append(hid)
        ts_min = max(ts_min, ts)
    if not prev:
        # Every head is from the future: name the newest event at or before the clock
        # (an older event is a valid prev; the future ones will name it too).
        for ts, eid in store.recent(body, at_or_before=now, limit=1):
            prev.append(eid)
            ts_min = max(ts_min, ts)
    if not prev:
        raise NotFound("no_heads", "body", "this node holds no event of that body at or before its clock")
    return {"seq": seq, "prev": sorted(p.hex() for p in prev), "ts_min": ts_min}


# -- the one way in --------------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    event: Event
    state: str  # "accepted" | "pending"
    new: bool


def intake(store: Store, raw: bytes, *, now: int, max_skew_ms: int) -> Intake:
    """Verify one signed event and store it; :class:`Rejected` (code, field) and nothing
    written when it is refused.

    Through the store's one intake (docs/rules.md s.9: admission, bounded pending).
    """
    ev = decode_event(raw)  # size, shape, canonical form, signature
    if ev.body is not None and store.state(ev.body) != ACCEPTED:
        raise Rejected("unknown_body", "this node does not hold that body", field="body")
    if ev.body is not None:
        # Two tabs of one phone signing from the same /api/next answer would fork the
        # person's chain (docs/rules.md s.8): the node takes the first and refuses the
        # second, so the page signs it again. (Sync still stores forks as evidence.)
        taken = store.ids_at_seq(ev.body, ev.author, ev.seq)
        if taken and ev.id not in taken:
            raise Rejected("seq_taken", f"this key already signed its event {ev.seq} in this body "
                           f"({taken[0].hex()[:12]}); ask /api/next again and sign anew", field="seq")
    from ..store.intake import take  # the one way in, as for bundles, sync and gossip

    res = take(store, [ev], source="web", now_ms=now, max_skew_ms=max_skew_ms, local=True)
    if res.deferred:
        raise Rejected("future", f"timestamped more than {max_skew_ms // 1000} s after this node's "
                       "clock; sign it again with the node's time (GET /api/now)", field="ts")
    if res.refused:
        r = res.refused[0]
        raise Rejected(r.code, r.message, field=r.field or "event")
    if res.dropped:
        raise Rejected("busy", "this node holds too many events waiting for earlier ones; "
                       "try again later", field="prev")
    state = "accepted" if store.state(ev.id) == ACCEPTED else "pending"
    return Intake(ev, state, new=ev.id in res.new)


# -- people: names and devices (docs/rules.md s.11) ------------------------------------------


def display(key: bytes, name: str | None) -> str:
    """``Ana (3f9c)``: a name never alone, since two people may pick the same one (s.11.4)."""
    return f"{name} ({key.hex()[:4]})" if name else key.hex()[:4]


class People:
    """Persons, devices and names in ``body`` at ``now``, as the decision procedure
    reads them (docs/decisions.md 40-41): who a key acts for is consensus's
    :class:`~imier.consensus.Devices` (links, unlinks, recoveries), a person's name
    :func:`~imier.consensus.profile_names`; ``local`` names this node gave keys."""

    def __init__(self, events: Iterable[Event], body: bytes, now: int,
                 local: dict[bytes, str] | None = None) -> None:
        from ..consensus import Engine, Record, profile_names

        evs = list(events)
        self.now = now
        self._dev = Engine(Record(evs)).devices(body, now + 1)  # as consensus.person_of
        self.names = profile_names(evs, body, now)
        self.local = local or {}

    def person(self, key: bytes) -> bytes:
        """The person ``key`` acts for (itself when it is no linked device)."""
        return self._dev.person(key, self.now) or key

    def devices(self, person: bytes) -> set[bytes]:
        """The keys linked to ``person`` now, the person's own key aside."""
        return {d for d in self._dev.devices_of(person, self.now) if d != person}

    def name(self, key: bytes) -> str | None:
        p = self.person(key)
        return self.names.get(p) or self.local.get(p)

    def doc(self, key: bytes) -> dict[str, Any]:
        name = self.name(key)
        return {"key": key.hex(), "name": name, "display": display(key, name)}


def members(store: Store, body: bytes, now: int) -> set[bytes]:
    """The members of ``body`` at ``now`` (as ``imier member list`` shows them)."""
    from ..consensus import members_at

    return members_at(store.events_for_bodies([body]), body, now)


def inside(store: Store, body: bytes, now: int) -> set[bytes]:
    """The keys that need no admission into ``body``: its members, and the devices
    linked to them (s.11.1). A join request from one of these is no longer waiting."""
    from ..consensus import members_at

    events = store.events_for_bodies(store.closure(body))
    people = People(events, body, now)
    held = members_at(events, body, now)
    return held | {d for p in held for d in people.devices(p)}


def _body_info(ev: Event) -> dict[str, Any]:
    assert isinstance(ev.data, Found)
    return {"id": ev.id.hex(), "name": ev.data.name, "kind": ev.data.body_kind}


def bodies_doc(store: Store, now: int, local: dict[bytes, str]) -> list[dict[str, Any]]:
    """Every body held: id, name, kind, and its members shown by name (``Ana (3f9c)``)."""
    from ..consensus import members_at

    out: list[dict[str, Any]] = []
    for b in store.bodies():
        events = store.events_for_bodies(store.closure(b.id))
        people = People(events, b.id, now, local)
        members = sorted(members_at(events, b.id, now))
        doc = _body_info(b)
        assert isinstance(b.data, Found)
        if b.data.body_kind in ("municipality", "region", "collective"):
            names = body_names(store)
            doc["members"] = [{"key": m.hex(), "name": names.get(m), "display": display(m, names.get(m))}
                              for m in members]
        else:
            doc["members"] = [people.doc(m) for m in members]
        out.append(doc)
    return out


def person_doc(store: Store, key: bytes, now: int, local: dict[bytes, str]) -> dict[str, Any]:
    """The bodies ``key`` belongs to (itself, or the person it is a linked device of),
    its name, and the person's linked devices."""
    from ..consensus import members_at

    bodies: list[dict[str, Any]] = []
    person = key
    name: str | None = None
    devices: set[bytes] = set()
    for b in store.bodies():
        assert isinstance(b.data, Found)
        if b.data.body_kind in ("municipality", "region", "collective"):
            continue
        events = store.events_for_bodies(store.closure(b.id))
        people = People(events, b.id, now, local)
        p = people.person(key)
        if p in members_at(events, b.id, now):
            bodies.append(_body_info(b))
            person = p
            name = name or people.name(p)
            devices |= people.devices(p)
    if name is None:
        name = local.get(person)
    return {"key": key.hex(), "person": person.hex(), "name": name, "display": display(person, name),
            "bodies": bodies, "devices": sorted(d.hex() for d in devices)}
