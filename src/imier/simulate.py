"""`imier simulate`: replay an assembly from a scenario file (SIMULATE.md).

There is no arithmetic here. A scenario becomes real signed events (keys
derived from the scenario's body names, so a scenario always gives the same
events), ingested into a throw-away :meth:`Store.memory`, and judged by the
same :func:`imier.consensus.tally_proposal` that `imier status` uses, as of
the end of every window.

Validation is strict and names the field: a malformed scenario raises
:class:`ScenarioError` before anything is printed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nacl.signing import SigningKey

from .consensus import ProposalResult, tally_proposal
from .consensus.ladder import Calendar
from .protocol.charter import DEFAULT_CHARTER, Charter
from .protocol.errors import LocalError, Rejected, RemoteError
from .protocol.events import (
    BASE_KINDS,
    BODY_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Payload,
    Propose,
    Stand,
    Vote,
)
from .protocol.limits import MAX_TEXT, MAX_TITLE
from .store.author import author_event
from .store.db import Store

__all__ = ["ScenarioError", "Scenario", "Simulation", "load", "load_file", "simulate", "BASE_TIME"]

# 2026-01-01T00:00Z: a fixed origin, so the same scenario gives the same events.
BASE_TIME = 1_767_225_600_000
MAX_MEMBERS = 5000
SETUP_MS = 86_400_000  # bodies are founded and filled during the day before the proposal
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Top-level keys a test suite may add; simulate reads past them.
_NOTE_KEYS = {"comment", "expect"}


class ScenarioError(RemoteError):
    """The scenario file is malformed; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("bad_scenario", message, field=field)


@dataclass(frozen=True, kw_only=True)
class BodySpec:
    name: str
    kind: str
    members: int
    parts: tuple[str, ...]
    charter: Mapping[str, str]

    @property
    def base(self) -> bool:
        return self.kind in BASE_KINDS


@dataclass(frozen=True, kw_only=True)
class Count:
    yes: int = 0
    no_minor: int = 0
    no_blocking: int = 0
    abstain: int = 0
    categories: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, kw_only=True)
class AmendSpec:
    text: str
    votes: Mapping[str, tuple[int, int, int]]  # body -> (yes, no, abstain)


@dataclass(frozen=True, kw_only=True)
class RoundSpec:
    votes: Mapping[str, Count]
    amendments: tuple[AmendSpec, ...]


@dataclass(frozen=True, kw_only=True)
class Scenario:
    bodies: Mapping[str, BodySpec]  # in the order listed
    body: str
    title: str
    text: str
    rounds: tuple[RoundSpec, ...]
    contention: tuple[tuple[str, int, int], ...]  # (body, to_no, to_yes)

    def under(self, name: str) -> list[str]:
        """``name`` and every body below it, in a stable order (parents first)."""
        out: list[str] = []

        def visit(n: str) -> None:
            if n in out:
                return
            out.append(n)
            for p in self.bodies[n].parts:
                visit(p)

        visit(name)
        return out


# -- loading -------------------------------------------------------------------------


def _map(v: Any, field: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ScenarioError(field, "must be an object")
    return v


def _keys(d: dict[str, Any], field: str, allowed: set[str], required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    for k in d:
        if k not in allowed:
            raise ScenarioError(f"{field}.{k}" if field else k, f"unknown key (expected {', '.join(sorted(allowed))})")
    for k in sorted(required):
        if k not in d:
            raise ScenarioError(f"{field}.{k}" if field else k, "is missing")


def _count(v: Any, field: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ScenarioError(field, "must be a whole number, 0 or more")
    return v


def _str(v: Any, field: str, limit: int) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ScenarioError(field, "must be non-empty text")
    if len(v) > limit:
        raise ScenarioError(field, f"is longer than {limit} characters")
    return v


def _charter(v: Any, field: str) -> dict[str, str]:
    changes: dict[str, str] = {}
    for k, raw in _map(v, field).items():
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ScenarioError(f"{field}.{k}", "ratios are strings 'a/b', durations seconds")
        changes[k] = str(raw)
    try:
        DEFAULT_CHARTER.with_changes(changes)
    except Rejected as exc:
        where = exc.field or "charter"
        if where.startswith("charter."):
            where = where[len("charter."):]
        if where == "charter":
            raise ScenarioError(field, exc.message.split(": ", 1)[-1]) from None
        raise ScenarioError(f"{field}.{where}", exc.message.split(": ", 1)[-1]) from None
    return changes


def _bodies(v: Any) -> dict[str, BodySpec]:
    raw = _map(v, "bodies")
    if not raw:
        raise ScenarioError("bodies", "names no body")
    out: dict[str, BodySpec] = {}
    for name, spec in raw.items():
        f = f"bodies.{name}"
        if not name.strip() or len(name) > 100:
            raise ScenarioError(f, "a body name is 1 to 100 characters")
        s = _map(spec, f)
        kind = s.get("kind")
        if kind not in BODY_KINDS:
            raise ScenarioError(f"{f}.kind", f"must be one of {', '.join(BODY_KINDS)}")
        charter = _charter(s.get("charter", {}), f"{f}.charter")
        if kind in BASE_KINDS:
            _keys(s, f, {"kind", "members", "charter"}, {"members"})
            members = _count(s["members"], f"{f}.members")
            if not 1 <= members <= MAX_MEMBERS:
                raise ScenarioError(f"{f}.members", f"must be between 1 and {MAX_MEMBERS}")
            out[name] = BodySpec(name=name, kind=kind, members=members, parts=(), charter=charter)
        else:
            _keys(s, f, {"kind", "parts", "charter"}, {"parts"})
            parts = s["parts"]
            if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
                raise ScenarioError(f"{f}.parts", "must be a non-empty list of body names")
            if len(set(parts)) != len(parts):
                raise ScenarioError(f"{f}.parts", "names a body twice")
            out[name] = BodySpec(name=name, kind=kind, members=0, parts=tuple(parts), charter=charter)
    for name, b in out.items():
        for i, p in enumerate(b.parts):
            if p not in out:
                raise ScenarioError(f"bodies.{name}.parts[{i}]", f"unknown body {p!r}")
    for name in out:  # a federation that contains itself, however deep
        todo, seen = list(out[name].parts), set()
        while todo:
            p = todo.pop()
            if p == name:
                raise ScenarioError(f"bodies.{name}.parts", "the federation contains itself")
            if p not in seen:
                seen.add(p)
                todo.extend(out[p].parts)
    return out


def _vote_count(v: Any, field: str, members: int) -> Count:
    d = _map(v, field)
    _keys(d, field, {"yes", "no_minor", "no_blocking", "abstain", "categories"})
    c = {k: _count(d.get(k, 0), f"{field}.{k}") for k in ("yes", "no_minor", "no_blocking", "abstain")}
    if sum(c.values()) > members:
        raise ScenarioError(field, f"{sum(c.values())} votes but the body has {members} members")
    cats: list[tuple[str, int]] = []
    for cat, n in _map(d.get("categories", {}), f"{field}.categories").items():
        if not _CATEGORY_RE.match(cat) or len(cat) > 32:
            raise ScenarioError(f"{field}.categories.{cat}", "lowercase letters, digits, '-' and '_'")
        cats.append((cat, _count(n, f"{field}.categories.{cat}")))
    if sum(n for _, n in cats) > c["no_minor"] + c["no_blocking"]:
        raise ScenarioError(f"{field}.categories", "more categorised objections than 'no' votes")
    return Count(**c, categories=tuple(cats))


def load(doc: Any) -> Scenario:
    """A parsed JSON scenario to a :class:`Scenario`, or :class:`ScenarioError`."""
    top = _map(doc, "scenario")
    _keys(top, "", {"bodies", "proposal", "rounds", "contention"} | _NOTE_KEYS, {"bodies", "proposal"})
    bodies = _bodies(top["bodies"])
    prop = _map(top["proposal"], "proposal")
    _keys(prop, "proposal", {"body", "title", "text"}, {"body", "title", "text"})
    if not isinstance(prop["body"], str) or prop["body"] not in bodies:
        raise ScenarioError("proposal.body", f"unknown body {prop['body']!r}")
    sc = Scenario(bodies=bodies, body=prop["body"], title=_str(prop["title"], "proposal.title", MAX_TITLE),
                  text=_str(prop["text"], "proposal.text", MAX_TEXT), rounds=(), contention=())
    tree = set(sc.under(sc.body))

    def base_in_tree(name: str, field: str) -> BodySpec:
        if name not in bodies:
            raise ScenarioError(field, f"unknown body {name!r}")
        if name not in tree:
            raise ScenarioError(field, f"{name!r} is not under the proposal's body {sc.body!r}")
        if not bodies[name].base:
            raise ScenarioError(field, f"{name!r} is a federation; people vote in base bodies")
        return bodies[name]

    rounds_raw = top.get("rounds", [])
    if not isinstance(rounds_raw, list) or len(rounds_raw) > 3:
        raise ScenarioError("rounds", "must be a list of at most 3 rounds")
    rounds: list[RoundSpec] = []
    for i, rr in enumerate(rounds_raw):
        f = f"rounds[{i}]"
        r = _map(rr, f)
        _keys(r, f, {"votes", "amendments"})
        votes = {
            name: _vote_count(c, f"{f}.votes.{name}", base_in_tree(name, f"{f}.votes.{name}").members)
            for name, c in _map(r.get("votes", {}), f"{f}.votes").items()
        }
        amends_raw = r.get("amendments", [])
        if not isinstance(amends_raw, list):
            raise ScenarioError(f"{f}.amendments", "must be a list")
        if i == 0 and amends_raw:
            raise ScenarioError(f"{f}.amendments", "round 1 has no amendments (they come in rounds 2 and 3)")
        amends: list[AmendSpec] = []
        for j, ar in enumerate(amends_raw):
            fa = f"{f}.amendments[{j}]"
            a = _map(ar, fa)
            _keys(a, fa, {"text", "votes"}, {"text"})
            av: dict[str, tuple[int, int, int]] = {}
            for name, c in _map(a.get("votes", {}), f"{fa}.votes").items():
                fv = f"{fa}.votes.{name}"
                spec = base_in_tree(name, fv)
                cm = _map(c, fv)
                _keys(cm, fv, {"yes", "no", "abstain"})
                t = (_count(cm.get("yes", 0), f"{fv}.yes"), _count(cm.get("no", 0), f"{fv}.no"),
                     _count(cm.get("abstain", 0), f"{fv}.abstain"))
                if sum(t) > spec.members:
                    raise ScenarioError(fv, f"{sum(t)} votes but the body has {spec.members} members")
                av[name] = t
            amends.append(AmendSpec(text=_str(a["text"], f"{fa}.text", MAX_TEXT), votes=av))
        rounds.append(RoundSpec(votes=votes, amendments=tuple(amends)))
    contention: list[tuple[str, int, int]] = []
    for name, c in _map(top.get("contention", {}), "contention").items():
        f = f"contention.{name}"
        base_in_tree(name, f)
        cm = _map(c, f)
        _keys(cm, f, {"to_no", "to_yes"})
        to_no, to_yes = _count(cm.get("to_no", 0), f"{f}.to_no"), _count(cm.get("to_yes", 0), f"{f}.to_yes")
        if to_yes > to_no:
            raise ScenarioError(f"{f}.to_yes", "only members who switched to no can switch back")
        contention.append((name, to_no, to_yes))
    return Scenario(bodies=bodies, body=sc.body, title=sc.title, text=sc.text,
                    rounds=tuple(rounds), contention=tuple(contention))


def load_file(path: str | Path) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError("scenario", f"not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError("scenario", f"not JSON (line {exc.lineno}: {exc.msg})") from None
    return load(doc)


# -- running -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Simulation:
    result: ProposalResult
    names: Mapping[bytes, str]  # body id -> scenario name
    store: Store

    def json(self) -> dict[str, Any]:
        return self.result.simulate_json(self.names)


def _key(*parts: str) -> SigningKey:
    return SigningKey(hashlib.sha256("\x00".join(("imier-simulate", *parts)).encode()).digest())


class _Clock:
    """Hands out increasing timestamps inside one window; refuses to overflow it."""

    def __init__(self, start: int, end: int, what: str) -> None:
        self.t, self.end, self.what = start, end, what

    def next(self) -> int:
        if self.t >= self.end:
            raise ScenarioError(self.what, "more events than milliseconds in the window; lengthen it")
        t = self.t
        self.t += 1
        return t


class _Run:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.store = Store.memory()
        self.ids: dict[str, bytes] = {}
        self.people: dict[str, list[SigningKey]] = {}

    def emit(self, key: SigningKey, body: bytes | None, data: Payload, ts: int) -> Event:
        ev = author_event(self.store, key, body=body, data=data, ts=ts, local=False)
        if ev.ts != ts:  # would move a vote out of its window: a bug here, not in the scenario
            raise LocalError(f"simulate: event timestamp moved from {ts} to {ev.ts}")
        return ev

    def found(self) -> None:
        clock = _Clock(BASE_TIME, BASE_TIME + SETUP_MS, "bodies")
        order: list[str] = []

        def visit(n: str) -> None:
            if n in order:
                return
            for p in self.sc.bodies[n].parts:
                visit(p)
            order.append(n)

        for n in self.sc.bodies:
            visit(n)
        organiser = _key("organiser")
        for n in order:
            b = self.sc.bodies[n]
            if b.base:
                keys = [_key(n, str(i)) for i in range(b.members)]
                self.people[n] = keys
                ev = self.emit(keys[0], None, Found(body_kind=b.kind, name=n, charter=dict(b.charter)),
                               clock.next())
                self.ids[n] = ev.id
                for k in keys[1:]:
                    self.emit(keys[0], ev.id, Admit(member=bytes(k.verify_key)), clock.next())
            else:
                parts = tuple(sorted(self.ids[p] for p in b.parts))
                ev = self.emit(organiser, None, Found(body_kind=b.kind, name=n, charter=dict(b.charter),
                                                      parts=parts), clock.next())
                self.ids[n] = ev.id

    def tally(self, as_of: int) -> ProposalResult:
        events = self.store.events_for_bodies(self.store.closure(self.ids[self.sc.body]))
        return tally_proposal(events, self.pid, as_of)

    def run(self) -> ProposalResult:
        sc = self.sc
        self.found()
        bases = [n for n in sc.under(sc.body) if sc.bodies[n].base]
        if not bases:
            raise ScenarioError("proposal.body", "no base body under it: nobody could vote")
        self.proposer = self.people[bases[0]][0]
        self.body = self.ids[sc.body]
        t0 = BASE_TIME + SETUP_MS
        p = self.emit(self.proposer, self.body, Propose(title=sc.title, text=sc.text), t0)
        self.pid = p.id
        charter: Charter = DEFAULT_CHARTER.with_changes(sc.bodies[sc.body].charter)
        cal = Calendar.of(t0, charter)
        result = self.tally(cal.t1)
        for k in (1, 2, 3):
            spec = sc.rounds[k - 1] if k <= len(sc.rounds) else RoundSpec(votes={}, amendments=())
            aw = cal.amend_window(k)
            if aw is not None:
                self.amendments(k, spec, _Clock(aw[0], aw[1], f"rounds[{k - 1}].amendments"))
                result = self.tally(aw[1])
            vw = cal.vote_window(k)
            self.votes(spec, _Clock(vw[0], vw[1], f"rounds[{k - 1}].votes"))
            result = self.tally(vw[1])
            if result.state != f"round{k + 1}":
                break
        if result.state == "contention":
            won = result.decided_round
            assert won is not None
            cw = cal.contention_window(won)
            self.contend(sc.rounds[won - 1] if won <= len(sc.rounds) else None, won,
                         _Clock(cw[0], cw[1], "contention"))
            result = self.tally(cw[1])
        return result

    def amendments(self, k: int, spec: RoundSpec, clock: _Clock) -> None:
        made = [self.emit(self.proposer, self.body, Amend(proposal=self.pid, text=a.text), clock.next())
                for a in spec.amendments]
        for a, ev in zip(spec.amendments, made, strict=True):
            for name, (yes, no, abstain) in a.votes.items():
                choices = ["yes"] * yes + ["no"] * no + ["abstain"] * abstain
                for key, choice in zip(self.people[name], choices, strict=False):
                    self.vote(key, ev.id, choice, "minor", "other", clock)

    def vote(self, key: SigningKey, target: bytes, choice: str, severity: str, category: str,
             clock: _Clock) -> None:
        data = Vote(target=target, choice=choice,
                    severity=severity if choice == "no" else None,
                    category=category if choice == "no" else None)
        self.emit(key, self.body, data, clock.next())

    def votes(self, spec: RoundSpec, clock: _Clock) -> None:
        for name, c in spec.votes.items():
            severities = ["minor"] * c.no_minor + ["blocking"] * c.no_blocking
            cats = [cat for cat, n in c.categories for _ in range(n)]
            cats += ["other"] * (len(severities) - len(cats))
            ballots = [("yes", "", "")] * c.yes + list(zip(["no"] * len(severities), severities, cats,
                                                           strict=True))
            ballots += [("abstain", "", "")] * c.abstain
            for key, (choice, sev, cat) in zip(self.people[name], ballots, strict=False):
                self.vote(key, self.pid, choice, sev, cat, clock)

    def contend(self, spec: RoundSpec | None, k: int, clock: _Clock) -> None:
        for name, to_no, to_yes in self.sc.contention:
            yes = spec.votes[name].yes if spec is not None and name in spec.votes else 0
            if to_no > yes:
                raise ScenarioError(f"contention.{name}.to_no",
                                    f"{to_no} but only {yes} voted yes in round {k}, the passing round")
            for key in self.people[name][:to_no]:
                self.emit(key, self.body, Stand(proposal=self.pid, choice="no"), clock.next())
            for key in self.people[name][:to_yes]:
                self.emit(key, self.body, Stand(proposal=self.pid, choice="yes"), clock.next())


def simulate(sc: Scenario) -> Simulation:
    """Build the scenario's events and judge them; the result as of the last window's end."""
    run = _Run(sc)
    result = run.run()
    names = {bid: name for name, bid in run.ids.items()}
    return Simulation(result=result, names=names, store=run.store)
