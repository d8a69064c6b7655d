"""Which held events are accepted: docs/rules.md s.8 (causality) and s.9.1 (admission).

Pure: no SQLite, no clock. The store fetches what is known of the events
involved, calls :func:`resolve`, and writes the outcome
(``tests/test_causality.py`` drives this module without a database).

An event is *accepted* when

1. every id in its ``prev`` is an accepted event of the same body with a
   timestamp ``<=`` its own, and (for ``seq > 1``) one of them is the author's
   event with ``seq - 1``, while a ``seq 1`` event names no earlier event of
   its author (rule 2 of store/db.py), and
2. its author may write in the body (:class:`Admission`): a ``found`` always
   may; any other event only when its author is, or once was, a person of the
   body (its founder, admitted by an accepted ``admit``, a device linked by an
   accepted ``link`` of such a person, the new key of an accepted ``recover``
   proposal), or, for a federation, a person of a body it names (in its
   founding ``parts`` or an accepted ``part`` join event), directly or through
   federations it names.

Both are decided once all of an event's prevs are decided, from what is
known of them alone, and admission only grows, so the accepted set is a
function of the set of events held, whatever the order of arrival: an event
refused as ``not_admitted`` now is taken when sync brings it again after the
admission arrived, and within one call :func:`resolve` iterates to the
fixpoint (an admission decided after an event it admits still admits it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Sequence

from ..protocol.events import Admit, Event, Found, Part, Propose, Seal

__all__ = [
    "PENDING", "ACCEPTED", "Cand", "Known", "Refusal", "Resolution", "Admission", "resolve",
    "CAUSALITY", "NOT_ADMITTED", "cand_of", "grants_of", "deps_of", "waits_for",
]

PENDING = 0
ACCEPTED = 1
CAUSALITY = "causality"
NOT_ADMITTED = "not_admitted"


class Cand(NamedTuple):
    """What :func:`resolve` needs of an undecided event."""

    body: bytes
    author: bytes
    seq: int
    ts: int
    prev: Sequence[bytes]
    kind: str = ""
    grants: tuple[bytes, ...] = ()  # keys that become persons of ``body`` once it is accepted
    names: tuple[bytes, ...] = ()  # bodies ``body`` names as its parts once it is accepted
    wait: tuple[bytes, ...] = ()  # more ids it waits for, beyond ``prev``: a seal's heads

    @property
    def deps(self) -> Sequence[bytes]:
        """Every id that must be accepted before this one is decided."""
        return self.prev if not self.wait else (*self.prev, *self.wait)


# (state, body, author, seq, ts) of a held event outside the candidates.
Known = tuple[int, bytes, bytes, int, int]


class Refusal(NamedTuple):
    id: bytes
    code: str  # "causality" or "not_admitted"
    field: str  # the part of the event at fault: "prev", "ts", "seq" or "author"
    message: str


@dataclass
class Resolution:
    accepted: list[bytes] = field(default_factory=list)  # in an order where prevs come first
    refused: list[Refusal] = field(default_factory=list)


Loader = Callable[[bytes], tuple[Iterable[bytes], Iterable[bytes]]]


class Admission:
    """Who may write in which body, in memory, grown as events are accepted.

    ``load(body)`` returns ``(persons, parts)`` already recorded for a body
    (the store reads its tables; tests pass a dict). Each body is loaded at
    most once; :meth:`grow` records what accepted events add, and
    :attr:`added_persons` / :attr:`added_parts` list it for the store to write.
    """

    def __init__(self, load: Loader | None = None) -> None:
        self._load = load
        self.persons: dict[bytes, set[bytes]] = {}
        self.parts: dict[bytes, set[bytes]] = {}
        self._reach: dict[bytes, tuple[set[bytes], ...]] = {}
        self.version = 0  # grows with every addition
        self.added_persons: list[tuple[bytes, bytes]] = []
        self.added_parts: list[tuple[bytes, bytes]] = []

    def _persons(self, body: bytes) -> set[bytes]:
        got = self.persons.get(body)
        if got is None:
            self._fill(body)
            got = self.persons[body]
        return got

    def _fill(self, body: bytes) -> None:
        if self._load is None:
            ps: Iterable[bytes] = ()
            parts: Iterable[bytes] = ()
        else:
            ps, parts = self._load(body)
        self.persons[body] = set(ps)
        self.parts[body] = set(parts)

    def _parts(self, body: bytes) -> set[bytes]:
        if body not in self.parts:
            self._fill(body)
        return self.parts[body]

    def reach(self, body: bytes) -> tuple[set[bytes], ...]:
        """The person sets of ``body`` and of every body it names, recursively."""
        got = self._reach.get(body)
        if got is None:
            seen: set[bytes] = set()
            out: list[set[bytes]] = []
            todo = [body]
            while todo:
                b = todo.pop()
                if b in seen:
                    continue
                seen.add(b)
                out.append(self._persons(b))
                todo.extend(self._parts(b) - seen)
            got = self._reach[body] = tuple(out)
        return got

    def admits(self, body: bytes, author: bytes, kind: str = "") -> bool:
        if kind == "found":
            return True
        if author in self._persons(body):  # the usual case: a person of a base body
            return True
        return any(author in ps for ps in self.reach(body))

    def grow(self, body: bytes, grants: Iterable[bytes] = (), names: Iterable[bytes] = ()) -> None:
        ps = self._persons(body)
        for k in grants:
            if k not in ps:
                ps.add(k)  # the person sets in _reach are these same sets
                self.added_persons.append((body, k))
                self.version += 1
        parts = self._parts(body)
        for b in names:
            if b not in parts and b != body:
                parts.add(b)
                self.added_parts.append((body, b))
                self.version += 1
                self._reach.clear()


def _check(c: Cand, known: dict[bytes, Known]) -> tuple[str, str] | None:
    """Rule 1 for an event whose prevs are all accepted: None, or (field, reason)."""
    body, author, seq, ts = c.body, c.author, c.seq, c.ts
    other_body = early = own = own_prev = False
    for _, b, a, sq, t in map(known.__getitem__, c.prev):
        if b != body:
            other_body = True
        if t > ts:
            early = True
        if a == author:
            own = True
            if sq == seq - 1:
                own_prev = True
    if other_body:
        return "prev", "prev names an event of another body"
    if early:
        return "ts", "timestamp is earlier than an event it names in prev"
    if seq > 1 and not own_prev:
        return "prev", "prev does not name the author's previous event in the body"
    if seq == 1 and own:
        return "seq", "seq 1 but prev names an earlier event of the same author"
    return None


def resolve(
    cand: dict[bytes, Cand], known: dict[bytes, Known], admission: Admission | None = None
) -> Resolution:
    """Decide every candidate whose prevs can all be decided; the rest stay pending.

    ``known`` holds what is known of every prev outside ``cand`` that is held
    (missing ones are simply absent); it is extended with the events accepted
    here. ``admission`` None skips rule 2 (every author admitted).
    """
    res = Resolution()
    causal: set[bytes] = set()  # refused for rule 1: final
    done: set[bytes] = set()  # accepted here
    undecided = list(cand)
    while True:
        version = admission.version if admission is not None else 0
        waiting_admission = _pass(cand, undecided, known, admission, res, causal, done)
        if not waiting_admission:
            break
        if admission is None or admission.version == version:
            for eid in waiting_admission:  # nothing new admitted anyone: final
                res.refused.append(Refusal(eid, NOT_ADMITTED, "author",
                                           "the author is not a person of this body"))
            break
        # Someone was admitted during the pass: those refused for admission, and
        # what waits on them, get another pass (each pass accepts something).
        undecided = [e for e in cand if e not in done and e not in causal]
    return res


def _pass(
    cand: dict[bytes, Cand], ids: list[bytes], known: dict[bytes, Known],
    admission: Admission | None, res: Resolution, causal: set[bytes], done: set[bytes],
) -> list[bytes]:
    """One pass of acceptance over ``ids``; returns those refused for admission."""
    unadmitted: list[bytes] = []

    def decide(eid: bytes) -> bool:
        c = cand[eid]
        bad = _check(c, known)
        if bad is not None:
            res.refused.append(Refusal(eid, CAUSALITY, bad[0], bad[1]))
            causal.add(eid)
            return False  # its children keep waiting on a prev that is not held
        if admission is not None and not admission.admits(c.body, c.author, c.kind):
            unadmitted.append(eid)
            return False
        res.accepted.append(eid)
        done.add(eid)
        known[eid] = (ACCEPTED, c.body, c.author, c.seq, c.ts)
        if admission is not None and (c.grants or c.names):
            admission.grow(c.body, c.grants, c.names)
        return True

    # Fast pass in (ts, id) order: a valid event's prevs are never later in
    # time, so almost every event finds its prevs decided already.
    rest: list[bytes] = []
    get = known.get
    for eid in sorted(ids, key=lambda e: (cand[e].ts, e)):
        for p in cand[eid].deps:
            m = get(p)
            if m is None or m[0] != ACCEPTED:
                rest.append(eid)  # a prev undecided, missing, pending or refused
                break
        else:
            decide(eid)
    # The others (a prev with the same ts and a greater id, or waiting):
    # Kahn's order over prev edges among them.
    left = set(rest)
    children: dict[bytes, list[bytes]] = {}
    waiting: dict[bytes, int] = {}
    ready: list[bytes] = []
    for eid in rest:
        n = 0
        blocked = False
        for p in cand[eid].deps:
            m = get(p)
            if m is not None and m[0] == ACCEPTED:
                continue
            if p in left:
                n += 1
                children.setdefault(p, []).append(eid)
            else:
                blocked = True  # stays pending until that prev is accepted
        if blocked:
            continue
        waiting[eid] = n
        if n == 0:
            ready.append(eid)
    while ready:
        eid = ready.pop()
        if not decide(eid):
            continue
        for k in children.get(eid, ()):
            if k in waiting:
                waiting[k] -= 1
                if waiting[k] == 0:
                    ready.append(k)
    return unadmitted


def grants_of(ev: Event) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """``(keys made persons of ev's body, bodies it names)`` once ``ev`` is accepted."""
    d = ev.data
    if isinstance(d, Admit):
        return (d.member,), ()
    if isinstance(d, Found):
        return (ev.author,), tuple(d.parts)
    if isinstance(d, Part):
        return (), ((d.part,) if d.join else ())
    if ev.kind == "link":  # docs/rules.md s.11: a device of a person acts for them
        device = getattr(d, "device", None)
        return ((device,) if isinstance(device, bytes) else ()), ()
    if isinstance(d, Propose) and d.proposal_kind == "recover":
        # The assembly's new key for a person who lost every device: admissible
        # from the proposal on (what counts is decided by the tally).
        key = getattr(d, "new_key", None)
        return ((key,) if isinstance(key, bytes) else ()), ()
    return (), ()


_GRANTING = frozenset({"admit", "found", "part", "link", "propose"})


def waits_for(ev: Event) -> tuple[bytes, ...]:
    """What ``ev`` waits for beyond its ``prev``: a seal is pending until every head it
    names is held and accepted, since the teller's view is their causal past
    (docs/rules.md s.10.2); nothing for any other kind."""
    d = ev.data
    if isinstance(d, Seal):
        prev = set(ev.prev)
        return tuple(h for h in d.heads if h not in prev)
    return ()


def deps_of(ev: Event) -> Sequence[bytes]:
    """Every id ``ev`` waits for: its ``prev``, and a seal's heads."""
    extra = waits_for(ev) if ev.kind == "seal" else ()
    return ev.prev if not extra else (*ev.prev, *extra)


def cand_of(ev: Event) -> Cand:
    kind = ev.kind
    if kind in _GRANTING:
        grants, names = grants_of(ev)
        return Cand(ev.body_id, ev.author, ev.seq, ev.ts, ev.prev, kind, grants, names)
    if kind == "seal":
        return Cand(ev.body_id, ev.author, ev.seq, ev.ts, ev.prev, kind, wait=waits_for(ev))
    return Cand(ev.body_id, ev.author, ev.seq, ev.ts, ev.prev, kind)
