"""Shared look-ups of one tally: charters in force, committees alive, the
tree of bodies voting in a window, who a key acts for, tellers, seals and
the effective ballots of a window.

Invariants:

1. Every answer is a function of the :class:`~.record.Record` alone (no
   clock): the same events give the same answers.
2. A body's charter at ``t`` is its founding charter with the changes of
   its carried ``charter`` proposals applied in order of the moment they
   were carried (ties by ``(timestamp, id)``), counting those carried at or
   before ``t`` as the record stands at ``t``. A change that would make the
   charter incoherent is not applied.
3. A committee lives ``mandate_term`` from its founding; a ``renew``
   proposal carried (in its parent, or in itself if it has none) before it
   sunsets extends it to ``mandate_term`` after the renewal.
4. The voters of a window are the members at the proposal's timestamp who
   are still members when the window opens (docs/rules.md s.2); a body is
   under a federation for a window on the same terms. Cycles are cut.
5. A person's effective ballot in a window is their counted event with the
   greatest ``(timestamp, id)`` over all their devices (s.11); it counts in
   a base body only if they were a member of that body when they cast it.
6. Earlier proposals are looked at *as of a time*: "carried by ``t``" is
   the tally of that proposal as of ``t`` (:meth:`Engine.at`). Every such
   look-up asks about a strictly earlier moment or a strictly earlier
   proposal, so the recursion ends without a cycle check (one is kept as a
   guard against bugs).
7. Tellers of body B at ``t`` (s.10.1) are the holders of ``teller``
   mandates in force at ``t``, as the record stood one millisecond before.
   A window is sealed when more than half of them have counting seals; in a
   sealed window an event counts only if it is in the causal past of the
   seals of more than half of them. Causal pasts are computed once per
   body record, in one pass over its ``prev`` edges (:meth:`Engine.views`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ..protocol.charter import DEFAULT_CHARTER, Charter
from ..protocol.errors import LocalError, Rejected
from ..protocol.events import TELLER_TASK, Event, Link, Propose, Recall, Seal
from .ladder import FINAL, LadderError, State, Window
from .record import FOREVER, Record, within_spans
from .result import Ignored, SealInfo
from .verdict import VoterTree, Present

if TYPE_CHECKING:
    from .result import ProposalResult

__all__ = ["Engine", "NotAProposal", "STRAY", "LATE", "TallyFn", "Devices", "SealCheck", "use_tally"]

STRAY = "posted in another body's record; only the proposal's body record counts"
LATE = "reached the tellers after the close"
FORKED = "its author forked their record in this body (docs/rules.md s.8)"

# tally(engine, proposal id, as_of) -> result: injected, so the engine does not import the tally.
TallyFn = Callable[["Engine", bytes, int], "ProposalResult"]
_DEFAULT_TALLY: list[TallyFn] = []


def use_tally(fn: TallyFn) -> None:
    """Set the tally an :class:`Engine` built without one uses (``tally.py`` sets it on import)."""
    _DEFAULT_TALLY[:] = [fn]


class NotAProposal(LocalError, LookupError):
    """The id names no valid proposal in these events (one clear line in the CLI)."""


class Devices:
    """Who a key acts for in one body's tree (docs/rules.md s.11).

    ``spans``: device key -> ``(person, start, end)``; ``ended``: a person's
    own first key -> the times from which it no longer acts (unlinked or
    replaced by a recovery), each paired with when it acts again (never).
    """

    __slots__ = ("spans", "ended")

    def __init__(self) -> None:
        self.spans: dict[bytes, list[tuple[bytes, int, int]]] = {}
        self.ended: dict[bytes, int] = {}

    def person(self, key: bytes, ts: int) -> bytes | None:
        """The person ``key`` acts for at ``ts``, or None if it acts for nobody."""
        for person, start, end in self.spans.get(key, ()):
            if start <= ts < end:
                return person
        gone = self.ended.get(key)
        if gone is not None and ts >= gone:
            return None
        return key

    def devices_of(self, person: bytes, ts: int) -> list[bytes]:
        out = [] if self.person(person, ts) != person else [person]
        for key, spans in self.spans.items():
            if any(p == person and s <= ts < e for p, s, e in spans):
                out.append(key)
        return out

    def _link(self, person: bytes, device: bytes, ts: int) -> None:
        if device == person or self.person(device, ts) not in (device, None):
            return  # already acting for someone (or the person's own key): no change
        self.spans.setdefault(device, []).append((person, ts, FOREVER))

    def _unlink(self, person: bytes, device: bytes, ts: int) -> None:
        if device == person:
            if person not in self.ended or self.ended[person] > ts:
                self.ended[person] = ts
            return
        spans = self.spans.get(device, [])
        for i, (p, s, e) in enumerate(spans):
            if p == person and s <= ts < e:
                spans[i] = (p, s, ts)


IDENTITY = Devices()


@dataclass(frozen=True)
class SealCheck:
    """One closed window's seals: which events its tellers' views hold."""

    info: SealInfo
    views: Mapping[bytes, int]  # event id -> bits of the seals whose causal past holds it
    masks: tuple[int, ...]  # per sealing teller: the bits of its counting seals

    def admits(self, ev: Event) -> bool:
        """Whether ``ev`` may count in this window: always when unsealed, else only in
        the view of more than half of the tellers (s.10.3)."""
        if not self.info.sealed:
            return True
        m = self.views.get(ev.id, 0)
        if not m:
            return False
        seen = 0
        for tm in self.masks:
            if m & tm:
                seen += 1
        return 2 * seen > self.info.tellers


class Engine:
    def __init__(self, record: Record, tally: TallyFn | None = None) -> None:
        self.record = record
        if tally is None:
            if not _DEFAULT_TALLY:  # imier.consensus (the package) registers it on import
                raise LocalError("no tally registered: import imier.consensus first")
            tally = _DEFAULT_TALLY[0]
        self._tally = tally
        self._charters: dict[tuple[bytes, int], Charter] = {}
        self._at: dict[tuple[bytes, int], "ProposalResult | None"] = {}
        self._busy: set[tuple[bytes, int]] = set()
        self._settled: dict[bytes, tuple[int, "ProposalResult"]] = {}
        self._by_body: dict[bytes, list[Event]] | None = None
        self._views: dict[bytes, tuple[dict[bytes, int], dict[bytes, int]]] = {}
        self._tellers: dict[tuple[bytes, int], frozenset[bytes]] = {}
        self._devices: dict[tuple[bytes, tuple[tuple[int, bytes], ...]], Devices] = {}
        self._scope: dict[bytes, frozenset[bytes]] = {}
        self._consent: dict[tuple[bytes, bytes, int], list[int]] = {}

    # -- earlier proposals, as of a time (memoised) ---------------------------------

    def final(self, pid: bytes) -> "ProposalResult | None":
        """The outcome of proposal ``pid`` once every window has closed, or None if void."""
        return self.at(pid, FOREVER)

    def at(self, pid: bytes, t: int) -> "ProposalResult | None":
        """Proposal ``pid`` as of ``t`` (None if void). Past its horizon (every window
        closed and sealable, no recall aimed at it) the answer no longer changes and
        is shared."""
        p = self.record.proposals.get(pid)
        if p is None:
            return None
        settled = self._settled.get(pid)
        if settled is not None and t >= settled[0]:
            return settled[1]
        h = self._horizon(p)
        key = (pid, t if h is None or t < h else h)
        if key in self._at:
            return self._at[key]
        if key in self._busy:
            raise LadderError("a proposal's tally depends on itself")
        self._busy.add(key)
        try:
            try:
                res: ProposalResult | None = self._tally(self, pid, key[1])
            except NotAProposal:
                res = None
        finally:
            self._busy.discard(key)
        self._at[key] = res
        if res is not None and h is not None and res.state in FINAL:
            # Final, every window closed and past its seal window: as of any later time
            # the answer is the same (no recall is aimed at it: h is not None).
            c = res.contention_window
            last = max(c.end if c is not None else 0, res.closed_at or 0,
                       res.calendar.vote_window(1).end,  # a withdrawal is aimed at round 1
                       res.rounds[-1].vote_window.end if res.rounds else 0)
            # (with no tellers at any of its closes, no seal can come to change it)
            settle = last + (self.charter_at(p.body_id, p.ts).seal_window if res.has_tellers else 0)
            if key[1] >= settle:
                self._settled[pid] = (settle, res)
        return res

    def _horizon(self, p: Event) -> int | None:
        if self.record.targeting(p.id, Recall):
            return None
        if p.body_id not in self.record.bodies:
            return None
        ch = self.charter_at(p.body_id, p.ts)
        last = p.ts + ch.discussion + 3 * ch.vote_window + 2 * ch.amendment_window + ch.contention_window
        return last + ch.seal_window + 1

    def _proposals_in(self, body: bytes) -> list[Event]:
        if self._by_body is None:
            self._by_body = defaultdict(list)
            for ev in sorted(self.record.proposals.values(), key=lambda e: e.order_key):
                self._by_body[ev.body_id].append(ev)
        return self._by_body.get(body, [])

    def _carried(self, body: bytes, kind: str, before: int) -> list[tuple[int, Event]]:
        """``(carried_at, proposal)`` of this kind in ``body``, made before ``before`` and
        carried at or before it, as the record stands at ``before``."""
        out: list[tuple[int, Event]] = []
        for ev in self._proposals_in(body):
            d = ev.data
            if ev.ts >= before:
                break
            if not isinstance(d, Propose) or d.proposal_kind != kind:
                continue
            res = self.at(ev.id, before)
            if res is not None and res.state == State.CARRIED and res.closed_at is not None:
                out.append((res.closed_at, ev))
        out.sort(key=lambda x: (x[0], x[1].order_key))
        return out

    # -- what counts where ------------------------------------------------------------

    def aimed(self, target: bytes, cls: type, home: bytes, as_of: int,
              ignored: list[Ignored], kind: str | None = None) -> list[Event]:
        """Events of ``cls`` aimed at ``target`` that have happened by ``as_of``,
        from ``home``'s record only (docs/rules.md s.8, docs/decisions.md rule 5);
        those posted in another body's record are listed in ``ignored``."""
        out = []
        for e in self.record.targeting(target, cls):
            if e.ts > as_of:
                continue
            if e.body != home and e.body_id != home:
                ignored.append(Ignored.of(e, kind or e.kind, STRAY))
                continue
            out.append(e)
        return out

    @staticmethod
    def inside(window: Window, events: Iterable[Event], ignored: list[Ignored], *,
               what: str, outside: str | None) -> list[Event]:
        """The events stamped inside ``window``; the others are listed in ``ignored``
        with the reason ``outside`` (or left for the caller when it is None)."""
        out: list[Event] = []
        for ev in events:
            if window.contains(ev.ts):
                out.append(ev)
            elif outside is not None:
                ignored.append(Ignored.of(ev, what, outside))
        return out

    def effective(self, node: VoterTree, window: Window, events: Iterable[Event], ignored: list[Ignored], *,
                  what: str, outside: str | None = None, seal: SealCheck | None = None,
                  devices: Devices = IDENTITY) -> dict[bytes, Event]:
        """The effective ballots of one window: the events inside it, those that reached
        the tellers in time if it is sealed, per person the latest counted one."""
        inside = self.inside(window, events, ignored, what=what, outside=outside)
        return self.ballots(node, self.timely(inside, ignored, seal, what=what), ignored, what=what,
                            devices=devices)

    @staticmethod
    def timely(events: list[Event], ignored: list[Ignored], seal: SealCheck | None, *,
               what: str) -> list[Event]:
        """``events`` that a sealed window's tellers saw in time; the others ignored (s.10.3)."""
        if seal is None or not seal.info.sealed:
            return events
        out = []
        for ev in events:
            if seal.admits(ev):
                out.append(ev)
            else:
                ignored.append(Ignored.of(ev, what, LATE))
        return out

    # -- charters and committees ----------------------------------------------------

    def charter_at(self, body: bytes, t: int) -> Charter:
        key = (body, t)
        if key in self._charters:
            return self._charters[key]
        info = self.record.bodies.get(body)
        try:
            charter = DEFAULT_CHARTER.with_changes(info.changes if info else {})
        except Rejected:
            charter = DEFAULT_CHARTER  # an incoherent founding charter is refused whole
        for at, ev in self._carried(body, "charter", t):
            if at > t:
                continue
            assert isinstance(ev.data, Propose) and ev.data.charter is not None
            try:
                charter = charter.with_changes(ev.data.charter)
            except Rejected:
                pass  # rule 2: refused, the charter stays as it was
        self._charters[key] = charter
        return charter

    def committee_until(self, body: bytes, t: int) -> int | None:
        """When a committee sunsets, as known at ``t`` (None: not a committee)."""
        info = self.record.bodies.get(body)
        if info is None or info.kind != "committee":
            return None
        expiry = info.founded + self.charter_at(body, info.founded).mandate_term
        renewer = info.parent if info.parent is not None else body
        assert renewer is not None
        for at, ev in self._carried(renewer, "renew", t):
            assert isinstance(ev.data, Propose)
            if ev.data.committee != body or at > t or at >= expiry:
                continue
            expiry = at + self.charter_at(body, ev.ts).mandate_term
        return expiry

    def alive(self, body: bytes, t: int) -> bool:
        until = self.committee_until(body, t)
        return until is None or t < until

    # -- who votes ----------------------------------------------------------------------

    def tree(self, body: bytes, t0: int, start: int, _path: frozenset[bytes] = frozenset()) -> VoterTree | None:
        """The bodies and people voting on a proposal of ``body`` (made at ``t0``)
        in a window opening at ``start`` (rule 4)."""
        r = self.record
        info = r.bodies.get(body)
        if info is None:
            return None
        charter = self.charter_at(body, t0)
        if info.base:
            people: frozenset[bytes] = frozenset()
            if self.alive(body, t0):
                people = frozenset(r.members_at(body, t0) & r.members_at(body, start))
            return VoterTree(body=body, base=True, charter=charter, people=people)
        parts: list[VoterTree] = []
        for part in sorted(self.parts_at(body, t0) & self.parts_at(body, start)):
            if part in _path or part == body:
                continue
            n = self.tree(part, t0, start, _path | {body})
            if n is not None:
                parts.append(n)
        return VoterTree(body=body, base=False, charter=charter, parts=tuple(parts))

    def reason(self, node: VoterTree, ev: Event, devices: Devices = IDENTITY) -> str | None:
        """Why ``ev`` (a ballot, standing or amendment inside its window) does not count."""
        return self._why(node.everyone(), node.bases(), ev, devices)

    def _why(self, everyone: frozenset[bytes], bases: Mapping[bytes, tuple[bytes, ...]], ev: Event,
             devices: Devices = IDENTITY) -> str | None:
        r = self.record
        if not r.counted(ev):
            return FORKED
        author = ev.author if devices is IDENTITY else devices.person(ev.author, ev.ts)
        if author is None:
            return "its key no longer acts for anyone: it was unlinked (docs/rules.md s.11)"
        if author not in everyone:
            return "not eligible: not a member at the proposal's timestamp and the window's opening"
        member_at = r.member_at
        for b in bases.get(author, ()):
            if member_at(b, author, ev.ts):
                return None
        return "made after its author left the body"

    def ballots(
        self, node: VoterTree, events: Iterable[Event], ignored: list[Ignored], *, what: str,
        devices: Devices = IDENTITY,
    ) -> dict[bytes, Event]:
        """Effective ballot per person among ``events`` (already inside the window)."""
        best: dict[bytes, Event] = {}
        everyone, bases, why_not = node.everyone(), node.bases(), self._why
        same = devices is IDENTITY
        for ev in events:
            why = why_not(everyone, bases, ev, devices)
            if why is not None:
                ignored.append(Ignored.of(ev, what, why))
                continue
            person = ev.author if same else devices.person(ev.author, ev.ts)
            assert person is not None
            old = best.get(person)
            if old is None or ev.order_key > old.order_key:
                best[person] = ev
        return best

    def present(self, best: dict[bytes, Event]) -> Present:
        return _Look(self.record.spans, best)

    # -- federation by consent (s.9.2) ------------------------------------------------

    def consent(self, part: bytes, fed: bytes, t: int) -> list[int]:
        """Flat spans ``[start, end)`` during which ``part`` has consented to be in ``fed``:
        from the carrying of its ``federate`` proposals naming ``fed`` (join true opens,
        join false closes), as its record stands at ``t``."""
        key = (part, fed, t)
        got = self._consent.get(key)
        if got is not None:
            return got
        steps: list[tuple[int, tuple[int, bytes], bool]] = []
        for q in self._proposals_in(part):
            if q.ts >= t:
                break
            d = q.data
            if not isinstance(d, Propose) or d.proposal_kind != "federate" or d.federation != fed:
                continue
            res = self.at(q.id, t)
            if res is not None and res.state == State.CARRIED and res.closed_at is not None:
                steps.append((res.closed_at, q.order_key, bool(d.join)))
        steps.sort()
        spans: list[int] = []
        for at, _, join in steps:
            open_ = bool(spans) and spans[-1] == FOREVER
            if join and not open_:
                spans += [at, FOREVER]
            elif not join and open_:
                spans[-1] = at
        self._consent[key] = spans
        return spans

    def parts_at(self, fed: bytes, t: int) -> set[bytes]:
        """Member bodies of federation ``fed`` at ``t``: named by it and consenting (s.9.2)."""
        return {c for c in self.record.members_at(fed, t) if within_spans(self.consent(c, fed, t), t)}

    def invitations(self, body: bytes, t: int) -> list[bytes]:
        """Federations that name ``body`` at ``t`` without its consent (pending invitations)."""
        r = self.record
        out = []
        for fed, info in r.bodies.items():
            if info.base or fed == body:
                continue
            if r.member_at(fed, body, t) and not within_spans(self.consent(body, fed, t), t):
                out.append(fed)
        return sorted(out)

    # -- people and their devices (s.11) ---------------------------------------------

    def scope(self, body: bytes) -> frozenset[bytes]:
        """``body`` and every body that was ever under it (where its links count)."""
        got = self._scope.get(body)
        if got is None:
            out: set[bytes] = set()
            todo = [body]
            while todo:
                b = todo.pop()
                if b in out:
                    continue
                out.add(b)
                info = self.record.bodies.get(b)
                if info is not None and not info.base:
                    todo.extend(self.record.spans(b).keys())
            got = self._scope[body] = frozenset(out)
        return got

    def devices(self, body: bytes, cut: int) -> Devices:
        """Who each key acts for in ``body``'s tree: links and unlinks in the records
        of ``body`` and the bodies under it, and the recoveries carried before ``cut``."""
        r = self.record
        scope = self.scope(body)
        links = [e for e in r.devices if e.body in scope]
        recovers: list[tuple[int, Event]] = []
        for b in scope:
            info = r.bodies.get(b)
            if info is None or not info.base:
                continue
            for p in self._proposals_in(b):
                if p.ts >= cut:
                    break
                d = p.data
                if isinstance(d, Propose) and d.proposal_kind == "recover":
                    res = self.at(p.id, cut - 1)
                    if res is not None and res.state == State.CARRIED and res.closed_at is not None:
                        recovers.append((res.closed_at, p))
        if not links and not recovers:
            return IDENTITY
        key = (body, tuple(sorted((at, p.id) for at, p in recovers)))
        got = self._devices.get(key)
        if got is not None:
            return got
        dev = Devices()
        steps: list[tuple[int, bytes, Event | None, Event | None]] = [
            (e.ts, e.id, e, None) for e in links
        ] + [(at, p.id, None, p) for at, p in recovers]
        steps.sort(key=lambda s: (s[0], s[1]))
        for ts, _, ev, rec in steps:
            if ev is not None:
                actor = dev.person(ev.author, ts)
                if actor is None or not r.counted(ev):
                    continue
                d = ev.data
                if isinstance(d, Link):
                    dev._link(actor, d.device, ts)
                else:
                    dev._unlink(actor, d.device, ts)  # type: ignore[union-attr]
            else:
                assert rec is not None and isinstance(rec.data, Propose)
                person, new = rec.data.person, rec.data.new_key
                assert person is not None and new is not None
                for k in dev.devices_of(person, ts):
                    dev._unlink(person, k, ts)
                dev._unlink(person, person, ts)
                dev._link(person, new, ts)
        self._devices[key] = dev
        return dev

    # -- tellers and seals (s.10) ------------------------------------------------------

    def tellers(self, body: bytes, t: int) -> frozenset[bytes]:
        """Holders at ``t`` of in-force ``teller`` mandates of ``body``, as the record
        stood just before ``t``."""
        key = (body, t)
        got = self._tellers.get(key)
        if got is not None:
            return got
        out: set[bytes] = set()
        for p in self._proposals_in(body):
            if p.ts >= t:
                break
            d = p.data
            if not isinstance(d, Propose) or d.proposal_kind not in ("mandate", "draw"):
                continue
            if (d.task or d.text) != TELLER_TASK:
                continue
            res = self.at(p.id, t - 1)
            if res is None or res.state not in FINAL:
                continue
            for m in res.mandates:
                if m.task == TELLER_TASK and m.active(t):
                    out.add(m.holder)
        got = self._tellers[key] = frozenset(out)
        return got

    def views(self, body: bytes) -> tuple[dict[bytes, int], dict[bytes, int]]:
        """``(views, bits)`` of ``body``'s record: each seal event gets one bit; an event's
        view mask holds the bits of every seal whose causal past (``heads`` and ``prev``,
        recursively) contains it. One pass over the record in reverse ``(ts, id)``
        order (parents never later than children, s.8); parents with the same
        timestamp seen before their child are caught up by a small work list."""
        got = self._views.get(body)
        if got is not None:
            return got
        r = self.record
        evs = r.of_body(body)
        bits: dict[bytes, int] = {}
        for ev in evs:
            if isinstance(ev.data, Seal):
                bits[ev.id] = 1 << len(bits)
        mask: dict[bytes, int] = {}
        done: set[bytes] = set()
        again: list[bytes] = []
        events = r.events

        def edges(ev: Event) -> tuple[bytes, ...]:
            d = ev.data
            return ev.prev + d.heads if isinstance(d, Seal) else ev.prev

        get = mask.get
        for ev in reversed(evs):
            eid = ev.id
            done.add(eid)
            m = get(eid, 0)
            if eid in bits:
                m |= bits[eid]
            if not m:
                continue
            mask[eid] = m
            for p in (ev.prev if eid not in bits else edges(ev)):
                old = mask.get(p, 0)
                new = old | m
                if new != old:
                    mask[p] = new
                    if p in done:
                        again.append(p)
        while again:
            q = again.pop()
            qev = events.get(q)
            if qev is None:
                continue
            m = mask[q]
            for p in edges(qev):
                old = mask.get(p, 0)
                new = old | m
                if new != old:
                    mask[p] = new
                    again.append(p)
        self._views[body] = (mask, bits)
        return mask, bits

    def seal(self, body: bytes, target: bytes, name: str, window: Window, seal_window: int,
             as_of: int, devices: Devices = IDENTITY) -> SealCheck | None:
        """The seals of one window (None while it is open)."""
        if not window.closed(as_of):
            return None
        close = window.end
        tellers = self.tellers(body, close)
        by: dict[bytes, int] = {}
        if tellers:
            seals = self.record.seals.get((target, name), ())
            bits: dict[bytes, int] | None = None
            for s in seals:
                if s.body != body or not (close <= s.ts < close + seal_window) or s.ts > as_of:
                    continue
                if not self.record.counted(s):
                    continue
                who = devices.person(s.author, s.ts)
                if who is None or who not in tellers:
                    continue
                if bits is None:
                    _, bits = self.views(body)
                by[who] = by.get(who, 0) | bits[s.id]
        n = len(tellers)
        info = SealInfo(window=name, tellers=n, sealed_by=len(by), sealed=2 * len(by) > n)
        views: Mapping[bytes, int] = self.views(body)[0] if info.sealed else {}
        return SealCheck(info=info, views=views, masks=tuple(by[k] for k in sorted(by)))


class _Look:
    """``present(body, person)``: the person's counted choice in that base body. Verdicts,
    counted ids, grievances and contention ask the same (body, person) pairs again: each
    is worked out once. ``voters`` lets :func:`~.verdict.judge` ask only about people
    who have an effective ballot."""

    __slots__ = ("spans", "best", "memo", "voters")

    def __init__(self, spans: Callable[[bytes], Mapping[bytes, list[int]]], best: dict[bytes, Event]) -> None:
        self.spans = spans
        self.best = best
        self.memo: dict[bytes, dict[bytes, str | None]] = {}
        self.voters = best.keys()

    def __call__(self, body: bytes, person: bytes) -> str | None:
        seen = self.memo.get(body)
        if seen is None:
            seen = self.memo[body] = {}
        elif person in seen:
            return seen[person]
        ev = self.best.get(person)
        choice = None
        if ev is not None and within_spans(self.spans(body).get(person), ev.ts):
            choice = getattr(ev.data, "choice", None)
        seen[person] = choice
        return choice
