"""An indexed, order-free view of a set of accepted events.

Invariants:

1. A :class:`Record` depends only on the *set* of events given: duplicates
   are dropped by id and everything is processed in ``(timestamp, id)``
   order, so any permutation or duplication gives the same record.
2. Membership is a set of half-open intervals ``[start, end)`` per
   ``(body, member)``: an ``admit`` at ``t`` makes a member at ``t``, a
   ``leave`` at ``t`` ends it at ``t`` (DECISIONS.md s.1). A base body's
   founder is its first member.
3. An ``admit`` counts only if its author is a member at that moment; a
   ``leave`` only if its author is. A ``part`` event (a body joins or leaves
   a federation) counts if its author is, at that moment, a person of the
   joining/leaving body, or (to join) of a body already in the federation.
4. A fork is two different events of one author with the same
   ``(body, seq)``; from the fork's ``seq`` on, that author's events in that
   body are not counted by consensus (DECISIONS.md s.8).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..protocol.events import (
    BASE_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Part,
    Propose,
    Recall,
    Stand,
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
        unique: dict[bytes, Event] = {}
        for ev in events:
            unique.setdefault(ev.id, ev)
        self.events: dict[bytes, Event] = unique
        self.ordered: list[Event] = sorted(unique.values(), key=lambda e: e.order_key)
        self.bodies: dict[bytes, BodyInfo] = {}
        self.proposals: dict[bytes, Event] = {}
        self.by_target: dict[bytes, list[Event]] = defaultdict(list)
        self.forks: dict[tuple[bytes, bytes], Fork] = {}
        # body -> member -> spans [start, end): indexed by body, as tallies ask per body.
        self._spans: dict[bytes, dict[bytes, list[list[int]]]] = defaultdict(dict)
        self._index()
        self._find_forks()
        self._membership()

    # -- building ----------------------------------------------------------------

    def _index(self) -> None:
        for ev in self.ordered:
            d = ev.data
            if isinstance(d, Found):
                self.bodies[ev.id] = BodyInfo(
                    id=ev.id, kind=d.body_kind, name=d.name, founded=ev.ts, founder=ev.author,
                    changes=dict(d.charter), parts=tuple(d.parts), parent=d.parent,
                )
            elif isinstance(d, Propose):
                self.proposals[ev.id] = ev
            elif isinstance(d, Vote):
                self.by_target[d.target].append(ev)
            elif isinstance(d, (Amend, Stand, Withdraw)):
                self.by_target[d.proposal].append(ev)
            elif isinstance(d, Recall):
                self.by_target[d.mandate].append(ev)

    def _find_forks(self) -> None:
        first: dict[tuple[bytes, bytes, int], bytes] = {}
        twins: dict[tuple[bytes, bytes, int], list[bytes]] = {}
        for ev in self.ordered:
            k = (ev.body_id, ev.author, ev.seq)
            if k not in first:
                first[k] = ev.id
            else:
                twins.setdefault(k, [first[k]]).append(ev.id)
        for (body, author, seq), ids in sorted(twins.items()):
            old = self.forks.get((body, author))
            if old is None or seq < old.seq:
                a, b = sorted(ids)[:2]
                self.forks[(body, author)] = Fork(body=body, author=author, seq=seq, first=a, second=b)

    def _open(self, body: bytes, who: bytes, t: int) -> None:
        if not self.member_at(body, who, t):
            self._spans[body].setdefault(who, []).append([t, FOREVER])

    def _close(self, body: bytes, who: bytes, t: int) -> None:
        spans = self._spans.get(body, {}).get(who)
        if spans and spans[-1][1] == FOREVER and spans[-1][0] <= t:
            spans[-1][1] = t

    def _membership(self) -> None:
        for info in self.bodies.values():
            if info.base:
                self._open(info.id, info.founder, info.founded)
            else:
                for part in info.parts:
                    self._open(info.id, part, info.founded)
        # One pass in (ts, id) order: a part event may depend on base membership
        # and on federation membership as it stood just before it (rule 3).
        for ev in self.ordered:
            owner = self.bodies.get(ev.body_id)
            if owner is None or ev.body is None:
                continue
            self._apply(owner, ev)

    def _apply(self, info: BodyInfo, ev: Event) -> None:
        d = ev.data
        if info.base and isinstance(d, Admit):
            if self.member_at(info.id, ev.author, ev.ts):
                self._open(info.id, d.member, ev.ts)
        elif info.base and isinstance(d, Leave):
            self._close(info.id, ev.author, ev.ts)
        elif not info.base and isinstance(d, Part) and d.part != info.id:
            if d.join:
                inside = self.people_under(d.part, ev.ts) | self.people_under(info.id, ev.ts)
                if ev.author in inside:
                    self._open(info.id, d.part, ev.ts)
            elif ev.author in self.people_under(d.part, ev.ts):
                self._close(info.id, d.part, ev.ts)

    # -- reading -------------------------------------------------------------------

    def member_at(self, body: bytes, who: bytes, t: int) -> bool:
        return any(s <= t < e for s, e in self._spans.get(body, {}).get(who, ()))

    def members_at(self, body: bytes, t: int) -> set[bytes]:
        """People of a base body, or member bodies of a federation, at ``t``."""
        return {
            who for who, spans in self._spans.get(body, {}).items()
            if any(s <= t < e for s, e in spans)
        }

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
        fork = self.forks.get((ev.body_id, ev.author))
        return fork is None or ev.seq < fork.seq

    def targeting(self, target: bytes, kind: type) -> list[Event]:
        """Events of one payload type aimed at ``target``, in ``(ts, id)`` order."""
        return [e for e in self.by_target.get(target, ()) if isinstance(e.data, kind)]


def members_at(events: Iterable[Event], body: bytes, t: int) -> set[bytes]:
    """People (base body) or member bodies (federation) of ``body`` at time ``t``."""
    return Record(events).members_at(body, t)
