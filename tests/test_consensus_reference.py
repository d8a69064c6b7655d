"""The nested verdict recursion against a plain reference written from docs/rules.md
s.4 and s.7 with Fractions, over random trees, charters and ballots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from imier.consensus import VoterTree, Rule, judge
from imier.protocol.charter import Charter

EXAMPLES = int(os.environ.get("IMIER_HYPOTHESIS_EXAMPLES", "25")) * 4
ratios = st.builds(Fraction, st.integers(0, 12), st.integers(1, 12)).filter(lambda f: f <= 1)


@st.composite
def charters(draw: Any) -> Charter:
    a, b, c = sorted(draw(st.lists(ratios, min_size=3, max_size=3)))
    return Charter(quorum=draw(ratios), contention_floor=a, final_threshold=b, first_threshold=c,
                   amendment_threshold=draw(ratios),
                   combine=draw(st.sampled_from(["verdicts", "support", "population"])))


PEOPLE = [bytes([i]) * 32 for i in range(12)]


@st.composite
def trees(draw: Any, depth: int = 0, counter: list[int] | None = None) -> VoterTree:
    counter = counter if counter is not None else [0]
    counter[0] += 1
    body = counter[0].to_bytes(32, "big")
    if depth >= 3 or draw(st.booleans()):
        people = frozenset(draw(st.lists(st.sampled_from(PEOPLE), max_size=8)))
        return VoterTree(body=body, base=True, charter=draw(charters()), people=people)
    parts = tuple(draw(st.lists(trees(depth + 1, counter), max_size=3)))
    return VoterTree(body=body, base=False, charter=draw(charters()), parts=parts)


@dataclass
class Ref:
    quorum: bool
    passed: bool
    support: Fraction | None


def reference(node: VoterTree, ballots: dict[tuple[bytes, bytes], str], key: str, strict: bool) -> Ref:
    ch = node.charter
    thr = getattr(ch, key)

    def decide(quorum: bool, support: Fraction | None) -> Ref:
        ok = support is not None and (support > thr if strict else support >= thr)
        return Ref(quorum=quorum, passed=quorum and ok, support=support)

    if node.base or ch.combine == "population":
        bases = [n for n in node.walk() if n.base]
        people = set().union(*(n.people for n in bases)) if bases else set()
        choice = {}
        for p in people:
            for n in sorted(bases, key=lambda n: n.body):
                c = ballots.get((n.body, p))
                if p in n.people and c is not None:
                    choice[p] = c
                    break
        y = sum(1 for c in choice.values() if c == "yes")
        no = sum(1 for c in choice.values() if c == "no")
        quorum = bool(people) and Fraction(len(choice), len(people)) >= ch.quorum
        return decide(quorum, Fraction(y, y + no) if y + no else None)
    kids = [reference(p, ballots, key, strict) for p in node.parts]
    quorate = [k for k in kids if k.quorum]
    quorum = bool(kids) and Fraction(len(quorate), len(kids)) >= ch.quorum
    if ch.combine == "verdicts":
        support = Fraction(sum(k.passed for k in quorate), len(quorate)) if quorate else None
    else:
        vals = [k.support for k in quorate if k.support is not None]
        support = sum(vals, Fraction(0)) / len(vals) if vals else None
    return decide(quorum, support)


@settings(max_examples=EXAMPLES, deadline=None)
@given(trees(), st.dictionaries(st.tuples(st.integers(1, 40), st.sampled_from(PEOPLE)),
                                st.sampled_from(["yes", "no", "abstain"]), max_size=60),
       st.sampled_from([("first_threshold", False), ("final_threshold", False),
                        ("amendment_threshold", True)]))
def test_judge_agrees_with_the_reference(root: VoterTree, raw: dict[tuple[int, bytes], str],
                                         rule: tuple[str, bool]) -> None:
    ballots = {(n.to_bytes(32, "big"), p): c for (n, p), c in raw.items()}

    def present(body: bytes, person: bytes) -> str | None:
        return ballots.get((body, person))

    got = judge(root, present, Rule(key=rule[0], strict=rule[1]))
    by_body = {v.body: v for v in got.walk()}
    for node in root.walk():
        ref = reference(node, ballots, *rule)
        v = by_body[node.body]
        assert (v.quorum, v.passed) == (ref.quorum, ref.passed)
        assert (v.support.value if v.support.defined else None) == ref.support
