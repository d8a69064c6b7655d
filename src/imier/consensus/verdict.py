"""Verdicts of nested bodies (docs/rules.md s.4 and s.7): one recursion for
rounds, amendments, recalls and contention.

Rules:

1. A :class:`VoterTree` is one body as it stands for one window: a base body
   with its eligible people, or a federation with its eligible member
   bodies. Every node carries its *own* charter (s.7.1).
2. A base body's verdict: participation = voters / eligible, support =
   yes / (yes + no); quorum when participation meets ``quorum``; a body
   with nobody eligible lacks quorum. Passed = quorum and the rule's test.
3. A federation combines its direct members with its own ``combine``:
   ``verdicts`` (quorate members are one yes if passed, one no otherwise),
   ``support`` (mean of the defined supports of quorate members, s.7.2) or
   ``population`` (every person under it once, one assembly, s.7.3/s.7.5).
   In ``verdicts`` and ``support`` mode participation is quorate members
   over members.
4. Contention (s.7.4): each member body starts as it stood in the passing
   round (yes if it passed, no if it did not, absent without quorum). A
   body standing yes falls to no for good when its own support, after a
   standing change, is below its floor. The proposal's body is tabled the
   first time its own support is below its floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator, Mapping, Sequence

from ..protocol.charter import Charter
from .share import Rule, Share, mean_share

__all__ = ["VoterTree", "Verdict", "judge", "Present", "contend", "ContentionResult"]

# present(body, person) -> the person's counted choice in that base body, or None.
Present = Callable[[bytes, bytes], "str | None"]


@dataclass(frozen=True, kw_only=True)
class VoterTree:
    body: bytes
    base: bool
    charter: Charter
    people: frozenset[bytes] = frozenset()
    parts: tuple["VoterTree", ...] = ()

    def walk(self) -> Iterator["VoterTree"]:
        yield self
        for p in self.parts:
            yield from p.walk()

    def everyone(self) -> frozenset[bytes]:
        return self._everyone

    @cached_property
    def _everyone(self) -> frozenset[bytes]:
        out: set[bytes] = set()
        for n in self.walk():
            out |= n.people
        return frozenset(out)

    @cached_property
    def _bases(self) -> dict[bytes, tuple[bytes, ...]]:
        # Most people are eligible in one base body: they share that body's
        # 1-tuple, filled in C; only people in several bodies get their own.
        out: dict[bytes, tuple[bytes, ...]] = {}
        several: dict[bytes, set[bytes]] = {}
        for n in self.walk():
            if n.base:
                for p in out.keys() & n.people:
                    several.setdefault(p, set(out[p])).add(n.body)
                out.update(dict.fromkeys(n.people, (n.body,)))
        for p, bs in several.items():
            out[p] = tuple(sorted(bs))
        return out

    def bases(self) -> Mapping[bytes, tuple[bytes, ...]]:
        """person -> :meth:`base_of` for everyone under this node (do not mutate)."""
        return self._bases

    def base_of(self, person: bytes) -> tuple[bytes, ...]:
        """The base bodies under this node in which ``person`` is eligible."""
        return self._bases.get(person, ())


@dataclass(frozen=True, kw_only=True)
class Verdict:
    body: bytes
    base: bool
    combine: str | None
    eligible: int
    yes: int
    no: int
    abstain: int
    participation: Share
    support: Share
    quorum: bool
    passed: bool
    threshold: Share  # the ratio the rule compared support with, for the sentence
    quorum_needed: Share  # the body's quorum ratio
    parts: tuple["Verdict", ...] = field(default=())

    def __post_init__(self) -> None:
        # A verdict that breaks these is a bug in the recursion, never bad data.
        if min(self.eligible, self.yes, self.no, self.abstain) < 0:
            raise ValueError("negative count in a verdict")
        if self.base and self.yes + self.no + self.abstain > self.eligible:
            raise ValueError("more voters than eligible people")
        if self.passed and not self.quorum:
            raise ValueError("a verdict cannot pass without quorum")

    def walk(self) -> Iterator["Verdict"]:
        yield self
        for p in self.parts:
            yield from p.walk()


def _choice_anywhere(node: VoterTree, present: Present, person: bytes) -> str | None:
    for b in node.base_of(person):
        c = present(b, person)
        if c is not None:
            return c
    return None


def judge(node: VoterTree, present: Present, rule: Rule) -> Verdict:
    """The verdict of ``node`` and everything under it (rules 2 and 3)."""
    ch = node.charter
    threshold = getattr(ch, rule.key)
    parts: tuple[Verdict, ...] = ()
    combine: str | None = None
    if node.base or ch.combine == "population":
        people = node.people if node.base else node.everyone()
        # Only people with a ballot can have a choice: ask about them alone when known.
        voters = getattr(present, "voters", None)
        asked = people if voters is None else people & voters
        if node.base:
            choices = [present(node.body, p) for p in asked]
        else:
            combine = "population"
            parts = tuple(judge(p, present, rule) for p in node.parts)
            choices = [_choice_anywhere(node, present, p) for p in asked]
        yes, no, abstain = (choices.count(k) for k in ("yes", "no", "abstain"))
        eligible = len(people)
        participation = Share(num=yes + no + abstain, den=eligible)
        support = Share(num=yes, den=yes + no)
    else:
        combine = ch.combine
        parts = tuple(judge(p, present, rule) for p in node.parts)
        quorate = [v for v in parts if v.quorum]
        yes = sum(1 for v in quorate if v.passed)
        no = len(quorate) - yes
        abstain = 0
        eligible = len(parts)
        participation = Share(num=len(quorate), den=eligible)
        if ch.combine == "verdicts":
            support = Share(num=yes, den=yes + no)
        else:
            support = mean_share(v.support for v in quorate)
    quorum = eligible > 0 and participation.meets(ch.quorum)
    passed = quorum and rule.passes(support, threshold)
    return Verdict(
        body=node.body, base=node.base, combine=combine, eligible=eligible, yes=yes, no=no,
        abstain=abstain, participation=participation, support=support, quorum=quorum,
        passed=passed, threshold=Share.of(threshold), quorum_needed=Share.of(ch.quorum),
        parts=parts,
    )


# -- contention ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContentionResult:
    floor: Share  # the proposal body's contention floor
    start: Share  # the proposal body's support when the phase opened
    now: Share  # ... after the last standing change counted
    lowest: Share  # ... at its lowest
    tabled_at: int | None  # timestamp of the standing change that tabled it
    changes: int  # standing changes counted
    fallen: tuple[bytes, ...]  # member bodies that fell to 'no', in the order they fell


def contend(
    root: VoterTree,
    passing: Verdict,
    initial: Mapping[bytes, str],
    changes: Sequence[tuple[int, bytes, str]],
) -> ContentionResult:
    """Apply standing changes ``(ts, person, yes|no)`` in order (rule 4)."""
    verdicts = {v.body: v for v in passing.walk()}
    stand: dict[bytes, str] = {}
    for body, v in verdicts.items():
        if body != root.body and v.quorum:
            stand[body] = "yes" if v.passed else "no"
    people: dict[bytes, str] = {p: c for p, c in initial.items() if c in ("yes", "no")}
    fallen: list[bytes] = []

    def support(node: VoterTree) -> Share:
        if node.base or node.charter.combine == "population":
            crowd = node.people if node.base else node.everyone()
            cs = [people.get(p) for p in crowd]
            yes, no = cs.count("yes"), cs.count("no")
            return Share(num=yes, den=yes + no)
        present = [p for p in node.parts if p.body in stand]
        if node.charter.combine == "verdicts":
            yes = sum(1 for p in present if stand[p.body] == "yes")
            return Share(num=yes, den=len(present))
        return mean_share(support(p) for p in present)

    def update(node: VoterTree) -> Share:
        for p in node.parts:
            update(p)
        s = support(node)
        if node is not root and stand.get(node.body) == "yes" and s.below(node.charter.contention_floor):
            stand[node.body] = "no"
            fallen.append(node.body)
        return s

    start = now = lowest = update(root)
    tabled_at: int | None = None
    counted = 0
    for ts, person, choice in changes:
        if tabled_at is not None:
            break
        people[person] = choice
        counted += 1
        now = update(root)
        if _lower(now, lowest):
            lowest = now
        if now.below(root.charter.contention_floor):
            tabled_at = ts
    return ContentionResult(
        floor=Share.of(root.charter.contention_floor), start=start, now=now, lowest=lowest, tabled_at=tabled_at, changes=counted,
        fallen=tuple(fallen),
    )


def _lower(a: Share, b: Share) -> bool:
    if not a.defined:
        return b.defined
    if not b.defined:
        return False
    return a.num * b.den < b.num * a.den
