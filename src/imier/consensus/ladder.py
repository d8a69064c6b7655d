"""The ladder of docs/rules.md s.3 as a transition table, and its calendar.

Rules:

1. A proposal is in exactly one state of :data:`STATES` at any time.
2. The state changes only through :func:`step` on a ``(state, input)`` pair
   of :data:`TRANSITIONS`; any other pair is a bug in the caller and raises
   :class:`LadderError` (never a silent no-op, as in h2's state machine).
3. ``carried``, ``tabled``, ``rejected`` and ``withdrawn`` are final: no
   input leaves them.
4. The calendar is the proposal body's charter at the proposal's timestamp
   (docs/rules.md s.7.1). Windows are half-open ``[start, end)`` in
   milliseconds and follow each other without gaps: discussion, round 1
   vote; round 2 amendments, round 2 vote; round 3 amendments, round 3 vote;
   then, after the pass in round ``k``, contention.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ..protocol.charter import Charter
from ..protocol.errors import LocalError

__all__ = [
    "STATES",
    "FINAL",
    "INPUTS",
    "TRANSITIONS",
    "LadderError",
    "step",
    "Calendar",
    "Window",
    "State",
    "Phase",
    "Input",
    "WindowName",
]


class State(StrEnum):
    """The state of a proposal (docs/rules.md s.6). A ``str``: it compares, hashes and
    serialises as its value, so JSON and ``state == "carried"`` are unchanged."""

    DISCUSSION = "discussion"
    ROUND1 = "round1"
    ROUND2 = "round2"
    ROUND3 = "round3"
    CONTENTION = "contention"
    CARRIED = "carried"
    TABLED = "tabled"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Phase(StrEnum):
    """The open phase of a proposal that has not reached a final state."""

    DISCUSSION = "discussion"
    VOTE = "vote"
    AMEND = "amend"
    CONTENTION = "contention"


class Input(StrEnum):
    """The inputs that move a proposal along the ladder."""

    WITHDRAW = "withdraw"  # the proposer withdraws (before round 1 closes)
    OPEN = "open"  # the discussion ends: round 1 opens
    PASS = "pass"  # a round's vote closes with quorum and support at its threshold
    FAIL = "fail"  # a round's vote closes otherwise
    FALL = "fall"  # during contention, support falls below the floor
    CLOSE = "close"  # the contention window ends with support kept


class WindowName(StrEnum):
    """The windows a teller seals (docs/rules.md s.10), as named in a ``seal`` event."""

    R1 = "r1"
    A2 = "a2"
    R2 = "r2"
    A3 = "a3"
    R3 = "r3"
    C = "c"
    RECALL = "recall"

    @classmethod
    def vote(cls, k: int) -> "WindowName":
        return (cls.R1, cls.R2, cls.R3)[k - 1]

    @classmethod
    def amend(cls, k: int) -> "WindowName":
        return {2: cls.A2, 3: cls.A3}[k]


STATES = tuple(State)
FINAL = frozenset({State.CARRIED, State.TABLED, State.REJECTED, State.WITHDRAWN})
INPUTS = tuple(Input)

TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.DISCUSSION, Input.WITHDRAW): State.WITHDRAWN,
    (State.DISCUSSION, Input.OPEN): State.ROUND1,
    (State.ROUND1, Input.WITHDRAW): State.WITHDRAWN,
    (State.ROUND1, Input.PASS): State.CONTENTION,
    (State.ROUND1, Input.FAIL): State.ROUND2,
    (State.ROUND2, Input.PASS): State.CONTENTION,
    (State.ROUND2, Input.FAIL): State.ROUND3,
    (State.ROUND3, Input.PASS): State.CONTENTION,
    (State.ROUND3, Input.FAIL): State.REJECTED,
    (State.CONTENTION, Input.FALL): State.TABLED,
    (State.CONTENTION, Input.CLOSE): State.CARRIED,
}


class LadderError(LocalError):
    """An input that the ladder does not accept in this state: a bug, not bad data."""


def step(state: str, event: str) -> State:
    try:
        return TRANSITIONS[(state, event)]  # type: ignore[index]  # str keys hash as the enums
    except KeyError:
        raise LadderError(f"the ladder has no move for {str(event)!r} in state {str(state)!r}") from None


class Window(NamedTuple):
    """A half-open window ``[start, end)`` in ms. A tuple, so ``== (a, b)``, ``w[1]``
    and ``list(w)`` keep working where windows were plain pairs."""

    start: int
    end: int

    def contains(self, ts: int) -> bool:
        return self.start <= ts < self.end

    def closed(self, as_of: int) -> bool:
        """Whether the window has closed as of ``as_of`` (``as_of >= end``)."""
        return as_of >= self.end


@dataclass(frozen=True, kw_only=True)
class Calendar:
    """When each phase of one proposal is open."""

    t0: int
    discussion: int
    vote: int
    amend: int
    contention: int

    @classmethod
    def of(cls, t0: int, charter: Charter) -> "Calendar":
        return cls(
            t0=t0, discussion=charter.discussion, vote=charter.vote_window,
            amend=charter.amendment_window, contention=charter.contention_window,
        )

    @property
    def t1(self) -> int:
        return self.t0 + self.discussion

    def discussion_window(self) -> Window:
        return Window(self.t0, self.t1)

    def amend_window(self, k: int) -> Window | None:
        """Rounds 2 and 3 open with an amendment window; round 1 has none."""
        if k == 1:
            return None
        start = self.vote_window(k - 1).end
        return Window(start, start + self.amend)

    def vote_window(self, k: int) -> Window:
        if k not in (1, 2, 3):
            raise LadderError(f"there is no round {k}")
        if k == 1:
            return Window(self.t1, self.t1 + self.vote)
        amend = self.amend_window(k)
        assert amend is not None
        return Window(amend.end, amend.end + self.vote)

    def round_start(self, k: int) -> int:
        amend = self.amend_window(k)
        return amend.start if amend is not None else self.vote_window(k).start

    def contention_window(self, k: int) -> Window:
        start = self.vote_window(k).end
        return Window(start, start + self.contention)
