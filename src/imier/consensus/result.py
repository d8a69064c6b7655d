"""What a tally says about one proposal: frozen results, their JSON and the sentence.

The JSON keys of docs/scenarios.md ("state", "decided_round", "version", "text",
"rounds" with "round", "passed", "support", "participation", "bodies",
"grievances", "amendments") are produced here and nowhere else; `status
--json` adds "id", "body", "title" and the extra keys listed in
:meth:`ProposalResult.to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from ..protocol.events import Event
from .ladder import FINAL, STATES, Calendar, Phase, Window
from .verdict import ContentionResult, Verdict

__all__ = [
    "Grievance",
    "AmendmentResult",
    "RoundResult",
    "Ignored",
    "Mandate",
    "Draw",
    "RecallResult",
    "SealInfo",
    "ProposalResult",
    "when",
    "SIMULATE_KEYS",
]

SIMULATE_KEYS = ("state", "decided_round", "version", "text", "rounds")
OPEN_PHASES = (None, *Phase)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def when(ms: int) -> str:
    """A timestamp for people, in UTC, computed without floating point."""
    t = _EPOCH + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M") + (f":{t.second:02d}" if t.second else "") + " UTC"


def _name(names: Mapping[bytes, str], body: bytes) -> str:
    return names.get(body) or body.hex()[:12]


@dataclass(frozen=True, kw_only=True)
class Grievance:
    category: str
    severity: str
    count: int
    delegate: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category, "severity": self.severity, "count": self.count,
            "delegate": None if self.delegate is None else self.delegate.hex(),
        }


@dataclass(frozen=True, kw_only=True)
class AmendmentResult:
    id: bytes
    author: bytes
    ts: int
    text: str
    verdict: Verdict
    adopted: bool
    open: bool  # its window has not closed yet: 'adopted' is not decided


@dataclass(frozen=True, kw_only=True)
class RoundResult:
    round: int
    vote_window: Window
    amend_window: Window | None
    verdict: Verdict | None  # None while only the amendment window is open
    grievances: tuple[Grievance, ...] = ()
    amendments: tuple[AmendmentResult, ...] = ()
    open: bool = False
    votes: tuple[bytes, ...] = ()  # ids of the effective votes counted
    seal: "SealInfo | None" = None  # of the vote window, once closed
    amend_seal: "SealInfo | None" = None  # of the amendment window (rounds 2, 3), once closed

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed and not self.open


@dataclass(frozen=True, kw_only=True)
class Ignored:
    id: bytes
    author: bytes
    kind: str
    reason: str

    @classmethod
    def of(cls, ev: "Event", kind: str, reason: str) -> "Ignored":
        """The one way to say that ``ev``, counted as ``kind``, does not count, and why."""
        return cls(id=ev.id, author=ev.author, kind=kind, reason=reason)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id.hex(), "author": self.author.hex(), "kind": self.kind,
                "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class SealInfo:
    """Whether one closed window is sealed (docs/rules.md s.10): ``sealed_by`` of the
    ``tellers`` in force at its close have counting seals; sealed when more than half."""

    window: str  # r1, a2, r2, a3, r3, c or recall
    tellers: int
    sealed_by: int
    sealed: bool

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "sealed": self.sealed, "tellers": self.tellers,
                "sealed_by": self.sealed_by}

    def text(self) -> str:
        if self.sealed:
            return f"sealed {self.sealed_by}/{self.tellers}"
        if not self.tellers:
            return "unsealed (no tellers): a backdated event could still change it"
        return f"unsealed ({self.sealed_by}/{self.tellers} tellers sealed): a backdated event could still change it"


@dataclass(frozen=True, kw_only=True)
class Mandate:
    holder: bytes
    task: str
    scope: bytes | None
    start: int
    expires: int
    ended: int | None = None  # when a recall ended it
    recall: bytes | None = None

    def active(self, t: int) -> bool:
        end = self.expires if self.ended is None else min(self.ended, self.expires)
        return self.start <= t < end

    def to_json(self, as_of: int) -> dict[str, Any]:
        status = "active" if self.active(as_of) else (
            "recalled" if self.ended is not None and self.ended <= as_of else "expired")
        return {
            "holder": self.holder.hex(), "task": self.task,
            "scope": None if self.scope is None else self.scope.hex(),
            "start": self.start, "expires": self.expires, "ended": self.ended,
            "recall": None if self.recall is None else self.recall.hex(), "status": status,
        }


@dataclass(frozen=True, kw_only=True)
class Draw:
    seed: bytes
    candidates: tuple[bytes, ...]
    k: int
    chosen: tuple[bytes, ...]
    votes: tuple[bytes, ...]  # the vote ids the seed was hashed from, in order

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed.hex(), "k": self.k,
                "candidates": [c.hex() for c in self.candidates],
                "chosen": [c.hex() for c in self.chosen], "votes": [v.hex() for v in self.votes]}


@dataclass(frozen=True, kw_only=True)
class RecallResult:
    id: bytes
    holder: bytes
    reason: str
    window: Window
    verdict: Verdict
    passed: bool
    open: bool
    seal: "SealInfo | None" = None

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        doc = {"id": self.id.hex(), "holder": self.holder.hex(), "reason": self.reason,
               "window": list(self.window), "open": self.open, "passed": self.passed,
               "support": v.support.text(), "participation": v.participation.text()}
        if self.seal is not None:
            doc["seal"] = self.seal.to_json()
        return doc


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {"passed": v.passed, "support": v.support.text(), "participation": v.participation.text(),
            "yes": v.yes, "no": v.no, "abstain": v.abstain, "eligible": v.eligible}


def _bodies_json(v: Verdict | None, names: Mapping[bytes, str]) -> dict[str, Any]:
    """Every body under the proposal's body (the body itself when it is a base body)."""
    if v is None:
        return {}
    out: dict[str, Any] = {}
    under = [v] if v.base else [x for x in v.walk() if x is not v]
    seen: set[bytes] = set()
    for x in under:
        if x.body in seen:
            continue
        seen.add(x.body)
        key = _name(names, x.body)
        if key in out:  # two bodies with one name: tell them apart
            key = f"{key} ({x.body.hex()[:8]})"
        out[key] = _verdict_json(x)
    return out


@dataclass(frozen=True, kw_only=True)
class ProposalResult:
    id: bytes
    body: bytes
    title: str
    kind: str
    proposer: bytes
    as_of: int
    calendar: Calendar
    state: str
    text: str
    version: int
    decided_round: int | None
    rounds: tuple[RoundResult, ...]
    round: int | None  # the round in progress, if any
    open_phase: str | None  # None, "discussion", "vote", "amend", "contention"
    window: Window | None  # of the open phase
    closed_at: int | None  # when a final state was reached
    contention: ContentionResult | None = None
    contention_window: Window | None = None
    open_amendments: tuple[bytes, ...] = ()
    mandates: tuple[Mandate, ...] = ()
    draw: Draw | None = None
    recalls: tuple[RecallResult, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    forks: tuple[tuple[bytes, bytes, bytes], ...] = ()  # (author, event, event)
    contention_seal: SealInfo | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}")
        if self.open_phase not in OPEN_PHASES:
            raise ValueError(f"unknown open phase {self.open_phase!r}")
        if (self.open_phase is None) != (self.window is None):
            raise ValueError("an open phase has a window, and only an open phase")
        if (self.state in FINAL) != (self.closed_at is not None):
            raise ValueError("final states, and only they, have a closing time")
        if self.version != 1 + sum(a.adopted for r in self.rounds for a in r.amendments):
            raise ValueError("version must count the adopted amendments")

    # -- JSON ---------------------------------------------------------------------

    def seals(self) -> list[SealInfo]:
        """Every closed window's seal, in calendar order (recalls last)."""
        out: list[SealInfo] = []
        for r in self.rounds:
            out += [x for x in (r.amend_seal, r.seal) if x is not None]
        if self.contention_seal is not None:
            out.append(self.contention_seal)
        out += [rc.seal for rc in self.recalls if rc.seal is not None]
        return out

    @property
    def has_tellers(self) -> bool:
        return any(s.tellers for s in self.seals())

    def round_json(self, r: RoundResult, names: Mapping[bytes, str], *,
                   seals: bool = False) -> dict[str, Any]:
        v = r.verdict
        doc: dict[str, Any] = {
            "round": r.round,
            "passed": r.passed,
            "support": v.support.text() if v else "0/0",
            "participation": v.participation.text() if v else "0/0",
            "bodies": _bodies_json(v, names),
            "grievances": [g.to_json() for g in r.grievances],
            "amendments": [
                {"text": a.text, "adopted": a.adopted, "support": a.verdict.support.text()}
                for a in r.amendments
            ],
        }
        if r.open:
            doc["open"] = True
        if seals:
            if r.amend_seal is not None:
                doc["amendment_seal"] = r.amend_seal.to_json()
            if r.seal is not None:
                doc["seal"] = r.seal.to_json()
        return doc

    def simulate_json(self, names: Mapping[bytes, str]) -> dict[str, Any]:
        """Exactly the document of docs/scenarios.md; when the body has tellers, each closed
        window also says whether it is sealed ("seal", "amendment_seal" in the rounds, and
        "contention_seal" in the passing round)."""
        tellers = self.has_tellers
        doc: dict[str, Any] = {
            "state": self.state,
            "decided_round": self.decided_round,
            "version": self.version,
            "text": self.text,
            "rounds": [self.round_json(r, names, seals=tellers) for r in self.rounds],
        }
        if tellers and self.contention_seal is not None and self.decided_round is not None:
            # the contention phase follows the passing round: its seal is shown there
            doc["rounds"][self.decided_round - 1]["contention_seal"] = self.contention_seal.to_json()
        return doc

    def to_json(self, body_names: Mapping[bytes, str]) -> dict[str, Any]:
        """docs/scenarios.md's fields plus ``id``, ``body``, ``title`` and the details of status."""
        doc: dict[str, Any] = {
            "id": self.id.hex(), "body": self.body.hex(), "title": self.title,
            **self.simulate_json(body_names),
        }
        doc["rounds"] = [self.round_json(r, body_names, seals=True) for r in self.rounds]
        for r, rj in zip(self.rounds, doc["rounds"], strict=True):
            for a, aj in zip(r.amendments, rj["amendments"], strict=True):
                aj["id"] = a.id.hex()
        doc.update({
            "kind": self.kind,
            "proposer": self.proposer.hex(),
            "as_of": self.as_of,
            "open_phase": self.open_phase,
            "round_open": self.round,
            "window": None if self.window is None else list(self.window),
            "open_amendments": [a.hex() for a in self.open_amendments],
            "explain": self.explain(),
        })
        if self.contention is not None:
            c = self.contention
            cj: dict[str, Any] = {"start": c.start.text(), "support": c.now.text(),
                                  "lowest": c.lowest.text(), "changes": c.changes,
                                  "tabled_at": c.tabled_at}
            if self.contention_seal is not None:
                cj["seal"] = self.contention_seal.to_json()
            doc["contention"] = cj
        if self.mandates:
            doc["mandate"] = [m.to_json(self.as_of) for m in self.mandates]
        if self.draw is not None:
            doc["draw"] = self.draw.to_json()
        if self.recalls:
            doc["recall"] = [r.to_json() for r in self.recalls]
        doc["ignored"] = [i.to_json() for i in self.ignored]
        doc["forks"] = [{"author": a.hex(), "events": [x.hex(), y.hex()]} for a, x, y in self.forks]
        return doc

    # -- the sentence -----------------------------------------------------------------

    def _closed(self, k: int) -> RoundResult | None:
        for r in self.rounds:
            if r.round == k and not r.open:
                return r
        return None

    def _why(self, r: RoundResult) -> str:
        v = r.verdict
        assert v is not None
        if not v.quorum:
            return (f"round {r.round} lacked quorum ({v.participation} took part, "
                    f"{v.quorum_needed} needed)")
        sign = "≥" if v.passed else "<"
        verb = "passed" if v.passed else "failed"
        return f"round {r.round} {verb} with {v.support} {sign} {v.threshold}"

    def explain(self) -> str:
        """One sentence saying why the proposal is where it is."""
        cal = self.calendar
        if self.state == "withdrawn":
            return f"withdrawn by the proposer at {when(self.closed_at or 0)}, before round 1 closed"
        if self.state == "discussion":
            return f"in discussion; round 1 opens at {when(cal.t1)}"
        last = [self._why(r) for r in self.rounds if not r.open]
        history = "; ".join(last)
        if self.state in ("round1", "round2", "round3"):
            assert self.window is not None
            what = "amendment window" if self.open_phase == "amend" else "vote"
            head = f"round {self.round} {what} open until {when(self.window[1])}"
            return f"{head}; {history}" if history else head
        k = self.decided_round
        passed = self._closed(k) if k else None
        if self.state == "rejected":
            return f"rejected: {history}"
        assert passed is not None and passed.verdict is not None
        v = passed.verdict
        head = f"passed in round {k} with {v.support} ≥ {v.threshold}"
        c = self.contention
        if self.state == "contention":
            assert self.window is not None and c is not None
            return (f"{head}; contention open until {when(self.window[1])}, "
                    f"support now {c.now}")
        assert c is not None
        if self.state == "tabled":
            return (f"tabled in contention at {when(self.closed_at or 0)}: support fell to "
                    f"{c.now} < {c.floor}, after it {head}")
        return f"carried in round {k} with {v.support} ≥ {v.threshold}; contention closed with {c.now}"

