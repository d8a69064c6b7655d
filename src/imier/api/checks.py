"""Would the decision procedure count this event? Asked before anything is signed.

The rules of what a person may do live in :mod:`imier.consensus`, not here:
every write is first built as a *draft* (the very envelope the store would
sign: author, body, ``seq``, ``prev`` and timestamp, without a signature),
added to the body's record in memory and tallied with the one proposal it
is aimed at. If the tally lists the draft among the events it does not
count, the write is refused with the tally's own reason. So "only the
proposer may withdraw", "made after round 1 closed", "the proposal made no
mandate" and "not a member" are each written once, in consensus.

Membership is the one exception: who is a member at a moment may depend on
admissions this node has not received yet, so a draft ignored only for its
author's membership (:data:`MEMBERSHIP_REASONS`) is written with a note, not
refused; it counts once the record here shows the admission.

The phase check (a vote while the proposal is in discussion) is also the
tally's: :func:`require_phase` reads ``open_phase`` of the one proposal.
"""

from __future__ import annotations

from typing import Sequence

from ..consensus import Engine, NotAProposal, ProposalResult, Record, tally_with
from ..consensus.result import when
from ..protocol.errors import LocalError
from ..protocol.events import Event, Payload
from ..store.author import choose_prev
from ..store.db import Store

__all__ = [
    "MEMBERSHIP_REASONS", "decisive", "draft", "events_for", "tally", "require_phase", "judged",
    "refusal", "proposal_refusal", "phase_words", "why_not",
]

_NO_SIG = b"\x00" * 64
# Sorts after any real id of the same millisecond: a draft never loses a tie.
_DRAFT_ID = b"\xff" * 32

#: Reasons that rest on membership, which events not yet held here can change.
MEMBERSHIP_REASONS = ("not eligible", "made after its author left", "its author is not a member")


def decisive(reason: str) -> bool:
    """Whether no event this node lacks could make the refused draft count."""
    return not reason.startswith(MEMBERSHIP_REASONS)


def draft(store: Store, author: bytes, body: bytes, data: Payload, ts: int) -> Event:
    """The unsigned stand-in of the next event ``author`` would sign in ``body`` at ``ts``
    (the node's clock): its ``prev`` leaves out heads timestamped after the clock, as
    the signed event's will (rules s.9.4), so a future-dated head cannot move the
    draft, or the vote, past the window it is checked for."""
    if store.state(body) != 1:
        raise LocalError("this node does not hold that body", hint="check the id, or sync first")
    seq, prev, min_ts = choose_prev(store, body, author, ts)
    at = max(ts, min_ts)
    return Event(author=author, body=body, ts=at, seq=seq, prev=tuple(prev), data=data,
                 sig=_NO_SIG, id=_DRAFT_ID)


def events_for(store: Store, proposal: Event) -> list[Event]:
    """The events a tally of ``proposal`` needs (read from the store's indexes: the
    base of its body's closure, which includes the parents of committees, where
    renewals are decided, and what is aimed at it), not the whole history."""
    from .read import tally_events

    return tally_events(store, proposal)


def tally(store: Store, proposal: Event, as_of: int, extra: Sequence[Event] = (), *,
          events: Sequence[Event] | None = None) -> ProposalResult:
    """The consensus result of one proposal at ``as_of`` (with ``extra`` drafts added)."""
    base = events_for(store, proposal) if events is None else events
    eng = Engine(Record([*base, *extra]))
    try:
        return tally_with(eng, proposal.id, as_of)
    except NotAProposal as exc:
        raise LocalError(f"{proposal.id.hex()[:12]} is not a valid proposal: {exc}") from None


def phase_words(r: ProposalResult) -> str:
    """Where a proposal stands, for a refusal: 'in discussion until ...', 'rejected'."""
    if r.open_phase is None:
        return r.state
    what = {"discussion": "in discussion", "vote": f"in round {r.round}'s vote",
            "amend": f"in the amendment window before round {r.round}",
            "contention": "in contention"}.get(r.open_phase, r.open_phase)
    return what + (f" until {when(r.window[1])}" if r.window else "")


def _phase(r: ProposalResult, proposal: Event, phases: tuple[str, ...], doing: str) -> None:
    if r.open_phase not in phases:
        raise LocalError(f"cannot {doing}: {r.title!r} is {phase_words(r)}, not open for that",
                         hint=f"'imier status {proposal.id.hex()[:12]}' shows its windows")


def require_phase(store: Store, proposal: Event, as_of: int, *, phases: tuple[str, ...],
                  doing: str, events: Sequence[Event] | None = None) -> ProposalResult:
    """The proposal's result, or a refusal unless one of ``phases`` is open at ``as_of``."""
    r = tally(store, proposal, as_of, events=events)
    _phase(r, proposal, phases, doing)
    return r


def why_not(r: ProposalResult, eid: bytes) -> str | None:
    """The tally's reason for not counting event ``eid``, or None."""
    for i in r.ignored:
        if i.id == eid:
            return i.reason
    return None


def judged(store: Store, proposal: Event, ev: Event, *, phases: tuple[str, ...],
           doing: str) -> tuple[ProposalResult, str | None]:
    """One tally with draft ``ev`` added, at its time: a refusal unless one of ``phases``
    is open; else the result and why the draft would not count (or None).

    For a vote or an amendment, which cannot close the window they are cast in.
    """
    r = tally(store, proposal, ev.ts, [ev])
    _phase(r, proposal, phases, doing)
    return r, why_not(r, ev.id)


def refusal(store: Store, proposal: Event, ev: Event, *,
            events: Sequence[Event] | None = None) -> tuple[str | None, ProposalResult]:
    """Why consensus would not count draft ``ev`` (aimed at ``proposal``), or None; and
    the result with the draft counted."""
    r = tally(store, proposal, ev.ts, [ev], events=events)
    return why_not(r, ev.id), r


def proposal_refusal(store: Store, ev: Event) -> tuple[str | None, ProposalResult | None]:
    """Why draft proposal ``ev`` would not be a proposal at all (or None), and its result."""
    eng = Engine(Record(events_for(store, ev)))  # the draft is added by events_for
    try:
        return None, tally_with(eng, ev.id, ev.ts)
    except NotAProposal as exc:
        return str(exc), None
