"""Properties: any order and duplication of the events gives the same verdict;
events that must not count change nothing; the draw is reproducible.

``IMIER_HYPOTHESIS_EXAMPLES`` raises the number of examples (default modest, so
the suite stays fast).
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imier.consensus import sortition, tally_proposal
from imier.protocol.errors import Rejected
from imier.protocol.events import Event, Vote, decode_event

from .test_consensus_world import A2, A3, DAY, R1, R2, R3, T0, World, contention_after, key

EXAMPLES = int(os.environ.get("IMIER_HYPOTHESIS_EXAMPLES", "25"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

WINDOWS = {"r1": R1, "a2": A2, "r2": R2, "a3": A3, "r3": R3,
           "c1": contention_after(1), "c2": contention_after(2), "c3": contention_after(3)}
CHECKPOINTS = [T0, R1[1], A2[1], R2[1], R3[1], contention_after(1)[1], contention_after(3)[1]]

choice = st.sampled_from(["yes", "yes", "yes", "no", "abstain"])
action = st.tuples(
    st.sampled_from(["vote", "vote", "vote", "amend", "avote", "avote", "stand", "stand", "all", "all", "all"]),
    st.integers(0, 9),  # who
    st.sampled_from(sorted(WINDOWS)),
    st.integers(0, 400),  # offset in the window
    choice,
    st.sampled_from(["minor", "blocking"]),
    st.sampled_from(["cost", "noise"]),
)


Plan = tuple[str, list[int], list[tuple[Any, ...]]]


@st.composite
def plans(draw: Any) -> Plan:
    mode = draw(st.sampled_from(["base", "verdicts", "support", "population"]))
    sizes = draw(st.lists(st.integers(2, 5), min_size=1 if mode == "base" else 2, max_size=3))
    acts = draw(st.lists(action, min_size=6, max_size=30))
    # One event per millisecond: ties between one author's events would be broken
    # by ids, which depend on everything before them (tested elsewhere).
    seen: set[int] = set()
    plan = []
    for a in sorted(acts, key=lambda a: (WINDOWS[a[2]][0] + a[3], a)):
        at = WINDOWS[a[2]][0] + a[3]
        if at not in seen:
            seen.add(at)
            plan.append(a)
    return mode, sizes, plan


def build(plan: Plan, extra: tuple[str, int, str] | None = None) -> tuple[World, bytes]:
    """The world of ``plan``; ``extra`` = (who, at, choice) adds one vote on the proposal."""
    mode, sizes, acts = plan
    w = World()
    names = [f"b{i}" for i in range(len(sizes))]
    for name, n in zip(names, sizes, strict=True):
        w.body(name, n)
    if mode == "base":
        pid = w.propose(names[0])
    else:
        w.body("fed", parts=tuple(names), charter={"combine": mode})
        pid = w.propose("fed")
    people = [p for n in names for p in w.members[n]]
    amendments: list[bytes] = []
    steps: list[tuple[int, tuple[Any, ...]]] = []
    for j, a in enumerate(acts):
        if a[0] == "all":  # everyone votes alike, one after another, past the other offsets
            for i, who in enumerate(people):
                kind = {"r": "vote", "a": "avote", "c": "stand"}[a[2][0]]
                steps.append((WINDOWS[a[2]][0] + 1000 + 20 * j + i, (kind, who, *a[2:])))
        else:
            steps.append((WINDOWS[a[2]][0] + a[3], (a[0], people[a[1] % len(people)], *a[2:])))
    steps.sort(key=lambda x: x[0])
    if extra is not None:
        steps.append((extra[1], ("extra",)))
        steps.sort(key=lambda x: x[0])
    for at, a in steps:
        if a[0] == "extra":
            assert extra is not None
            w.vote(extra[0], pid, extra[2], at, body=w.store.get(pid).body_id)  # type: ignore[union-attr]
            continue
        kind, who, win, _, ch, sev, cat = a
        if kind == "vote":
            w.vote(who, pid, ch, at, severity=sev, category=cat)
        elif kind == "amend" and win in ("a2", "a3"):
            amendments.append(w.amend(who, pid, f"text by {who} at {at}", at))
        elif kind == "avote" and amendments:
            w.vote(who, amendments[int(who[-1]) % len(amendments)], ch, at)
        elif kind == "stand" and ch != "abstain":
            w.stand(who, pid, ch, at)
    return w, pid


def worlds() -> Any:
    return plans().map(build)


def outcome(events: list[Event], pid: bytes, names: dict[bytes, str], drop: tuple[str, ...] = ()) -> list[Any]:
    out = []
    for t in CHECKPOINTS:
        doc = tally_proposal(events, pid, t).to_json(names)
        for k in drop:
            doc.pop(k, None)
        if drop:  # ids of events made after an added one differ (their prev differ)
            doc.pop("open_amendments", None)
            for r in doc["rounds"]:
                for a in r["amendments"]:
                    a.pop("id", None)
        out.append(doc)
    return out


@PROFILE
@given(worlds(), st.randoms(use_true_random=False), st.integers(0, 5))
def test_any_permutation_and_duplication_gives_the_same_output(
    wp: tuple[World, bytes], rnd: random.Random, dups: int
) -> None:
    w, pid = wp
    events = w.events()
    names = w.names()
    expected = outcome(events, pid, names)
    shuffled = events + [rnd.choice(events) for _ in range(dups)]
    rnd.shuffle(shuffled)
    assert outcome(shuffled, pid, names) == expected


@PROFILE
@given(plans(), st.sampled_from(["outsider", "early", "late", "amend-window"]), choice)
def test_votes_that_must_not_count_change_nothing(plan: Plan, how: str, ch: str) -> None:
    w, pid = build(plan)
    names = w.names()
    before = outcome(w.events(), pid, names, drop=("ignored",))
    # Free milliseconds (every action of a plan sits on its own, at offsets <= 400).
    at = {"outsider": R1[0] + 401, "early": T0 + 7, "late": contention_after(3)[1] + DAY,
          "amend-window": A2[0] + 401}[how]
    who = "stranger" if how == "outsider" else "b00"
    w2, pid2 = build(plan, extra=(who, at, ch))
    assert pid2 == pid
    assert outcome(w2.events(), pid, names, drop=("ignored",)) == before
    doc = tally_proposal(w2.events(), pid, contention_after(3)[1] + DAY).to_json(names)
    assert len(doc["ignored"]) >= 1


@PROFILE
@given(worlds(), st.integers(0, 63))
def test_forged_votes_are_refused_before_they_reach_a_tally(wp: tuple[World, bytes], bit: int) -> None:
    w, pid = wp
    names = w.names()
    before = outcome(w.events(), pid, names)
    real = w.vote(w.members["b0"][0], pid, "yes", max(w.t + 1, R1[0]))
    # Forge: the same vote claiming another member as its author, or a flipped signature bit.
    raw = bytearray(real.raw)
    at = raw.find(real.sig)
    raw[at + bit // 8] ^= 1 << (bit % 8)
    forged_author = bytes(real.raw).replace(real.author, bytes(key(w.members["b0"][1]).verify_key))
    for forged in (bytes(raw), forged_author):
        try:
            decode_event(forged)
        except Rejected:
            continue
        raise AssertionError("a forged event decoded")
    events = [e for e in w.events() if e.id != real.id]
    assert outcome(events, pid, names) == before
    assert isinstance(real.data, Vote)


@PROFILE
@given(st.binary(min_size=32, max_size=32),
       st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=12, unique=True),
       st.integers(0, 12), st.randoms(use_true_random=False))
def test_the_draw_is_reproducible(seed: bytes, cands: list[bytes], k: int, rnd: random.Random) -> None:
    k = min(k, len(cands))
    chosen = sortition(seed, cands, k)
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert sortition(seed, shuffled, k) == chosen
    assert len(chosen) == k and len(set(chosen)) == k and set(chosen) <= set(cands)
    assert sortition(seed, cands, len(cands))[:k] == chosen


@PROFILE
@given(worlds())
def test_states_over_time_follow_the_transition_table(wp: tuple[World, bytes]) -> None:
    from imier.consensus import FINAL, TRANSITIONS

    w, pid = wp
    events = w.events()
    reachable: dict[str, set[str]] = {}
    for (a, _), b in TRANSITIONS.items():
        reachable.setdefault(a, set()).add(b)
    times = sorted({t for win in WINDOWS.values() for t in (win[0], win[1] - 1, win[1])} | {T0})
    states = [tally_proposal(events, pid, t).state for t in times]
    for before, after in zip(states, states[1:], strict=False):
        if before == after:
            continue
        # one or more moves along the table, never backwards
        seen, todo = set(), [before]
        while todo:
            s = todo.pop()
            for nxt in reachable.get(s, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert after in seen, (before, after)
        assert before not in FINAL
