"""Reading where proposals stand, at a cost that follows the proposal.

:func:`status` gives the same :class:`~imier.consensus.ProposalResult` as a
tally of the whole closure of the proposal's body (:func:`scratch`), from far
fewer events, and keeps it:

1. **What a tally of P reads** (imier.store.index): its body closure's base
   events (founding, memberships, proposals, profiles, links, seals), the
   events aimed at P and at its amendments and recalls, the same under every
   structural proposal of the closure (charters, renewals, mandates...), and
   fork evidence. A proposal with a seal in its record is read with its
   whole closure (a teller's view is a causal past, docs/rules.md s.10).
2. **Kept results.** Each result is kept in the store's ``kept`` table with
   a fingerprint of those inputs (imier.store.index invariant 2, plus the
   consensus code itself) and the interval ``[lo, hi)`` of ``as_of`` around
   it in which no window opens or closes and no event aimed at P is
   timestamped: the tally is constant there. A kept result is used when its
   fingerprint matches and ``as_of`` is inside its interval; anything that can
   change it (an event aimed at P, a membership change under its body, a
   seal, a charter change) changes the fingerprint.
3. :func:`phase` answers "which window is open now" from a kept result even
   after new votes arrived, when every new event aimed at P is a vote or an
   amendment timestamped inside or after the open window (those cannot move
   the ladder): `imier vote` never tallies the body.
4. :func:`verify` recomputes from scratch and compares.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..protocol.errors import LocalError
from ..protocol.events import Event, Found, Propose, Seal, decode_stored
from ..store.index import Reads, Slim, aimed_after, digest, kind_events

if TYPE_CHECKING:
    from ..consensus import Engine, ProposalResult
    from ..store.db import Store

__all__ = ["Phase", "Detail", "Turnout", "detail", "names_in", "status", "statuses", "phase", "scratch", "verify", "Void", "proposal_ids"]

NEVER_LO = -(2**63)
NEVER_HI = 2**63 - 1
_CODE: bytes | None = None


def _code() -> bytes:
    """A digest of the code a kept result depends on: a new release recomputes."""
    global _CODE
    if _CODE is None:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parent.parent
        for sub in ("consensus", "protocol"):
            for f in sorted((root / sub).glob("*.py")):
                h.update(f.name.encode() + f.read_bytes())
        for f in (root / "store" / "index.py", Path(__file__)):
            h.update(f.read_bytes())
        _CODE = h.digest()
    return _CODE


class Void(LocalError, LookupError):
    """The id names no valid proposal (the reason is the message)."""


@dataclass(frozen=True, kw_only=True)
class Turnout:
    """One base body in one round: who was eligible, and the counted choice of those who voted."""

    round: int
    body: bytes
    eligible: tuple[bytes, ...]
    choices: tuple[tuple[bytes, str], ...]


@dataclass(frozen=True, kw_only=True)
class Detail:
    """A result with what a person at the meeting needs besides: turnout and names."""

    result: "ProposalResult"
    turnout: tuple[Turnout, ...]
    names: dict[bytes, str]  # person key -> latest profile name in the closure


@dataclass(frozen=True, kw_only=True)
class Phase:
    """Where a proposal stands now, for a command about to write (vote, stand, amend)."""

    proposal: bytes
    body: bytes
    title: str
    state: str
    open_phase: str | None  # "discussion", "vote", "amend", "contention" or None
    round: int | None
    window: tuple[int, int] | None

    @property
    def closes(self) -> int | None:
        return None if self.window is None else self.window[1]


# -- kept results: a restricted pickle of consensus dataclasses -------------------------


def _ids(blob: bytes) -> tuple[bytes, ...]:
    """A tuple of 32-byte ids, packed by :class:`_Dumper` (100k ids load in milliseconds)."""
    return tuple(blob[i : i + 32] for i in range(0, len(blob), 32))


class _Dumper(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is tuple and len(obj) > 8 and all(type(x) is bytes and len(x) == 32 for x in obj):
            return _ids, (b"".join(obj),)
        return NotImplemented


class _Loader(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_ids":
            return _ids
        if (module.startswith("imier.consensus.") or module == __name__) and name[:1].isupper():
            import importlib

            from enum import Enum

            obj = getattr(importlib.import_module(module), name)
            if isinstance(obj, type) and (hasattr(obj, "__dataclass_fields__") or issubclass(obj, Enum)
                                          or (issubclass(obj, tuple) and hasattr(obj, "_fields"))):
                return obj  # the consensus dataclasses, StrEnums (states) and NamedTuples (windows)
        if module == "fractions" and name == "Fraction":
            from fractions import Fraction

            return Fraction
        raise pickle.UnpicklingError(f"not a kept result: {module}.{name}")


def _dump(res: Any) -> bytes:
    buf = io.BytesIO()
    _Dumper(buf, protocol=5).dump(res)
    return buf.getvalue()


def _load(blob: bytes) -> "ProposalResult | str | None":
    try:
        return _Loader(io.BytesIO(blob)).load()  # type: ignore[no-any-return]
    except Exception:  # a kept row from another release or torn: recompute
        return None


# -- what one proposal reads -----------------------------------------------------------------


class _Body:
    """The base of one body closure: its fingerprint from the indexes alone (nothing
    decoded but its proposals and seals), and its events when a tally needs them."""

    def __init__(self, reads: Reads, body: bytes) -> None:
        self.reads = reads
        self.bodies = sorted(reads.store.closure(body))
        props = reads.kind_events(self.bodies, "propose")
        self.structural = reads.structural(props)
        s_targets: list[bytes] = []
        for s in self.structural:
            s_targets.extend(reads.aimed_targets(s))
        self.s_targets = s_targets
        self.forks = reads.fork_rows(self.bodies)
        self.seals: dict[bytes, int] = {}
        for e in reads.kind_events(self.bodies, "seal"):
            if isinstance(e.data, Seal):
                self.seals[e.data.proposal] = self.seals.get(e.data.proposal, 0) + 1
        self.fp = digest([
            _code(), self.bodies, reads.body_fp(self.bodies), self.structural,
            reads.target_fp(s_targets), [n for n, _ in self.forks],
        ])

    def events(self, slim: Slim | None = None) -> list[Event]:
        """Base, structural proposals' aimed events and fork evidence (without P's own),
        decoded anew on each call (``slim``: for a tally; nothing is held between bodies)."""
        evs = self.reads.base_events(self.bodies, slim)
        inside = set(self.bodies)
        evs.extend(e for e in self.reads.aimed_events(self.s_targets, slim) if e.body_id in inside)
        evs.extend(decode_stored(raw) for _, raw in self.forks)  # whole: fork evidence
        return evs

    def sealed(self, targets: Sequence[bytes]) -> bool:
        return any(t in self.seals for t in targets)


class _Reader:
    def __init__(self, store: "Store", *, indexes: bool = True) -> None:
        self.store = store
        self.reads = Reads(store, indexes=indexes)
        self._bodies: dict[bytes, _Body] = {}

    def body(self, body: bytes) -> _Body:
        b = self._bodies.get(body)
        if b is None:
            b = self._bodies[body] = _Body(self.reads, body)
        return b

    def aimed(self, pid: bytes) -> tuple[list[bytes], tuple[int, ...]]:
        targets = self.reads.aimed_targets(pid)
        one = self.reads.target_fp(targets[:1])
        two = self.reads.target_fp(targets[1:])
        return targets, one + two


def _boundaries(eng: "Engine", res: "ProposalResult", aimed: Iterable[Event]) -> list[int]:
    """Every ``x`` such that the tally may differ between ``as_of < x`` and ``as_of >= x``."""
    cal = res.calendar
    xs = [cal.t0, cal.t1]
    for k in (1, 2, 3):
        xs.extend(cal.vote_window(k))
        aw = cal.amend_window(k)
        if aw is not None:
            xs.extend(aw)
        xs.extend(cal.contention_window(k))
    for e in aimed:
        xs.append(e.ts)
        if e.kind == "recall":
            xs.append(e.ts + eng.charter_at(res.body, e.ts).vote_window)
    for m in res.mandates:
        xs.extend((m.start, m.expires))
        if m.ended is not None:
            xs.append(m.ended)
    for rc in res.recalls:
        xs.extend(rc.window)
    if res.closed_at is not None:
        xs.append(res.closed_at)
    charter = eng.charter_at(res.body, cal.t0)
    seal_window = getattr(charter, "seal_window", None)
    if isinstance(seal_window, int):  # a seal counts in [close, close + seal_window)
        xs.extend(x + seal_window for x in list(xs))
    return xs


def _next_event(evs: Iterable[Event], as_of: int) -> int:
    """The earliest timestamp after ``as_of`` among the events a tally read: a tally does
    not look at an event that has not happened yet, and counts it once the clock reaches
    it with no new event arriving (a seal, or any event, from a clock ahead of this
    node's), so a kept result holds only until then."""
    return min((e.ts for e in evs if e.ts > as_of), default=NEVER_HI)


def _interval(xs: Iterable[int], as_of: int) -> tuple[int, int]:
    lo, hi = NEVER_LO, NEVER_HI
    for x in xs:
        if x <= as_of:
            lo = max(lo, x)
        else:
            hi = min(hi, x)
    return lo, hi


def _compute(rd: _Reader, props: Sequence[Event], as_of: int,
             ) -> dict[bytes, "tuple[ProposalResult | str, int, int, list[bytes], tuple[int, ...], tuple[Turnout, ...]]"]:
    """Tally ``props`` (all of one body) from one engine over what they read."""
    from ..consensus import Engine, NotAProposal, Record, tally_with

    if not props:
        return {}
    b = rd.body(props[0].body_id)
    aimed: dict[bytes, tuple[list[bytes], tuple[int, ...]]] = {p.id: rd.aimed(p.id) for p in props}
    full = any(b.sealed(t) for t, _ in aimed.values())
    slim = None if full else Slim(prev=bool(b.seals))
    if full:  # a teller's view is a causal past: read the whole closure
        evs = rd.store.events_for_bodies(b.bodies)
    else:
        evs = b.events(slim)
    inside = set(b.bodies)
    own: dict[bytes, list[Event]] = {}
    for p in props:
        # Only the closure's records are read by a tally from scratch (an event aimed at P
        # from a body outside it is not held by every node that holds P).
        mine = [e for e in rd.reads.aimed_events(aimed[p.id][0], slim) if e.body_id in inside]
        own[p.id] = mine
        if not full:
            evs.extend(mine)
            evs.append(p)
    ahead = _next_event(evs, as_of)
    eng = Engine(Record(evs))
    out: dict[bytes, tuple[ProposalResult | str, int, int, list[bytes], tuple[int, ...], tuple[Turnout, ...]]] = {}
    for p in props:
        targets, afp = aimed[p.id]
        try:
            res: ProposalResult | str = tally_with(eng, p.id, as_of)
        except NotAProposal as exc:
            out[p.id] = (str(exc), NEVER_LO, NEVER_HI, targets, afp, ())
            continue
        assert not isinstance(res, str)
        lo, hi = _interval(_boundaries(eng, res, own[p.id]), as_of)
        hi = min(hi, ahead)
        out[p.id] = (res, lo, hi, targets, afp, _who(eng, p, res, own[p.id]))
    return out


def _who(eng: "Engine", p: Event, res: "ProposalResult", own: Sequence[Event]) -> "tuple[Turnout, ...]":
    """Who could vote in each round held, per base body, and how each counted voter voted."""
    by_id = {e.id: e for e in own}
    out: list[Turnout] = []
    for rr in res.rounds:
        if rr.verdict is None:
            continue
        node = eng.tree(p.body_id, p.ts, rr.vote_window[0])
        if node is None:
            continue
        choice: dict[bytes, str] = {}
        for vid in rr.votes:
            e = by_id.get(vid)
            if e is not None:
                choice[e.author] = str(getattr(e.data, "choice", ""))
        for n in node.walk():
            if n.base:
                people = tuple(sorted(n.people))
                out.append(Turnout(round=rr.round, body=n.body, eligible=people,
                                   choices=tuple((x, choice[x]) for x in people if x in choice)))
    return tuple(out)


def _fp(b: _Body, targets: Sequence[bytes]) -> bytes:
    return digest([b.fp, b.sealed(targets)])


def _results(store: "Store", props: Sequence[Event], as_of: int, *, keep: bool = True,
             who: bool = False, indexes: bool = True) -> dict[bytes, "tuple[ProposalResult | str, tuple[Turnout, ...]]"]:
    """Kept or computed results of ``props`` (with their turnout if ``who``), kept again
    when computed."""
    rd = _Reader(store, indexes=indexes)
    out: dict[bytes, tuple[ProposalResult | str, tuple[Turnout, ...]]] = {}
    missing: dict[bytes, list[Event]] = {}
    for p in props:
        b = rd.body(p.body_id)
        targets, afp = rd.aimed(p.id)
        row = rd.reads.kept(p.id)
        if row is not None:
            fp, a, lo, hi, blob = row
            if fp == _fp(b, targets) and a == repr(afp).encode() and lo <= as_of < hi:
                got = _load(blob)
                turnout: Any = ()
                if who and got is not None:
                    turnout = _load(rd.reads.who(p.id) or b"")
                if got is not None and turnout is not None:
                    out[p.id] = (got if isinstance(got, str) else replace(got, as_of=as_of), turnout)
                    continue
        missing.setdefault(p.body_id, []).append(p)
    rows: list[tuple[bytes, bytes, bytes, int, int, bytes, bytes]] = []
    for _, ps in missing.items():
        for pid, (res, lo, hi, targets, afp, turn) in _compute(rd, ps, as_of).items():
            out[pid] = (res, turn)
            rows.append((pid, _fp(rd.body(ps[0].body_id), targets), repr(afp).encode(), lo, hi,
                         _dump(res), _dump(turn)))
    if keep:
        rd.reads.keep(rows)
    return out


def names_in(store: "Store", body: bytes) -> dict[bytes, str]:
    """Person key -> the name of their latest ``profile`` (by ``(ts, id)``) in the body's closure."""
    best: dict[bytes, tuple[int, bytes, str]] = {}
    for e in kind_events(store.conn, store.closure(body), "profile"):
        name = getattr(e.data, "name", None)
        if isinstance(name, str):
            old = best.get(e.author)
            if old is None or (e.ts, e.id) > old[:2]:
                best[e.author] = (e.ts, e.id, name)
    return {k: v[2] for k, v in best.items()}


# -- the public reads ------------------------------------------------------------------------------


def _proposal(store: "Store", pid: bytes) -> Event:
    p = store.get(pid)
    if p is None or not isinstance(p.data, Propose) or store.state(pid) != 1:
        raise Void(f"no proposal {pid.hex()[:12]} among the accepted events")
    return p


def status(store: "Store", proposal_id: bytes, as_of: int, *, indexes: bool = True) -> "ProposalResult":
    """The state of one proposal as of ``as_of`` (ms); :class:`Void` if not a valid proposal.

    ``indexes=False``: never create the store's indexes (a write command's check)."""
    res = _results(store, [_proposal(store, proposal_id)], as_of, indexes=indexes)[proposal_id][0]
    if isinstance(res, str):
        raise Void(res)
    return res


def detail(store: "Store", proposal_id: bytes, as_of: int) -> Detail:
    """:func:`status` with the turnout of each round and the people's names."""
    p = _proposal(store, proposal_id)
    res, turnout = _results(store, [p], as_of, who=True)[proposal_id]
    if isinstance(res, str):
        raise Void(res)
    return Detail(result=res, turnout=turnout, names=names_in(store, p.body_id))


def proposal_ids(store: "Store", bodies: Iterable[bytes] | None = None, as_of: int | None = None
                 ) -> list[Event]:
    """Proposals of these bodies (default: every body held), in ``(ts, id)`` order."""
    wanted = None if bodies is None else set(bodies)
    out: list[Event] = []
    for f in store.bodies():
        if wanted is not None and f.id not in wanted:
            continue
        for e in kind_events(store.conn, [f.id], "propose"):
            if as_of is None or e.ts <= as_of:
                out.append(e)
    out.sort(key=lambda e: e.order_key)
    return out


def statuses(store: "Store", as_of: int, bodies: Iterable[bytes] | None = None
             ) -> list["ProposalResult"]:
    """Every valid proposal of these bodies (default: all held) made by ``as_of``, ordered by
    body (oldest body first) then proposal."""
    order = {f.id: i for i, f in enumerate(store.bodies())}
    props = proposal_ids(store, bodies, as_of)
    props.sort(key=lambda e: (order.get(e.body_id, 0), e.order_key))
    got = _results(store, props, as_of)
    return [r for p in props if not isinstance(r := got[p.id][0], str)]


def phase(store: "Store", proposal_id: bytes, now_ms: int) -> Phase:
    """Which window of the proposal is open at ``now_ms``, without tallying its body when
    a kept result still says (rule 3 of this module)."""
    p = _proposal(store, proposal_id)
    assert isinstance(p.data, Propose)
    rd = _Reader(store, indexes=False)
    row = rd.reads.kept(p.id)
    if row is not None:
        got = _fast_phase(rd, p, row, now_ms)
        if got is not None:
            return got
    res = status(store, proposal_id, now_ms, indexes=False)
    return Phase(proposal=res.id, body=res.body, title=res.title, state=res.state,
                 open_phase=res.open_phase, round=res.round, window=res.window)


def _fast_phase(rd: _Reader, p: Event, row: tuple[bytes, bytes, int, int, bytes], now: int) -> Phase | None:
    fp, a, lo, hi, blob = row
    targets, afp = rd.aimed(p.id)
    b = rd.body(p.body_id)
    if fp != _fp(b, targets):
        return None
    res = _load(blob)
    if res is None or isinstance(res, str) or res.window is None or res.open_phase is None:
        return None
    w0, w1 = res.window
    if not (w0 <= now < w1 and w0 <= lo and now < hi):
        return None  # hi: an event held then but timestamped later (a withdrawal) has happened
    try:
        old = tuple(int(x) for x in a.decode().strip("()").split(",") if x.strip())
    except ValueError:
        return None
    if len(old) != 6:
        return None
    c1, s1, m1 = old[:3]
    new = aimed_after(rd.store.conn, p.id, m1)
    if c1 + len(new) != afp[0] or s1 + sum(r[2] for r in new) != afp[1]:
        return None  # an older event was accepted late: recount
    for kind, ts, _ in new:
        if kind not in ("vote", "amend") or ts < w0:
            return None  # a withdrawal, a standing or a late vote can move the ladder
    return Phase(proposal=p.id, body=p.body_id, title=p.data.title, state=res.state,  # type: ignore[union-attr]
                 open_phase=res.open_phase, round=res.round, window=res.window)


def scratch(store: "Store", proposal_id: bytes, as_of: int) -> "ProposalResult":
    """The tally from scratch: every event of the body's closure, nothing kept."""
    from ..consensus import Engine, NotAProposal, Record, tally_with

    p = _proposal(store, proposal_id)
    eng = Engine(Record(store.events_for_bodies(store.closure(p.body_id))))
    try:
        return tally_with(eng, proposal_id, as_of)
    except NotAProposal as exc:
        raise Void(str(exc)) from None


def verify(store: "Store", proposal_ids: Sequence[bytes], as_of: int) -> list[tuple[bytes, bool]]:
    """For each proposal: whether the kept (or targeted) result equals the tally from scratch."""
    from ..consensus import Engine, NotAProposal, Record, tally_with

    out: list[tuple[bytes, bool]] = []
    props = [_proposal(store, pid) for pid in proposal_ids]
    got = _results(store, props, as_of)
    engines: dict[bytes, Engine] = {}
    for p in props:
        eng = engines.get(p.body_id)
        if eng is None:
            eng = engines[p.body_id] = Engine(Record(store.events_for_bodies(store.closure(p.body_id))))
        try:
            want: ProposalResult | str = tally_with(eng, p.id, as_of)
        except NotAProposal as exc:
            want = str(exc)
        mine = got[p.id][0]
        same = (mine == want) if isinstance(want, str) else (not isinstance(mine, str) and mine == want)
        out.append((p.id, same))
    return out


def body_names(store: "Store") -> dict[bytes, str]:
    return {b.id: b.data.name for b in store.bodies() if isinstance(b.data, Found)}


def tally_events(store: "Store", proposal: Event) -> list[Event]:
    """What a tally of ``proposal`` reads, from the indexes (never creating them): the
    base of its body's closure, the structural proposals' aimed events, fork evidence
    and the events aimed at ``proposal``; the whole closure when a seal names it (a
    teller's view is a causal past). The library's write checks tally this."""
    rd = _Reader(store, indexes=False)
    b = rd.body(proposal.body_id)
    targets, _ = rd.aimed(proposal.id)
    if b.sealed(targets):
        return store.events_for_bodies(b.bodies)
    inside = set(b.bodies)
    evs = list(b.events())
    evs.extend(e for e in rd.reads.aimed_events(targets) if e.body_id in inside)
    evs.append(proposal)
    seen: set[bytes] = set()
    out = []
    for e in evs:
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def turnout_json(d: Detail) -> list[dict[str, Any]]:
    """Who could vote in each round, per base body, and how each voter voted (hex keys)."""
    return [{"round": t.round, "body": t.body.hex(), "eligible": len(t.eligible),
             "voted": {k.hex(): c for k, c in t.choices},
             "not_voted": [k.hex() for k in t.eligible if k not in dict(t.choices)]}
            for t in d.turnout]


def document(store: "Store", res: "ProposalResult", as_of: int, names: Mapping[bytes, str],
             detail_of: "Detail | None" = None) -> dict[str, Any]:
    """One proposal's ``imier status --json`` document (the page's ``/api/status`` too)."""
    from .late import late_for, late_json
    from .render import facts, seal_line

    doc: dict[str, Any] = res.to_json(names)
    doc.update(facts(res, as_of))
    # every closed window's seal with what it means, and this node's late arrivals (s.10.4, s.10.6)
    doc["seals"] = [{**s.to_json(), "text": seal_line(s)} for s in res.seals()]
    doc["late"] = late_json(late_for(store, res))
    if detail_of is not None:
        doc["turnout"] = turnout_json(detail_of)
    return doc


def documents(store: "Store", as_of: int, bodies: Iterable[bytes] | None = None) -> dict[str, Any]:
    """``imier status --json`` without a proposal: every proposal of ``bodies`` (default: all held)."""
    names = body_names(store)
    return {"as_of": as_of, "proposals": [document(store, r, as_of, names)
                                          for r in statuses(store, as_of, bodies)]}


def proposal_document(store: "Store", proposal_id: bytes, as_of: int) -> dict[str, Any]:
    """``imier status PROPOSAL --json``; raises :class:`Void` if it is not a valid proposal."""
    d = detail(store, proposal_id, as_of)
    return document(store, d.result, as_of, body_names(store), d)
