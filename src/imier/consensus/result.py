"""What a tally says about one proposal: frozen results, their JSON and the sentence.

The JSON keys of SIMULATE.md ("state", "decided_round", "version", "text",
"rounds" with "round", "passed", "support", "participation", "bodies",
"grievances", "amendments") are produced here and nowhere else; `status
--json` adds "id", "body", "title" and the extra keys listed in
:meth:`ProposalResult.to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .ladder import FINAL, STATES, Calendar, Window
from .verdict import ContentionResult, Verdict

__all__ = [
    "Grievance",
    "AmendmentResult",
    "RoundResult",
    "Ignored",
    "Mandate",
    "Draw",
    "RecallResult",
    "ProposalResult",
    "when",
    "SIMULATE_KEYS",
]

SIMULATE_KEYS = ("state", "decided_round", "version", "text", "rounds")
OPEN_PHASES = (None, "discussion", "vote", "amend", "contention")
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

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed and not self.open


@dataclass(frozen=True, kw_only=True)
class Ignored:
    id: bytes
    author: bytes
    kind: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id.hex(), "author": self.author.hex(), "kind": self.kind,
                "reason": self.reason}


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

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        return {"id": self.id.hex(), "holder": self.holder.hex(), "reason": self.reason,
                "window": list(self.window), "open": self.open, "passed": self.passed,
                "support": v.support.text(), "participation": v.participation.text()}


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

    def round_json(self, r: RoundResult, names: Mapping[bytes, str]) -> dict[str, Any]:
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
        return doc

    def simulate_json(self, names: Mapping[bytes, str]) -> dict[str, Any]:
        """Exactly the document of SIMULATE.md."""
        return {
            "state": self.state,
            "decided_round": self.decided_round,
            "version": self.version,
            "text": self.text,
            "rounds": [self.round_json(r, names) for r in self.rounds],
        }

    def to_json(self, body_names: Mapping[bytes, str]) -> dict[str, Any]:
        """SIMULATE.md's fields plus ``id``, ``body``, ``title`` and the details of status."""
        doc: dict[str, Any] = {
            "id": self.id.hex(), "body": self.body.hex(), "title": self.title,
            **self.simulate_json(body_names),
        }
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
            doc["contention"] = {"start": c.start.text(), "support": c.now.text(),
                                 "lowest": c.lowest.text(), "changes": c.changes,
                                 "tabled_at": c.tabled_at}
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

