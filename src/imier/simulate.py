"""`imier simulate`: replay an assembly from a scenario file (docs/scenarios.md).

There is no arithmetic here. A scenario becomes real signed events (keys
derived from the scenario's body names, so a scenario always gives the same
events), built with the shipped harness :class:`imier.testing.World` in a
throw-away memory store, and judged by the same
:func:`imier.consensus.tally_proposal` that `imier status` uses, as of the
end of every window.

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

from .consensus import ProposalResult
from .consensus.ladder import Calendar, Window
from .protocol.charter import DEFAULT_CHARTER, Charter
from .protocol.errors import LocalError, Rejected, RemoteError
from .protocol.events import (
    BASE_KINDS,
    BODY_KINDS,
    Payload,
    Propose,
    Stand,
    Vote,
)
from .protocol.limits import MAX_TEXT, MAX_TITLE
from .store.db import Store
from .testing import Clock, WindowFull, World

__all__ = ["ScenarioError", "Scenario", "Simulation", "load", "load_file", "simulate", "BASE_TIME"]

# 2026-01-01T00:00Z: a fixed origin, so the same scenario gives the same events.
BASE_TIME = 1_767_225_600_000
MAX_MEMBERS = 5000
SETUP_MS = 86_400_000  # bodies are founded and filled during the day before the proposal
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Top-level keys a test suite may add; simulate reads past them.
_NOTE_KEYS = {"comment", "expect"}
_SEALED = ("r1", "a2", "r2", "a3", "r3", "c")


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
    without_consent: tuple[str, ...] = ()  # parts named but not consenting (s.9.2)

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
class SealSpec:
    honest: int  # tellers that seal what their node held at the close
    dishonest: int  # tellers that also put the window's late events in their seals


@dataclass(frozen=True, kw_only=True)
class LateSpec:
    """Events stamped inside a window that reach everyone after its seals."""

    window: str  # r1, r2, r3 or c
    votes: Mapping[str, Count]  # rounds: body -> late votes, cast by members who had not voted
    to_no: Mapping[str, int]  # contention: body -> yes-voters of the passing round standing no


@dataclass(frozen=True, kw_only=True)
class Scenario:
    bodies: Mapping[str, BodySpec]  # in the order listed
    body: str
    title: str
    text: str
    rounds: tuple[RoundSpec, ...]
    contention: tuple[tuple[str, int, int], ...]  # (body, to_no, to_yes)
    tellers: int = 0  # drawn by lot in the proposal's body before the proposal
    seals: Mapping[str, SealSpec] | None = None  # None: every teller seals every window
    late: tuple[LateSpec, ...] = ()

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
            _keys(s, f, {"kind", "parts", "charter", "without_consent"}, {"parts"})
            parts = s["parts"]
            if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
                raise ScenarioError(f"{f}.parts", "must be a non-empty list of body names")
            if len(set(parts)) != len(parts):
                raise ScenarioError(f"{f}.parts", "names a body twice")
            wc = s.get("without_consent", [])
            if not isinstance(wc, list) or not all(isinstance(p, str) and p in parts for p in wc):
                raise ScenarioError(f"{f}.without_consent", "must list some of the body's parts")
            out[name] = BodySpec(name=name, kind=kind, members=0, parts=tuple(parts), charter=charter,
                                 without_consent=tuple(wc))
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
    _keys(top, "", {"bodies", "proposal", "rounds", "contention", "tellers", "seals", "late"} | _NOTE_KEYS,
          {"bodies", "proposal"})
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
    tellers = _count(top.get("tellers", 0), "tellers")
    seals: dict[str, SealSpec] | None = None
    if "seals" in top:
        if not tellers:
            raise ScenarioError("seals", "needs tellers")
        seals = {}
        for w, spec in _map(top["seals"], "seals").items():
            f = f"seals.{w}"
            if w not in _SEALED:
                raise ScenarioError(f, f"a window is one of {', '.join(_SEALED)}")
            if isinstance(spec, int) and not isinstance(spec, bool):
                seals[w] = SealSpec(honest=_count(spec, f), dishonest=0)
            else:
                sm = _map(spec, f)
                _keys(sm, f, {"honest", "dishonest"})
                seals[w] = SealSpec(honest=_count(sm.get("honest", 0), f"{f}.honest"),
                                    dishonest=_count(sm.get("dishonest", 0), f"{f}.dishonest"))
            if seals[w].honest + seals[w].dishonest > tellers:
                raise ScenarioError(f, f"more sealing tellers than the {tellers} tellers")
    late_raw = top.get("late", [])
    if not isinstance(late_raw, list):
        raise ScenarioError("late", "must be a list")
    late: list[LateSpec] = []
    for i, lr in enumerate(late_raw):
        f = f"late[{i}]"
        lm = _map(lr, f)
        _keys(lm, f, {"window", "votes", "to_no"}, {"window"})
        w = lm["window"]
        if w not in ("r1", "r2", "r3", "c"):
            raise ScenarioError(f"{f}.window", "late events go in r1, r2, r3 or c")
        votes = {
            name: _vote_count(c, f"{f}.votes.{name}", base_in_tree(name, f"{f}.votes.{name}").members)
            for name, c in _map(lm.get("votes", {}), f"{f}.votes").items()
        }
        late_no = {name: _count(n, f"{f}.to_no.{name}")
                   for name, n in _map(lm.get("to_no", {}), f"{f}.to_no").items() if base_in_tree(name, f)}
        if (w == "c") != bool(late_no) or (w == "c" and votes):
            raise ScenarioError(f, "late votes go in a round, late standings (to_no) in c")
        late.append(LateSpec(window=w, votes=votes, to_no=late_no))
    return Scenario(bodies=bodies, body=sc.body, title=sc.title, text=sc.text,
                    rounds=tuple(rounds), contention=tuple(contention), tellers=tellers, seals=seals,
                    late=tuple(late))


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


def _key(name: str) -> SigningKey:
    """A simulated person's key from their name (``body NUL index``, or ``organiser``)."""
    return SigningKey(hashlib.sha256(f"imier-simulate\x00{name}".encode()).digest())


def _member(body: str, i: int) -> str:
    return f"{body}\x00{i}"


class _Replay:
    """One scenario played in an :class:`imier.testing.World` with simulate's keys:
    the bodies founded the day before the proposal, their consents, the tellers'
    draw, then every window's events, seals and late arrivals."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        # Admission on, as a node: every event is by a person of its body.
        self.w = World(admission=True, keys=_key, clock=BASE_TIME - 1)
        self.tellers: list[str] = []
        self.voted: dict[tuple[int, str], int] = {}  # (round, body) -> members who voted
        self.contended: dict[str, int] = {}  # body -> members standing no in the contention

    def people(self, name: str) -> list[str]:
        return self.w.members.get(name, [])

    def under(self, name: str) -> list[str]:
        """Everyone under body ``name``, each once, in the scenario's order."""
        out: list[str] = []
        for n in self.sc.under(name):
            out += [p for p in self.people(n) if p not in out]
        return out

    def found(self) -> int:
        """Found every body; each part of a federation consents to it (s.9.2) unless
        listed in its ``without_consent``. Returns when the last consent is carried."""
        w, sc = self.w, self.sc
        order: list[str] = []

        def visit(n: str) -> None:
            if n in order:
                return
            for p in sc.bodies[n].parts:
                visit(p)
            order.append(n)

        for n in sc.bodies:
            visit(n)
        setup = BASE_TIME + SETUP_MS
        for n in order:
            b = sc.bodies[n]
            w.body(n, kind=b.kind, charter=b.charter, parts=b.parts, consent=False,
                   people=[_member(n, i) for i in range(b.members)] if b.base else None)
        if w.t >= setup:
            raise WindowFull("bodies")
        # Consent, level by level (a federation's own consent waits for its parts').
        done = setup
        for n in order:
            b = sc.bodies[n]
            if b.base:
                continue
            whole = setup
            for i, part in enumerate(b.parts):
                if part in b.without_consent:
                    continue
                t0 = max(setup, w.ready.get(part, 0)) + 1 + i
                _, at = w.carry(part, Propose(
                    title=f"Join {n}", text=f"{part} joins {n}.", proposal_kind="federate",
                    federation=w.ids[n], join=True), t0, voters=self.under(part))
                whole = max(whole, at)
            w.ready[n] = whole
            done = max(done, whole)
        return done

    def tally(self, as_of: int) -> ProposalResult:
        return self.w.tally(self.pid, as_of)

    def run(self) -> ProposalResult:
        sc, w = self.sc, self.w
        ready = self.found()
        bases = [n for n in sc.under(sc.body) if sc.bodies[n].base]
        if not bases:
            raise ScenarioError("proposal.body", "no base body under it: nobody could vote")
        self.proposer = self.people(bases[0])[0]
        self.body = w.ids[sc.body]
        t0 = max(ready, BASE_TIME + SETUP_MS)
        if sc.tellers:
            self.tellers, at = w.tellers(sc.body, sc.tellers, t0 + 1, voters=self.under(sc.body))
            if not self.tellers:
                raise ScenarioError("tellers", "the draw of the tellers was not carried")
            t0 = at + 1
        self.pid = w.propose(sc.body, self.proposer, at=t0, title=sc.title, text=sc.text)
        charter: Charter = DEFAULT_CHARTER.with_changes(sc.bodies[sc.body].charter)
        cal = Calendar.of(t0, charter)
        result = self.tally(cal.t1)
        gap = self.gap()
        for k in (1, 2, 3):
            spec = sc.rounds[k - 1] if k <= len(sc.rounds) else RoundSpec(votes={}, amendments=())
            aw = cal.amend_window(k)
            if aw is not None:
                self.amendments(spec, Clock(aw.start + gap, aw.end, f"rounds[{k - 1}].amendments"))
                self.close(f"a{k}", aw)
                result = self.tally(aw.end + gap)
            vw = cal.vote_window(k)
            self.votes(k, spec, Clock(vw.start + (gap if aw is not None else 0),
                                      vw.end, f"rounds[{k - 1}].votes"))
            self.close(f"r{k}", vw)
            result = self.tally(vw.end + gap)
            if result.state != f"round{k + 1}":
                break
        if result.state == "contention":
            won = result.decided_round
            assert won is not None
            cw = cal.contention_window(won)
            self.contend(sc.rounds[won - 1] if won <= len(sc.rounds) else None, won,
                         Clock(cw.start + gap, cw.end, "contention"))
            self.close("c", cw)
            result = self.tally(cw.end + gap)
        return result

    def gap(self) -> int:
        """Milliseconds after a close in which the tellers seal (0 without tellers), so
        that the next phase's events come after the seals."""
        return len(self.tellers) + 1 if self.tellers else 0

    def close(self, name: str, win: Window) -> None:
        """After window ``win`` closes: the honest tellers seal what they hold, then the late
        events arrive (stamped inside ``win``, naming only events from before the close),
        then the dishonest tellers seal, naming the late events too."""
        sc, w = self.sc, self.w
        if not self.tellers and not any(lt.window == name for lt in sc.late):
            return
        before = w.heads(sc.body)
        if sc.seals is None:
            spec = SealSpec(honest=len(self.tellers), dishonest=0)
        else:
            spec = sc.seals.get(name) or SealSpec(honest=0, dishonest=0)
        at = win.end + 1
        for who in self.tellers[:spec.honest]:
            w.seal(who, self.pid, name, before, at)
            at += 1
        late: list[bytes] = []
        for lt in sc.late:
            if lt.window == name:
                late += self.late(lt, win, before)
        for who in self.tellers[spec.honest:spec.honest + spec.dishonest]:
            w.seal(who, self.pid, name, sorted(set(before) | set(late))[:1024], at)
            at += 1

    def late(self, lt: LateSpec, win: Window, before: list[bytes]) -> list[bytes]:
        """The late events of ``lt``, stamped backwards from the window's last ms, each
        naming a few of the heads held at the close."""
        out: list[bytes] = []
        t = win.end - 1
        # Tellers who sealed wrote after the close: they are never the late authors.
        tellers = set(self.tellers)

        def send(who: str, data: Payload) -> None:
            nonlocal t
            out.append(self.w.late(who, self.body, data, t, before[:7]).id)
            t -= 1

        def free(names: list[str]) -> list[str]:
            return [n for n in names if n not in tellers]

        if lt.window == "c":
            for name, n in lt.to_no.items():
                start = self.contended.get(name, 0)
                for who in free(self.people(name)[start:])[:n]:
                    send(who, Stand(proposal=self.pid, choice="no"))
            return out
        k = int(lt.window[1])
        for name, c in lt.votes.items():
            used = self.voted.get((k, name), 0)
            for who, (choice, sev, cat) in zip(free(self.people(name)[used:]), _ballots(c), strict=False):
                send(who, _vote(self.pid, choice, sev, cat))
        return out

    def amendments(self, spec: RoundSpec, clock: Clock) -> None:
        w = self.w
        made = [w.amend(self.proposer, self.pid, a.text, clock.next()) for a in spec.amendments]
        for a, aid in zip(spec.amendments, made, strict=True):
            for name, (yes, no, abstain) in a.votes.items():
                choices = ["yes"] * yes + ["no"] * no + ["abstain"] * abstain
                for who, choice in zip(self.people(name), choices, strict=False):
                    w.vote(who, aid, choice, clock.next())

    def votes(self, k: int, spec: RoundSpec, clock: Clock) -> None:
        for name, c in spec.votes.items():
            ballots = _ballots(c)
            people = self.people(name)
            self.voted[(k, name)] = min(len(ballots), len(people))
            for who, (choice, sev, cat) in zip(people, ballots, strict=False):
                self.w.vote(who, self.pid, choice, clock.next(), severity=sev, category=cat)

    def contend(self, spec: RoundSpec | None, k: int, clock: Clock) -> None:
        for name, to_no, to_yes in self.sc.contention:
            yes = spec.votes[name].yes if spec is not None and name in spec.votes else 0
            if to_no > yes:
                raise ScenarioError(f"contention.{name}.to_no",
                                    f"{to_no} but only {yes} voted yes in round {k}, the passing round")
            for who in self.people(name)[:to_no]:
                self.w.stand(who, self.pid, "no", clock.next())
            for who in self.people(name)[:to_yes]:
                self.w.stand(who, self.pid, "yes", clock.next())
            self.contended[name] = to_no


def _ballots(c: Count) -> list[tuple[str, str, str]]:
    severities = ["minor"] * c.no_minor + ["blocking"] * c.no_blocking
    cats = [cat for cat, n in c.categories for _ in range(n)]
    cats += ["other"] * (len(severities) - len(cats))
    ballots = [("yes", "", "")] * c.yes + list(zip(["no"] * len(severities), severities, cats, strict=True))
    ballots += [("abstain", "", "")] * c.abstain
    return ballots


def _vote(target: bytes, choice: str, severity: str, category: str) -> Vote:
    return Vote(target=target, choice=choice,
                severity=severity if choice == "no" else None,
                category=category if choice == "no" else None)


def simulate(sc: Scenario) -> Simulation:
    """Build the scenario's events and judge them; the result as of the last window's end."""
    run = _Replay(sc)
    try:
        result = run.run()
    except WindowFull as exc:
        raise ScenarioError(exc.what, "more events than milliseconds in the window; lengthen it") from None
    return Simulation(result=result, names=run.w.names(), store=run.w.store)
