"""From a set of events and a time to the state of one proposal (docs/rules.md s.3).

Invariants:

1. Pure: the result is a function of the set of events and ``as_of`` only.
   Events timestamped after ``as_of`` have not happened yet and are not
   looked at; a window counts as closed when ``as_of >= its end``.
2. The state moves only through :func:`.ladder.step`, input by input, in
   the order of the calendar: withdrawal, opening of round 1, each round's
   close, each standing change, the end of contention.
3. Every event aimed at the proposal that does not count is listed in
   ``ignored`` once, with the reason (outside its window, not eligible,
   forked author, not the proposer...), so that `status` can show it.
4. A proposal whose author is not, at its timestamp, a member of a base
   body under its body (or of its body), or whose charter change is
   incoherent, is void: :class:`~.engine.NotAProposal`.
5. Only events in the proposal's body record count for it (votes,
   amendments, standings, withdrawals, recalls): every node that holds the
   proposal holds that record, so events of other bodies, held by some
   nodes and not others, can never change a verdict.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from ..protocol.errors import Rejected
from ..protocol.events import Amend, Event, Propose, Stand, Vote, Withdraw
from .engine import LATE, Devices, Engine, NotAProposal, SealCheck, use_tally
from .ladder import Calendar, Input, Phase, State, Window, WindowName, step
from .mandates import settle
from .record import Record
from .result import AmendmentResult, Grievance, Ignored, ProposalResult, RoundResult, SealInfo
from .share import Rule
from .verdict import ContentionResult, VoterTree, Present, Verdict, contend, judge

__all__ = ["tally_proposal", "tally_with", "proposals", "RULES", "AMENDMENT_RULE"]

RULES = {
    1: Rule(key="first_threshold", strict=False),
    2: Rule(key="first_threshold", strict=False),
    3: Rule(key="final_threshold", strict=False),
}
AMENDMENT_RULE = Rule(key="amendment_threshold", strict=True)
# The objections a round hands on: round 1's minor ones make round 2's
# grievance categories, round 2's blocking ones round 3's (round 3 shows its
# blocking ones too, as the deal-breakers that sank it).
SEVERITY = {1: "minor", 2: "blocking", 3: "blocking"}


def tally_proposal(events: Iterable[Event], proposal_id: bytes, as_of: int) -> ProposalResult:
    """The state of proposal ``proposal_id`` as of ``as_of`` (ms), from accepted events.

    ``events`` should hold the proposal body's closure; events of other bodies
    are harmless. Raises :class:`NotAProposal` if the id is not a valid proposal.
    """
    return tally_with(Engine(Record(events)), proposal_id, as_of)


def proposals(events: Iterable[Event]) -> list[Event]:
    """The valid proposals among ``events``, in ``(timestamp, id)`` order."""
    eng = Engine(Record(events))
    out = []
    for ev in sorted(eng.record.proposals.values(), key=lambda e: e.order_key):
        try:
            _check(eng, ev)
        except NotAProposal:
            continue
        out.append(ev)
    return out


def _check(eng: Engine, p: Event) -> tuple[Calendar, VoterTree]:
    r = eng.record
    d = p.data
    assert isinstance(d, Propose)
    if p.body_id not in r.bodies:
        raise NotAProposal("the proposal's body is not among the events")
    charter = eng.charter_at(p.body_id, p.ts)
    tree = eng.tree(p.body_id, p.ts, p.ts)
    assert tree is not None
    if eng.devices(p.body_id, p.ts).person(p.author, p.ts) not in tree.everyone():
        raise NotAProposal("its author is not a member of the body at the proposal's timestamp")
    if not r.counted(p):
        raise NotAProposal("its author forked their record in this body")
    if d.charter is not None:
        try:
            charter.with_changes(d.charter)
        except Rejected as exc:
            raise NotAProposal(f"its charter change is refused: {exc}") from None
    return Calendar.of(p.ts, charter), tree


def _grievances(best: dict[bytes, Event], present: Present, node: VoterTree, severity: str) -> tuple[Grievance, ...]:
    by_cat: dict[str, list[Vote]] = defaultdict(list)
    everyone = node.everyone()
    for person, ev in best.items():
        d = ev.data
        if not isinstance(d, Vote) or d.choice != "no" or d.severity != severity:
            continue
        if any(present(b, person) for b in node.base_of(person)) and d.category:
            by_cat[d.category].append(d)
    out = []
    for cat in sorted(by_cat):
        named = Counter(v.delegate for v in by_cat[cat] if v.delegate in everyone)
        delegate = min(named, key=lambda k: (-named[k], k)) if named else None
        out.append(Grievance(category=cat, severity=severity, count=len(by_cat[cat]), delegate=delegate))
    return tuple(out)


def _counted_ids(best: dict[bytes, Event], present: Present, node: VoterTree) -> tuple[bytes, ...]:
    bases = node.bases()
    out = []
    for p, ev in best.items():
        for b in bases.get(p, ()):
            if present(b, p):
                out.append(ev.id)
                break
    out.sort()
    return tuple(out)


def _unique(items: tuple[Ignored, ...]) -> tuple[Ignored, ...]:
    seen: set[bytes] = set()
    out = []
    for i in items:
        if i.id not in seen:
            seen.add(i.id)
            out.append(i)
    return tuple(out)


class _Tally:
    """One run of the ladder; fills the fields of a :class:`ProposalResult`."""

    def __init__(self, eng: Engine, pid: bytes, as_of: int) -> None:
        r = eng.record
        p = r.proposals.get(pid)
        if p is None:
            raise NotAProposal(f"no proposal {pid.hex()[:12]} among the events")
        self.eng, self.p, self.as_of = eng, p, as_of
        self.cal, self.tree0 = _check(eng, p)
        d = p.data
        assert isinstance(d, Propose)
        self.d = d
        self.state = State.DISCUSSION
        self.charter = eng.charter_at(p.body_id, p.ts)
        self.proposer = eng.devices(p.body_id, p.ts).person(p.author, p.ts)
        self.text, self.version = d.text, 1
        self.rounds: list[RoundResult] = []
        self.ignored: list[Ignored] = []
        self.decided: int | None = None
        self.round: int | None = None
        self.phase: Phase | None = None
        self.window: Window | None = None
        self.closed_at: int | None = None
        self.open_amendments: tuple[bytes, ...] = ()
        self.passing: tuple[Verdict, dict[bytes, Event], VoterTree, tuple[bytes, ...]] | None = None
        self.contention: ContentionResult | None = None
        self.contention_window: Window | None = None
        self.contention_seal: SealInfo | None = None

    def _mine(self, target: bytes, kind: type) -> list[Event]:
        """Events of ``kind`` aimed at ``target`` that have happened by ``as_of``, from
        the proposal's body record only (rule 5)."""
        return self.eng.aimed(target, kind, self.p.body_id, self.as_of, self.ignored)

    def _ignore(self, ev: Event, kind: str, reason: str) -> None:
        self.ignored.append(Ignored.of(ev, kind, reason))

    def _devices(self, cut: int) -> Devices:
        return self.eng.devices(self.p.body_id, cut)

    def _seal(self, name: WindowName, w: Window) -> SealCheck | None:
        """The seals of window ``w`` of this proposal, once it has closed."""
        if not w.closed(self.as_of):
            return None
        return self.eng.seal(self.p.body_id, self.p.id, name, w, self.charter.seal_window, self.as_of,
                             self._devices(w.end))

    def _withdrawal(self) -> Event | None:
        r1 = self.cal.vote_window(1)
        seal = self._seal(WindowName.R1, r1)  # a withdrawal is aimed at round 1 (docs/decisions.md)
        devices = self._devices(self.p.ts)
        found: Event | None = None
        for ev in self._mine(self.p.id, Withdraw):
            if devices.person(ev.author, ev.ts) != self.proposer:
                self._ignore(ev, "withdraw", "only the proposer may withdraw")
            elif not self.eng.record.counted(ev):
                self._ignore(ev, "withdraw", "its author forked their record in this body")
            elif not Window(self.p.ts, r1.end).contains(ev.ts):
                self._ignore(ev, "withdraw", "made after round 1 closed")
            elif seal is not None and not seal.admits(ev):
                self._ignore(ev, "withdraw", LATE)
            elif found is None:
                found = ev
            else:
                self._ignore(ev, "withdraw", "already withdrawn")
        return found

    def run(self) -> None:
        self._ladder()
        self._leftovers()

    def _leftovers(self) -> None:
        """Amendments and standings the ladder never reached are listed as
        ignored too, so `status` accounts for every event aimed at the proposal."""
        judged = {a.id for r in self.rounds for a in r.amendments} | {i.id for i in self.ignored}
        for ev in self._mine(self.p.id, Amend):
            if ev.id not in judged:
                self._ignore(ev, "amend", "no amendment window was open then")
        if self.contention_window is None:
            for ev in self._mine(self.p.id, Stand):
                if ev.id not in judged:
                    self._ignore(ev, "stand", "no contention phase was open then")

    def _ladder(self) -> None:
        cal, as_of = self.cal, self.as_of
        withdraw = self._withdrawal()
        if withdraw is not None and withdraw.ts < cal.t1:
            self._finish(step(self.state, Input.WITHDRAW), withdraw.ts)
            return
        if as_of < cal.t1:
            self.phase, self.window = Phase.DISCUSSION, cal.discussion_window()
            return
        self.state = step(self.state, Input.OPEN)
        votes = self._mine(self.p.id, Vote)
        placed: set[bytes] = set()
        for k in (1, 2, 3):
            amendments: tuple[AmendmentResult, ...] = ()
            amend_seal: SealInfo | None = None
            if k > 1:
                amendments, amend_seal = self._amendments(k)
                if as_of < cal.vote_window(k).start:
                    self._open(k, Phase.AMEND, amendments)
                    break
                for a in amendments:
                    if a.adopted:
                        self.text, self.version = a.text, self.version + 1
            vw = cal.vote_window(k)
            if k == 1 and withdraw is not None:
                self._finish(step(self.state, Input.WITHDRAW), withdraw.ts)
                break
            node = self.eng.tree(self.p.body_id, self.p.ts, vw.start)
            assert node is not None
            inside = self.eng.inside(vw, votes, self.ignored, what="vote", outside=None)
            placed.update(v.id for v in inside)
            seal = self._seal(WindowName.vote(k), vw)
            devices = self._devices(vw.start)
            best = self.eng.effective(node, vw, inside, self.ignored, what="vote", seal=seal,
                                      devices=devices)
            present = self.eng.present(best)
            verdict = judge(node, present, RULES[k])
            closed = vw.closed(as_of)
            counted = _counted_ids(best, present, node)
            self.rounds.append(RoundResult(
                round=k, vote_window=vw, amend_window=cal.amend_window(k), verdict=verdict,
                grievances=_grievances(best, present, node, SEVERITY[k]), amendments=amendments,
                open=not closed, votes=counted, seal=seal.info if seal else None, amend_seal=amend_seal,
            ))
            if not closed:
                self.round, self.phase, self.window = k, Phase.VOTE, vw
                break
            if verdict.passed:
                self.state = step(self.state, Input.PASS)
                self.decided = k
                self.passing = (verdict, best, node, counted)
                self._contend(k)
                break
            self.state = step(self.state, Input.FAIL)
            if k == 3:
                self.decided = 3
                self._finish(self.state, vw.end)
        for v in votes:
            if v.id not in placed:
                self._ignore(v, "vote", "outside the vote windows of the rounds held")

    def _open(self, k: int, phase: Phase, amendments: tuple[AmendmentResult, ...]) -> None:
        aw = self.cal.amend_window(k)
        assert aw is not None
        self.round, self.phase, self.window = k, phase, aw
        self.open_amendments = tuple(a.id for a in amendments)
        self.rounds.append(RoundResult(
            round=k, vote_window=self.cal.vote_window(k), amend_window=aw, verdict=None,
            amendments=amendments, open=True,
        ))

    def _finish(self, state: State, at: int) -> None:
        self.state, self.closed_at = state, at
        self.phase = self.window = self.round = None

    def _amendments(self, k: int) -> tuple[tuple[AmendmentResult, ...], SealInfo | None]:
        aw = self.cal.amend_window(k)
        assert aw is not None
        closed = aw.closed(self.as_of)
        node = self.eng.tree(self.p.body_id, self.p.ts, aw.start)
        assert node is not None
        seal = self._seal(WindowName.amend(k), aw)
        devices = self._devices(aw.start)
        out: list[AmendmentResult] = []
        for ev in self._mine(self.p.id, Amend):
            if not aw.contains(ev.ts):
                if k == 2:  # judged once, not once per round
                    other = self.cal.amend_window(3)
                    assert other is not None
                    if not other.contains(ev.ts):
                        self._ignore(ev, "amend", "outside the amendment windows")
                continue
            if not self.eng.timely([ev], self.ignored, seal, what="amend"):
                continue
            why = self.eng.reason(node, ev, devices)
            if why is not None:
                self._ignore(ev, "amend", why)
                continue
            best = self.eng.effective(node, aw, self._mine(ev.id, Vote), self.ignored, what="amendment vote",
                                      outside="outside the amendment window", seal=seal, devices=devices)
            verdict = judge(node, self.eng.present(best), AMENDMENT_RULE)
            assert isinstance(ev.data, Amend)
            out.append(AmendmentResult(
                id=ev.id, author=ev.author, ts=ev.ts, text=ev.data.text, verdict=verdict,
                adopted=closed and verdict.passed, open=not closed,
            ))
        return tuple(out), seal.info if seal else None

    def _contend(self, k: int) -> None:
        assert self.passing is not None
        verdict, best, node_v, _ = self.passing
        cw = self.cal.contention_window(k)
        self.contention_window = cw
        node = self.eng.tree(self.p.body_id, self.p.ts, cw.start)
        assert node is not None
        present = self.eng.present(best)
        initial = {
            p: ev.data.choice
            for p, ev in best.items() if isinstance(ev.data, Vote) and any(present(b, p) for b in node_v.base_of(p))
        }
        seal = self._seal(WindowName.C, cw)
        self.contention_seal = seal.info if seal else None
        devices = self._devices(cw.start)
        changes: list[tuple[int, bytes, str]] = []
        inside = self.eng.inside(cw, self._mine(self.p.id, Stand), self.ignored, what="stand",
                                 outside="outside the contention window")
        for ev in self.eng.timely(inside, self.ignored, seal, what="stand"):
            why = self.eng.reason(node, ev, devices)
            if why is not None:
                self._ignore(ev, "stand", why)
                continue
            assert isinstance(ev.data, Stand)
            person = devices.person(ev.author, ev.ts)
            assert person is not None
            changes.append((ev.ts, person, ev.data.choice))
        self.contention = c = contend(node, verdict, initial, changes)
        if c.tabled_at is not None:
            self._finish(step(self.state, Input.FALL), c.tabled_at)
        elif cw.closed(self.as_of):
            self._finish(step(self.state, Input.CLOSE), cw.end)
        else:
            self.phase, self.window = Phase.CONTENTION, cw

    def result(self) -> ProposalResult:
        r = self.eng.record
        bodies = {n.body for n in self.tree0.walk()}
        forks = tuple(sorted(
            (f.author, f.first, f.second) for f in r.forks.values() if f.body in bodies
        ))
        mandates, draw, recalls, extra = settle(self.eng, self.p, self.state, self.closed_at,
                                                self.passing[3] if self.passing else (), self.as_of)
        return ProposalResult(
            id=self.p.id, body=self.p.body_id, title=self.d.title, kind=self.d.proposal_kind,
            proposer=self.p.author, as_of=self.as_of, calendar=self.cal, state=self.state,
            text=self.text, version=self.version, decided_round=self.decided,
            rounds=tuple(self.rounds), round=self.round, open_phase=self.phase,
            window=self.window, closed_at=self.closed_at, contention=self.contention,
            contention_window=self.contention_window, open_amendments=self.open_amendments,
            mandates=mandates, draw=draw, recalls=recalls, contention_seal=self.contention_seal,
            ignored=_unique(tuple(self.ignored) + extra), forks=forks,
        )


def tally_with(eng: Engine, pid: bytes, as_of: int) -> ProposalResult:
    t = _Tally(eng, pid, as_of)
    t.run()
    return t.result()


use_tally(tally_with)
