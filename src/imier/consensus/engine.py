"""Shared look-ups of one tally: charters in force, committees alive, the
tree of bodies voting in a window, and the effective ballots.

Invariants:

1. Every answer is a function of the :class:`~.record.Record` alone (no
   clock): the same events give the same answers.
2. A body's charter at ``t`` is its founding charter with the changes of
   its carried ``charter`` proposals applied in order of the moment they
   were carried (ties by ``(timestamp, id)``), counting those carried at or
   before ``t``. A change that would make the charter incoherent is not
   applied. Recursion only goes to strictly earlier proposals, so it ends.
3. A committee lives ``mandate_term`` from its founding; a ``renew``
   proposal carried (in its parent, or in itself if it has none) before it
   sunsets extends it to ``mandate_term`` after the renewal.
4. The voters of a window are the members at the proposal's timestamp who
   are still members when the window opens (DECISIONS.md s.2); a body is
   under a federation for a window on the same terms. Cycles are cut.
5. A person's effective ballot in a window is their counted event with the
   greatest ``(timestamp, id)``; it counts in a base body only if they were
   a member of that body when they cast it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from ..protocol.charter import DEFAULT_CHARTER, Charter
from ..protocol.errors import LocalError, Rejected
from ..protocol.events import Event, Propose
from .ladder import LadderError
from .record import FOREVER, Record, within_spans
from .result import Ignored
from .verdict import Node, Present

if TYPE_CHECKING:
    from .result import ProposalResult

__all__ = ["Engine", "NotAProposal", "STRAY"]

STRAY = "posted in another body's record; only the proposal's body record counts"


class NotAProposal(LocalError, LookupError):
    """The id names no valid proposal in these events (one clear line in the CLI)."""


class Engine:
    def __init__(self, record: Record) -> None:
        self.record = record
        self._charters: dict[tuple[bytes, int], Charter] = {}
        self._final: dict[bytes, "ProposalResult | None"] = {}
        self._busy: set[bytes] = set()

    # -- final outcomes of earlier proposals (memoised) -----------------------------

    def final(self, pid: bytes) -> "ProposalResult | None":
        """The outcome of proposal ``pid`` once every window has closed, or None if void."""
        if pid in self._final:
            return self._final[pid]
        if pid in self._busy:
            raise LadderError("a proposal's tally depends on itself")
        self._busy.add(pid)
        try:
            from .tally import tally_with

            try:
                res: ProposalResult | None = tally_with(self, pid, FOREVER)
            except NotAProposal:
                res = None
        finally:
            self._busy.discard(pid)
        self._final[pid] = res
        return res

    def _carried(self, body: bytes, kind: str, before: int) -> list[tuple[int, Event]]:
        """``(carried_at, proposal)`` of this kind in ``body`` with timestamp < ``before``."""
        out: list[tuple[int, Event]] = []
        for ev in self.record.proposals.values():
            d = ev.data
            if ev.body_id != body or ev.ts >= before:
                continue
            if not isinstance(d, Propose) or d.proposal_kind != kind:
                continue
            res = self.final(ev.id)
            if res is not None and res.state == "carried" and res.closed_at is not None:
                out.append((res.closed_at, ev))
        out.sort(key=lambda x: (x[0], x[1].order_key))
        return out

    # -- charters and committees ----------------------------------------------------

    def aimed(self, target: bytes, cls: type, home: bytes, as_of: int,
              ignored: list[Ignored], kind: str | None = None) -> list[Event]:
        """Events of ``cls`` aimed at ``target`` that have happened by ``as_of``,
        from ``home``'s record only (DECISIONS.md s.8, docs/decisions.md rule 5);
        those posted in another body's record are listed in ``ignored``."""
        out = []
        for e in self.record.targeting(target, cls):
            if e.ts > as_of:
                continue
            if e.body != home and e.body_id != home:
                ignored.append(Ignored(id=e.id, author=e.author, kind=kind or e.kind, reason=STRAY))
                continue
            out.append(e)
        return out

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

    def tree(self, body: bytes, t0: int, start: int, _path: frozenset[bytes] = frozenset()) -> Node | None:
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
            return Node(body=body, base=True, charter=charter, people=people)
        parts: list[Node] = []
        for part in sorted(r.members_at(body, t0) & r.members_at(body, start)):
            if part in _path or part == body:
                continue
            n = self.tree(part, t0, start, _path | {body})
            if n is not None:
                parts.append(n)
        return Node(body=body, base=False, charter=charter, parts=tuple(parts))

    def reason(self, node: Node, ev: Event) -> str | None:
        """Why ``ev`` (a ballot, standing or amendment inside its window) does not count."""
        return self._why(node.everyone(), node.bases(), ev)

    def _why(self, everyone: frozenset[bytes], bases: Mapping[bytes, tuple[bytes, ...]], ev: Event) -> str | None:
        r = self.record
        if not r.counted(ev):
            return "its author forked their record in this body (DECISIONS.md s.8)"
        author = ev.author
        if author not in everyone:
            return "not eligible: not a member at the proposal's timestamp and the window's opening"
        member_at = r.member_at
        for b in bases.get(author, ()):
            if member_at(b, author, ev.ts):
                return None
        return "made after its author left the body"

    def ballots(
        self, node: Node, events: Iterable[Event], ignored: list[Ignored], *, what: str
    ) -> dict[bytes, Event]:
        """Effective ballot per person among ``events`` (already inside the window)."""
        best: dict[bytes, Event] = {}
        everyone, bases, why_not = node.everyone(), node.bases(), self._why
        for ev in events:
            why = why_not(everyone, bases, ev)
            if why is not None:
                ignored.append(Ignored(id=ev.id, author=ev.author, kind=what, reason=why))
                continue
            old = best.get(ev.author)
            if old is None or ev.order_key > old.order_key:
                best[ev.author] = ev
        return best

    def present(self, best: dict[bytes, Event]) -> Present:
        spans = self.record.spans
        # Verdicts, counted ids, grievances and contention ask the same
        # (body, person) pairs again: each is worked out once.
        memo: dict[bytes, dict[bytes, str | None]] = {}

        def look(body: bytes, person: bytes) -> str | None:
            seen = memo.get(body)
            if seen is None:
                seen = memo[body] = {}
            elif person in seen:
                return seen[person]
            ev = best.get(person)
            choice = None
            if ev is not None and within_spans(spans(body).get(person), ev.ts):
                choice = getattr(ev.data, "choice", None)
            seen[person] = choice
            return choice

        return look
