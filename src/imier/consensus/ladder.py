"""The ladder of DECISIONS.md s.3 as a transition table, and its calendar.

Rules:

1. A proposal is in exactly one state of :data:`STATES` at any time.
2. The state changes only through :func:`step` on a ``(state, input)`` pair
   of :data:`TRANSITIONS`; any other pair is a bug in the caller and raises
   :class:`LadderError` (never a silent no-op, as in h2's state machine).
3. ``carried``, ``tabled``, ``rejected`` and ``withdrawn`` are final: no
   input leaves them.
4. The calendar is the proposal body's charter at the proposal's timestamp
   (DECISIONS.md s.7.1). Windows are half-open ``[start, end)`` in
   milliseconds and follow each other without gaps: discussion, round 1
   vote; round 2 amendments, round 2 vote; round 3 amendments, round 3 vote;
   then, after the pass in round ``k``, contention.
"""

from __future__ import annotations

from dataclasses import dataclass

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
]

STATES = (
    "discussion", "round1", "round2", "round3", "contention",
    "carried", "tabled", "rejected", "withdrawn",
)
FINAL = frozenset({"carried", "tabled", "rejected", "withdrawn"})

# The inputs that move a proposal along the ladder.
INPUTS = (
    "withdraw",  # the proposer withdraws (before round 1 closes)
    "open",  # the discussion ends: round 1 opens
    "pass",  # a round's vote closes with quorum and support at its threshold
    "fail",  # a round's vote closes otherwise
    "fall",  # during contention, support falls below the floor
    "close",  # the contention window ends with support kept
)

TRANSITIONS: dict[tuple[str, str], str] = {
    ("discussion", "withdraw"): "withdrawn",
    ("discussion", "open"): "round1",
    ("round1", "withdraw"): "withdrawn",
    ("round1", "pass"): "contention",
    ("round1", "fail"): "round2",
    ("round2", "pass"): "contention",
    ("round2", "fail"): "round3",
    ("round3", "pass"): "contention",
    ("round3", "fail"): "rejected",
    ("contention", "fall"): "tabled",
    ("contention", "close"): "carried",
}


class LadderError(LocalError):
    """An input that the ladder does not accept in this state: a bug, not bad data."""


def step(state: str, event: str) -> str:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LadderError(f"the ladder has no move for {event!r} in state {state!r}") from None


Window = tuple[int, int]


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
        return (self.t0, self.t1)

    def amend_window(self, k: int) -> Window | None:
        """Rounds 2 and 3 open with an amendment window; round 1 has none."""
        if k == 1:
            return None
        start = self.vote_window(k - 1)[1]
        return (start, start + self.amend)

    def vote_window(self, k: int) -> Window:
        if k not in (1, 2, 3):
            raise LadderError(f"there is no round {k}")
        if k == 1:
            return (self.t1, self.t1 + self.vote)
        amend = self.amend_window(k)
        assert amend is not None
        return (amend[1], amend[1] + self.vote)

    def round_start(self, k: int) -> int:
        amend = self.amend_window(k)
        return amend[0] if amend is not None else self.vote_window(k)[0]

    def contention_window(self, k: int) -> Window:
        start = self.vote_window(k)[1]
        return (start, start + self.contention)
