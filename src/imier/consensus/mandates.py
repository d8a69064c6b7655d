"""Mandates, draws by lot and recalls (docs/rules.md s.5).

Invariants:

1. A mandate exists only as the outcome of a carried proposal of kind
   ``mandate`` (one holder) or ``draw`` (the ``k`` drawn). It starts when
   the proposal is carried and expires ``min(term, mandate_term)`` later,
   ``mandate_term`` being the body's at the proposal's timestamp.
2. The holder of a ``mandate`` proposal must be a member under the body at
   the proposal's timestamp; otherwise no mandate is made.
3. A draw is ``sortition(seed, candidates, k)`` over the candidates who are
   members under the body at the proposal's timestamp; ``seed`` is SHA-256 over a
   fixed label and the sorted ids of the votes counted in the round that
   passed the proposal. Nobody knows those ids before the round closes;
   anyone holding the record can recompute the draw.
4. A recall is one round, opened by a member's ``recall`` event on an
   active mandate: the vote window of the body's charter at the recall's
   timestamp, voters as of that timestamp, quorum and support greater than
   ``recall_threshold`` at every level. A recall that succeeds ends the
   mandate when its window closes.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from ..protocol.events import Event, Propose, Recall, Vote
from .engine import Engine
from .ladder import State, Window, WindowName
from .result import Draw, Ignored, Mandate, RecallResult
from .share import Rule
from .verdict import judge

__all__ = ["sortition", "draw_seed", "settle", "RECALL_RULE", "DRAW_LABEL"]

RECALL_RULE = Rule(key="recall_threshold", strict=True)
DRAW_LABEL = b"imier/draw/v1\x00"


def draw_seed(vote_ids: Sequence[bytes]) -> bytes:
    """The seed of a draw: SHA-256 of the label and the vote ids, sorted."""
    h = hashlib.sha256(DRAW_LABEL)
    for vid in sorted(vote_ids):
        h.update(vid)
    return h.digest()


def sortition(seed: bytes, candidates: Sequence[bytes], k: int) -> tuple[bytes, ...]:
    """``k`` of ``candidates`` by lot: each candidate's ticket is
    ``SHA-256(seed || candidate)``; the smallest ``k`` tickets win, in ticket order.

    Independent of the order the candidates are listed in; duplicates count once.
    """
    if k < 0:
        raise ValueError("k must not be negative")
    unique = sorted(set(candidates))
    tickets = sorted(unique, key=lambda c: (hashlib.sha256(seed + c).digest(), c))
    return tuple(tickets[:k])


def settle(
    eng: Engine, p: Event, state: str, carried_at: int | None, votes: Sequence[bytes], as_of: int
) -> tuple[tuple[Mandate, ...], Draw | None, tuple[RecallResult, ...], tuple[Ignored, ...]]:
    """Mandates, draw and recalls of a proposal (only once it is carried)."""
    d = p.data
    assert isinstance(d, Propose)
    ignored: list[Ignored] = []
    if state != State.CARRIED or carried_at is None or d.proposal_kind not in ("mandate", "draw"):
        for ev in eng.record.targeting(p.id, Recall):
            if ev.ts <= as_of:
                ignored.append(Ignored.of(ev, "recall", "the proposal made no mandate"))
        return (), None, (), tuple(ignored)
    charter = eng.charter_at(p.body_id, p.ts)
    term = min(d.term_ms or charter.mandate_term, charter.mandate_term)
    draw: Draw | None = None
    holders: tuple[bytes, ...] = ()
    if d.proposal_kind == "mandate":
        assert d.holder is not None
        tree = eng.tree(p.body_id, p.ts, p.ts)
        if tree is not None and d.holder in tree.everyone():
            holders = (d.holder,)
    else:
        assert d.k is not None
        # As for a mandate's holder (rule 2): only people under the body at the
        # proposal's timestamp can be drawn; other candidates hold no ticket.
        # ``all_members``: every one of them holds a ticket (s.10.1).
        tree = eng.tree(p.body_id, p.ts, p.ts)
        people = tree.everyone() if tree is not None else frozenset()
        if d.candidates is None:
            candidates = tuple(sorted(people))
        else:
            candidates = tuple(c for c in d.candidates if c in people)
        seed = draw_seed(votes)
        chosen = sortition(seed, candidates, d.k)
        draw = Draw(seed=seed, candidates=candidates, k=d.k, chosen=chosen,
                    votes=tuple(sorted(votes)))
        holders = chosen
    mandates = {
        h: Mandate(holder=h, task=d.task or d.text, scope=d.scope, start=carried_at,
                   expires=carried_at + term)
        for h in holders
    }
    recalls: list[RecallResult] = []
    for ev in eng.aimed(p.id, Recall, p.body_id, as_of, ignored, "recall"):
        rc = ev.data
        assert isinstance(rc, Recall)
        m = mandates.get(rc.holder)
        why = None
        if m is None:
            why = "names no holder of this mandate"
        elif not m.active(ev.ts):
            why = "the mandate was not in force at that time"
        res = None if why else _recall(eng, p, ev, as_of, ignored)
        if why is not None or res is None:
            ignored.append(Ignored.of(ev, "recall", why or "its author is not a member of the body"))
            continue
        recalls.append(res)
        if res.passed and m is not None:
            mandates[rc.holder] = Mandate(
                holder=m.holder, task=m.task, scope=m.scope, start=m.start, expires=m.expires,
                ended=res.window[1], recall=ev.id,
            )
    return tuple(mandates[h] for h in holders), draw, tuple(recalls), tuple(ignored)


def _recall(eng: Engine, p: Event, ev: Event, as_of: int, ignored: list[Ignored]) -> RecallResult | None:
    rc = ev.data
    assert isinstance(rc, Recall)
    t = ev.ts
    charter = eng.charter_at(p.body_id, t)
    window = Window(t, t + charter.vote_window)
    node = eng.tree(p.body_id, t, t)
    devices = eng.devices(p.body_id, t)
    if node is None or eng.reason(node, ev, devices) is not None:
        return None
    seal = None
    if window.closed(as_of):
        seal = eng.seal(p.body_id, ev.id, WindowName.RECALL, window, charter.seal_window, as_of,
                        eng.devices(p.body_id, window.end))
    best = eng.effective(node, window, eng.aimed(ev.id, Vote, p.body_id, as_of, ignored, "recall vote"),
                         ignored, what="recall vote", outside="outside the recall's vote window",
                         seal=seal, devices=devices)
    verdict = judge(node, eng.present(best), RECALL_RULE)
    closed = window.closed(as_of)
    return RecallResult(id=ev.id, holder=rc.holder, reason=rc.reason, window=window,
                        verdict=verdict, passed=closed and verdict.passed, open=not closed,
                        seal=seal.info if seal else None)
