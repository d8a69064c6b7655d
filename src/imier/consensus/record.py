"""An indexed, order-free view of a set of accepted events.

Invariants:

1. A :class:`Record` depends only on the *set* of events given: duplicates
   are dropped by id and everything is processed in ``(timestamp, id)``
   order, so any permutation or duplication gives the same record.
2. Membership is a set of half-open intervals ``[start, end)`` per
   ``(body, member)``: an ``admit`` at ``t`` makes a member at ``t``, a
   ``leave`` at ``t`` ends it at ``t`` (docs/rules.md s.1). A base body's
   founder is its first member.
3. An ``admit`` counts only if its author is a member at that moment; a
   ``leave`` only if its author is. A federation's spans here are its
   *naming* of member bodies (s.9.2): founding ``parts``, a ``part`` join by
   a person of the federation, ended by a ``part`` leave by a person of the
   federation or of the named body. Membership also needs the named body's
   consent, which the engine adds (:meth:`~.engine.Engine.parts_at`).
4. A fork is two different events of one author with the same
   ``(body, seq)``; from the fork's ``seq`` on, that author's events in that
   body are not counted by consensus (docs/rules.md s.8).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Iterable, Mapping

from ..protocol.events import (
    BASE_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Link,
    Part,
    Profile,
    Propose,
    Recall,
    Seal,
    Stand,
    Unlink,
    Vote,
    Withdraw,
)

__all__ = ["Record", "BodyInfo", "Fork", "members_at", "FOREVER"]

# Later than any timestamp an event may carry (protocol MAX_TS is 2**53).
FOREVER = 2**62


@dataclass(frozen=True, kw_only=True)
class BodyInfo:
    id: bytes
    kind: str
    name: str
    founded: int
    founder: bytes
    changes: Mapping[str, str] = field(default_factory=dict)
    parts: tuple[bytes, ...] = ()
    parent: bytes | None = None

    @property
    def base(self) -> bool:
        return self.kind in BASE_KINDS


@dataclass(frozen=True, kw_only=True)
class Fork:
    body: bytes
    author: bytes
    seq: int
    first: bytes  # the two smallest event ids sharing (body, author, seq)
    second: bytes


class Record:
    """Everything consensus needs to look up, built once from a set of events."""

    def __init__(self, events: Iterable[Event]) -> None:
        evs = events if isinstance(events, list) else list(events)
        unique: dict[bytes, Event] = dict(zip(map(_ID, evs), evs, strict=True))
        if len(unique) != len(evs):  # duplicates: the first of each id stands
            unique = {}
            for ev in evs:
                unique.setdefault(ev.id, ev)
        self.events: dict[bytes, Event] = unique
        # (ts, id): Event.order_key, taken by a C getter (this sorts every event).
        self.ordered: list[Event] = sorted(unique.values(), key=_ORDER)
        self.bodies: dict[bytes, BodyInfo] = {}
        self.proposals: dict[bytes, Event] = {}
        self.by_target: dict[bytes, list[Event]] = defaultdict(list)
        # target -> payload type -> events, in (ts, id) order: targeting() without a scan.
        self._typed: dict[bytes, dict[type, list[Event]]] = {}
        self.forks: dict[tuple[bytes, bytes], Fork] = {}
        # (proposal or recall id, window name) -> seal events, in (ts, id) order (s.10).
        self.seals: dict[tuple[bytes, str], list[Event]] = defaultdict(list)
        # link, unlink and profile events in (ts, id) order (s.11): few, read whole.
        self.devices: list[Event] = []
        self.profiles: list[Event] = []
        self._by_body: dict[bytes, list[Event]] = {}
        # base body -> device -> (person, start, end), from the body's own link events
        self._links: dict[bytes, dict[bytes, list[tuple[bytes, int, int]]]] = {}
        # body -> member -> spans [start, end), flat: [start0, end0, start1, end1, ...]
        # (one list per member). Indexed by body, as tallies ask per body.
        self._spans: dict[bytes, dict[bytes, list[int]]] = defaultdict(dict)
        # body -> (member, start, end) for every span: members_at() in one pass,
        # filled on demand once the record is built (spans never change after).
        self._flat: dict[bytes, list[tuple[bytes, int, int]]] = {}
        self._whole: dict[bytes, tuple[int, int]] = {}
        self._built = False
        self._find_forks(self._index())
        self._membership()
        self._built = True

    # -- building ----------------------------------------------------------------

    def _index(self) -> list[tuple[bytes, int, bytes]]:
        """Bodies, proposals and events by target; returns ``(body, seq, author)``
        of every event, in order, for :meth:`_find_forks` (one pass over the events)."""
        by_target, typed = self.by_target, self._typed
        keys: list[tuple[bytes, int, bytes]] = []
        add = keys.append
        for ev in self.ordered:
            body = ev.body
            add((ev.id if body is None else body, ev.seq, ev.author))
            d = ev.data
            if isinstance(d, Vote):
                target = d.target
            elif isinstance(d, Admit):
                continue
            elif isinstance(d, Found):
                self.bodies[ev.id] = BodyInfo(
                    id=ev.id, kind=d.body_kind, name=d.name, founded=ev.ts, founder=ev.author,
                    changes=dict(d.charter), parts=tuple(d.parts), parent=d.parent,
                )
                continue
            elif isinstance(d, Propose):
                self.proposals[ev.id] = ev
                continue
            elif isinstance(d, (Amend, Stand, Withdraw)):
                target = d.proposal
            elif isinstance(d, Recall):
                target = d.mandate
            elif isinstance(d, Seal):
                self.seals[(d.proposal, d.window)].append(ev)
                continue
            elif isinstance(d, (Link, Unlink)):
                self.devices.append(ev)
                continue
            elif isinstance(d, Profile):
                self.profiles.append(ev)
                continue
            else:
                continue
            by_target[target].append(ev)
            kinds = typed.get(target)
            if kinds is None:
                typed[target] = {type(d): [ev]}
            else:
                kinds.setdefault(type(d), []).append(ev)
        return keys

    def _find_forks(self, keys: list[tuple[bytes, int, bytes]]) -> None:
        if len(set(keys)) == len(keys):
            return  # no two events share (body, author, seq): no fork
        first: dict[tuple[bytes, bytes, int], bytes] = {}
        twins: dict[tuple[bytes, bytes, int], list[bytes]] = {}
        for ev in self.ordered:
            body = ev.body
            eid = ev.id
            k = (eid if body is None else body, ev.author, ev.seq)
            got = first.setdefault(k, eid)
            if got is not eid:
                twins.setdefault(k, [got]).append(eid)
        for (body, author, seq), ids in sorted(twins.items()):
            old = self.forks.get((body, author))
            if old is None or seq < old.seq:
                a, b = sorted(ids)[:2]
                self.forks[(body, author)] = Fork(body=body, author=author, seq=seq, first=a, second=b)

    def _open(self, body: bytes, who: bytes, t: int) -> None:
        if not self.member_at(body, who, t):
            self._spans[body].setdefault(who, []).extend((t, FOREVER))

    def _close(self, body: bytes, who: bytes, t: int) -> None:
        spans = self._spans.get(body, {}).get(who)
        if spans and spans[-1] == FOREVER and spans[-2] <= t:
            spans[-1] = t

    def _membership(self) -> None:
        for info in self.bodies.values():
            if info.base:
                self._open(info.id, info.founder, info.founded)
            else:
                for part in info.parts:
                    self._open(info.id, part, info.founded)
        # One pass in (ts, id) order: a part event may depend on base membership
        # and on federation membership as it stood just before it (rule 3).
        bodies, spans = self.bodies, self._spans
        for ev in self.ordered:
            body = ev.body
            if body is None:
                continue
            owner = bodies.get(body)
            if owner is None:
                continue
            d = ev.data
            if owner.base and isinstance(d, Admit):
                # _apply's admit, inlined: the bulk of a large record.
                members = spans.get(body)
                t = ev.ts
                if members is None:
                    continue
                if not within_spans(members.get(ev.author), t) and \
                        not within_spans(members.get(self._acting(body, ev.author, t)), t):
                    continue
                mine = members.get(d.member)
                if mine is None:
                    members[d.member] = [t, FOREVER]
                elif not within_spans(mine, t):
                    mine.extend((t, FOREVER))
            elif isinstance(d, (Leave, Part)):
                self._apply(owner, ev)
            elif owner.base and isinstance(d, (Link, Unlink)):
                self._device(body, ev)

    def _device(self, body: bytes, ev: Event) -> None:
        """Links and unlinks of a base body's own record, for who may admit and leave
        (the engine's :class:`~.engine.Devices` adds recoveries and bodies below)."""
        d = ev.data
        assert isinstance(d, (Link, Unlink))
        table = self._links.setdefault(body, {})
        actor = self._acting(body, ev.author, ev.ts)
        spans = table.setdefault(d.device, [])
        if isinstance(d, Link):
            if d.device != actor and not any(s <= ev.ts < e for _, s, e in spans):
                spans.append((actor, ev.ts, FOREVER))
        else:
            for i, (p, s, e) in enumerate(spans):
                if p == actor and s <= ev.ts < e:
                    spans[i] = (p, s, ev.ts)

    def _acting(self, body: bytes, key: bytes, t: int) -> bytes:
        """The person ``key`` acts for in base body ``body``'s record at ``t`` (links only)."""
        for person, s, e in self._links.get(body, {}).get(key, ()):
            if s <= t < e:
                return person
        return key

    def _apply(self, info: BodyInfo, ev: Event) -> None:
        d = ev.data
        if info.base and isinstance(d, Admit):
            if self.member_at(info.id, ev.author, ev.ts):
                self._open(info.id, d.member, ev.ts)
        elif info.base and isinstance(d, Leave):
            self._close(info.id, self._acting(info.id, ev.author, ev.ts), ev.ts)
        elif not info.base and isinstance(d, Part) and d.part != info.id:
            # F names C (s.9.2): a ``part`` join by a person of F. Naming ends with a
            # ``part`` leave by a person of F or of C. Consent (C's carried
            # ``federate`` proposal) is the engine's: these spans are F's naming.
            if d.join:
                if ev.author in self.people_under(info.id, ev.ts):
                    self._open(info.id, d.part, ev.ts)
            elif ev.author in self.people_under(d.part, ev.ts) | self.people_under(info.id, ev.ts):
                self._close(info.id, d.part, ev.ts)

    # -- reading -------------------------------------------------------------------

    def of_body(self, body: bytes) -> list[Event]:
        """The events of ``body``'s record (its ``found`` included), in ``(ts, id)`` order."""
        got = self._by_body.get(body)
        if got is None:
            got = self._by_body[body] = [e for e in self.ordered if e.body == body or e.id == body]
        return got

    def member_at(self, body: bytes, who: bytes, t: int) -> bool:
        members = self._spans.get(body)
        return members is not None and within_spans(members.get(who), t)

    def spans(self, body: bytes) -> Mapping[bytes, list[int]]:
        """member -> spans ``[start, end)`` in ``body``, flat: ``[start0, end0, ...]`` (read only)."""
        return self._spans.get(body, _NONE)

    def members_at(self, body: bytes, t: int) -> set[bytes]:
        """People of a base body, or member bodies of a federation, at ``t``."""
        if not self._built:  # while building, spans still change
            return {
                who for who, spans in self._spans.get(body, {}).items()
                if within_spans(spans, t)
            }
        flat = self._flat.get(body)
        if flat is None:
            members = self._spans.get(body, {})
            flat = self._flat[body] = [
                (who, spans[i], spans[i + 1])
                for who, spans in members.items() for i in range(0, len(spans), 2)
            ]
            # One span each (nobody left and came back): between the last start and
            # the first end, everyone is a member.
            if flat and len(flat) == len(members):
                self._whole[body] = (max(x[1] for x in flat), min(x[2] for x in flat))
        whole = self._whole.get(body)
        if whole is not None and whole[0] <= t < whole[1]:
            return set(self._spans[body])
        return {who for who, s, e in flat if s <= t < e}

    def people_under(self, body: bytes, t: int, _path: frozenset[bytes] = frozenset()) -> set[bytes]:
        """Every person of every base body under ``body`` at ``t`` (cycles cut)."""
        info = self.bodies.get(body)
        if info is None or body in _path:
            return set()
        if info.base:
            return self.members_at(body, t)
        out: set[bytes] = set()
        for part in self.members_at(body, t):
            out |= self.people_under(part, t, _path | {body})
        return out

    def counted(self, ev: Event) -> bool:
        """False for an event at or after its author's fork in its body (rule 4)."""
        if not self.forks:
            return True
        fork = self.forks.get((ev.body_id, ev.author))
        return fork is None or ev.seq < fork.seq

    def targeting(self, target: bytes, kind: type) -> list[Event]:
        """Events of one payload type aimed at ``target``, in ``(ts, id)`` order."""
        typed = self._typed.get(target)
        if not typed:
            return []
        found = [cls for cls in typed if issubclass(cls, kind)]
        if not found:
            return []
        if len(found) == 1:
            return list(typed[found[0]])
        return [e for e in self.by_target.get(target, ()) if isinstance(e.data, kind)]


def within_spans(spans: list[int] | None, t: int) -> bool:
    """Whether ``t`` falls in one of the flat spans ``[start, end)``."""
    if not spans:
        return False
    if len(spans) == 2:  # almost everyone: one span
        return spans[0] <= t < spans[1]
    return any(spans[i] <= t < spans[i + 1] for i in range(0, len(spans), 2))


_ORDER = attrgetter("ts", "id")
_ID = attrgetter("id")
_NONE: Mapping[bytes, list[int]] = MappingProxyType({})


def members_at(events: Iterable[Event], body: bytes, t: int) -> set[bytes]:
    """People (base body) or member bodies (federation) of ``body`` at time ``t``."""
    return Record(events).members_at(body, t)
