"""Sealing by the node itself (docs/rules.md s.10.5): which windows this node's
tellers should seal now, and the seal events that do it.

The daemon calls :func:`auto_seal` periodically (setting ``auto_seal``, default
true) and ``imier seal`` calls :func:`due_seals` / :func:`seal_payloads`.
A window is due for a teller key held on this node when:

* the window has closed at least ``seal_delay`` ago (default 2 minutes, so
  that votes in flight at the close arrive first) and less than the body's
  ``seal_window`` ago (a later seal would not count);
* the key acts (itself or as a linked device) for a teller of the body at the
  window's close;
* that key has no seal for the window yet.

A seal names the heads of the body's record as this node holds them; more
than :data:`MAX_SEAL_HEADS` heads are split over several seals (the teller's
view is their union). Reads the store and signs; the decision itself is the
pure :mod:`imier.consensus` engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from nacl.signing import SigningKey

from ..consensus import Engine, NotAProposal, ProposalResult, Record, WindowName, tally_with
from ..consensus.ladder import Window
from ..protocol.events import TELLER_TASK, Event, Link, Propose, Seal
from ..protocol.limits import MAX_SEAL_HEADS
from ..store.author import author_event
from ..store.db import Store

__all__ = ["Due", "due_seals", "seal_payloads", "auto_seal", "nothing_due", "AUTO_SEAL", "SEAL_DELAY_MS"]

AUTO_SEAL = True  # default of the node setting ``auto_seal``
SEAL_DELAY_MS = 120_000  # default of the node setting ``seal_delay``


@dataclass(frozen=True, kw_only=True)
class Due:
    """One window that teller key ``key`` should seal."""

    body: bytes  # the proposal's body, whose record the seal goes in
    proposal: bytes  # the proposal, or the recall event for a recall's window
    window: str  # r1, a2, r2, a3, r3, c or recall
    close: int  # when the window closed (ms)
    key: bytes  # the teller's key held on this node


def _windows_of(res: ProposalResult, sw: int, recall_sw: Callable[[int], int] | None = None,
                ) -> list[tuple[bytes, str, Window, int]]:
    """``(target, name, window, seal_window)`` of every closed window of a result."""
    out: list[tuple[bytes, str, Window, int]] = []
    for r in res.rounds:
        if r.amend_window is not None and r.amend_seal is not None:
            out.append((res.id, WindowName.amend(r.round), r.amend_window, sw))
        if r.seal is not None:
            out.append((res.id, WindowName.vote(r.round), r.vote_window, sw))
    if res.contention_window is not None and res.contention_seal is not None:
        out.append((res.id, WindowName.C, res.contention_window, sw))
    for rc in res.recalls:
        if rc.seal is not None:
            out.append((rc.id, WindowName.RECALL, rc.window,
                        sw if recall_sw is None else recall_sw(rc.window.start)))
    return out


def _windows(eng: Engine, p: Event, as_of: int) -> list[tuple[bytes, str, Window, int]]:
    """``(target, name, window, seal_window)`` of every window of ``p`` closed by ``as_of``."""
    try:
        res = tally_with(eng, p.id, as_of)
    except NotAProposal:
        return []
    return _windows_of(res, eng.charter_at(p.body_id, p.ts).seal_window,
                       lambda t: eng.charter_at(p.body_id, t).seal_window)


def _is_teller_task(d: object) -> bool:
    return isinstance(d, Propose) and d.proposal_kind in ("mandate", "draw") \
        and (d.task or d.text) == TELLER_TASK


def _candidates(store: Store, body: bytes, mine: set[bytes], now: int, seal_delay: int,
                skip: set[tuple[bytes, str, bytes]]) -> set[tuple[bytes, str, bytes]] | None:
    """The cheap look (docs/performance.md, "the teller loop"): ``(target, window, key)``
    that may be due, from the body's proposals, links and seals and the kept status
    results (imier.api.read), without reading or tallying the whole record; None when
    the body has no proposal that could make a teller. A window past its seal_window
    still looks due here: the full check says not, and the caller's ``skip`` keeps it."""
    from ..api import read
    from ..store.index import Reads

    rd = Reads(store)
    if not any(_is_teller_task(e.data) for e in rd.kind_events([body], "propose")):
        return None
    devices = {e.data.device for e in rd.kind_events(store.closure(body), "link") if isinstance(e.data, Link)}
    sealed = {(e.data.proposal, e.data.window, e.author) for e in rd.kind_events([body], "seal")
              if isinstance(e.data, Seal)}
    results = read.statuses(store, now, [body])
    held = [m for r in results for m in r.mandates if m.task == TELLER_TASK]
    out: set[tuple[bytes, str, bytes]] = set()
    for r in results:
        for target, name, w, _ in _windows_of(r, 0):
            if not w.end + seal_delay <= now:
                continue
            for k in mine:
                t = (target, str(name), k)
                if t in sealed or t in skip:
                    continue
                # tellers at a close: as the record stood 1 ms before it (docs/decisions.md 30)
                if k in devices or any(m.holder == k and m.active(w.end - 1) for m in held):
                    out.add(t)
    return out


def due_seals(store: Store, keys: Iterable[bytes], now: int, *, seal_delay: int = SEAL_DELAY_MS,
              bodies: Iterable[bytes] | None = None,
              skip: set[tuple[bytes, str, bytes]] | None = None) -> list[Due]:
    """The windows that the teller keys ``keys`` (held on this node) should seal at ``now``,
    over ``bodies`` (default: every body the store holds), oldest close first.

    A body's whole record is read and tallied only when the cheap look (:func:`_candidates`)
    finds a closed window that one of ``keys`` may still have to seal. ``skip``: the
    caller's memory of ``(target, window, key)`` found not due (the daemon's loop keeps
    it across passes); it gains the candidates the full check turns down."""
    mine = set(keys)
    if not mine:
        return []
    todo = [ev.id for ev in store.bodies()] if bodies is None else list(bodies)
    memo: set[tuple[bytes, str, bytes]] = set() if skip is None else skip
    out: list[Due] = []
    for body in todo:
        maybe = _candidates(store, body, mine, now, seal_delay, memo)
        if not maybe:
            continue
        events = store.events_for_bodies(store.closure(body))
        eng = Engine(Record(events))
        found: list[Due] = []
        for p in sorted(eng.record.proposals.values(), key=lambda e: e.order_key):
            if p.body_id != body or p.ts > now:
                continue
            for target, name, w, sw in _windows(eng, p, now):
                if not (w.end + seal_delay <= now < w.end + sw):
                    continue
                tellers = eng.tellers(body, w.end)
                if not tellers:
                    continue
                dev = eng.devices(body, w.end)
                sealed = {s.author for s in eng.record.seals.get((target, name), ()) if s.body == body}
                for k in sorted(mine):
                    if k in sealed or dev.person(k, now) not in tellers:
                        continue
                    found.append(Due(body=body, proposal=target, window=str(name), close=w.end, key=k))
        memo |= maybe - {(d.proposal, d.window, d.key) for d in found}
        out += found
    out.sort(key=lambda d: (d.close, d.body, d.proposal, d.window, d.key))
    return out


def nothing_due(store: Store, key: bytes, target: Event, now: int, window: str | None = None) -> str:
    """Why ``key`` has nothing to seal for ``target`` (a proposal or a recall) at ``now``:
    the one line ``imier seal`` refuses with."""
    body = target.body_id
    eng = Engine(Record(store.events_for_bodies(store.closure(body))))
    wins: list[tuple[str, Window, int]] = []
    for p in sorted(eng.record.proposals.values(), key=lambda e: e.order_key):
        if p.body_id == body and p.ts <= now:
            wins += [(str(name), w, sw) for t, name, w, sw in _windows(eng, p, now)
                     if t == target.id and (window is None or name == window)]
    which = f"window {window}" if window else "a window"
    if not wins:
        return f"{which} of it has not closed yet"
    person = eng.devices(body, now).person(key, now)
    mine = [x for x in wins if person in eng.tellers(body, x[1].end)]
    if not mine:
        n = len(eng.tellers(body, wins[-1][1].end))
        return ("you are not a teller of its body at the close of " + ", ".join(x[0] for x in wins)
                + (f" (its {n} teller{'s' if n != 1 else ''} are the holders of in-force 'teller' mandates)"
                   if n else " (it has no tellers: a carried 'draw' or 'mandate' proposal with task "
                   "'teller' makes them)"))
    late = [x[0] for x in mine if now >= x[1].end + x[2]]
    done = [x[0] for x in mine if x[0] not in late]
    parts = []
    if done:
        parts.append("you have already sealed " + ", ".join(done))
    if late:
        parts.append(", ".join(late) + " closed more than the charter's seal_window ago: a seal "
                     "now would not count")
    return "; ".join(parts)


def seal_payloads(store: Store, due: Due, now: int | None = None) -> list[Seal]:
    """The seal(s) for ``due``: the body's heads as this node holds them, sorted,
    in chunks of at most :data:`MAX_SEAL_HEADS`. With ``now`` (the node's clock),
    heads timestamped after it are left out and the events they hid stand in
    (``Store.heads_at``): a teller never signs over a future-dated event (rules
    s.9.4), which a node whose clock is right would not hold yet."""
    heads = sorted(h for _, h in (store.heads(due.body) if now is None else store.heads_at(due.body, now)))
    return [Seal(proposal=due.proposal, window=due.window, heads=tuple(heads[i:i + MAX_SEAL_HEADS]))
            for i in range(0, len(heads), MAX_SEAL_HEADS)]


def auto_seal(store: Store, signers: Mapping[bytes, SigningKey], now: int, *,
              seal_delay: int = SEAL_DELAY_MS,
              skip: set[tuple[bytes, str, bytes]] | None = None) -> list[Event]:
    """Sign and store every seal due at ``now`` for the keys in ``signers``
    (public key -> signing key); returns the new seal events (to gossip)."""
    made: list[Event] = []
    for due in due_seals(store, signers.keys(), now, seal_delay=seal_delay, skip=skip):
        for payload in seal_payloads(store, due, now):
            made.append(author_event(store, signers[due.key], body=due.body, data=payload, ts=now))
    return made
