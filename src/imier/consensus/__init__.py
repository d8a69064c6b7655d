"""The decision procedure of docs/rules.md as pure functions over validated events.

No I/O, no clock, no floating point: a set of accepted events and an
``as_of`` time in, verdicts out. Every node computes the same answer from
the same events, whatever order they arrived in.
"""

from typing import Iterable

from ..protocol.events import Event
from .bodies import (
    consenting_parts,
    members_of_federation,
    pending_invitations,
    person_of,
    profile_names,
    tellers_of,
)
from .engine import LATE, Devices, Engine, NotAProposal
from .ladder import FINAL, STATES, TRANSITIONS, Calendar, LadderError, Phase, State, Window, WindowName, step
from .mandates import draw_seed, sortition
from .record import Record, members_at
from .result import (
    AmendmentResult,
    Draw,
    Grievance,
    Ignored,
    Mandate,
    ProposalResult,
    RecallResult,
    RoundResult,
    SealInfo,
)
from .share import Rule, Share
from .tally import proposals, tally_proposal, tally_with
from .verdict import VoterTree, Verdict, judge

__all__ = [
    "tally_proposal", "tally_with", "proposals", "members_at", "sortition", "draw_seed",
    "committee_until", "Record", "Engine", "NotAProposal", "LadderError", "STATES", "FINAL",
    "TRANSITIONS", "step", "Calendar", "Share", "Rule", "VoterTree", "Verdict", "judge",
    "ProposalResult", "RoundResult", "AmendmentResult", "Grievance", "Ignored", "Mandate",
    "Draw", "RecallResult", "SealInfo", "State", "Phase", "Window", "WindowName", "Devices", "LATE",
    "members_of_federation", "consenting_parts", "pending_invitations", "person_of", "profile_names",
    "tellers_of",
]


def committee_until(events: Iterable[Event], body: bytes, as_of: int) -> int | None:
    """When committee ``body`` sunsets, as known at ``as_of`` (None if it is not a committee).

    ``events`` must include its parent's record, where renewals are decided.
    """
    return Engine(Record(events)).committee_until(body, as_of)
