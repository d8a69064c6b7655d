"""Properties of sealed windows (docs/rules.md s.10), with hypothesis.

One community of nine with three tellers drawn by lot (built once). Each
example chooses, per member, a timely vote, a late one (stamped inside round
1, delivered after the seals, naming only events from before the close) or
none, and per teller whether it seals honestly, dishonestly (adding the late
votes) or drops the timely votes, or not at all. Then:

* any arrival order (and duplication) of the events gives every node the same
  verdicts;
* in a sealed window, a late vote in the view of at most half of the tellers
  never counts; a timely one in the view of more than half always does.
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imier.consensus import LATE, tally_proposal
from imier.protocol.events import Event, Seal, Vote, sign_event

from .test_consensus_seals import P_R1, proposal, world
from .test_consensus_world import DAY, key, pub

EXAMPLES = int(os.environ.get("IMIER_HYPOTHESIS_EXAMPLES", "25"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=1)
def base() -> tuple[tuple[Event, ...], tuple[str, ...], tuple[str, ...], bytes, bytes]:
    w, tellers = world()
    pid = proposal(w)
    voters = tuple(m for m in w.members["north"] if m not in tellers)
    return tuple(w.events()), tuple(tellers), voters, pid, w.ids["north"]


member_action = st.sampled_from(["none", "yes", "no", "late yes", "late no"])
teller_mode = st.sampled_from(["none", "honest", "honest", "dishonest", "drop"])


def build(acts: list[str], modes: list[str]) -> tuple[list[Event], dict[bytes, str], dict[str, bytes]]:
    evs, tellers, voters, pid, body = base()
    last = {}
    for ev in evs:
        if ev.body == body:
            last[ev.author] = ev
    out = list(evs)
    timely: list[Event] = []
    late: list[Event] = []
    kind: dict[bytes, str] = {}

    def sign(who: str, ts: int, prev: set[bytes], data: Any) -> Event:
        own = last.get(pub(who))
        ps = sorted((prev | ({own.id} if own else set())))[:8]
        ev = sign_event(key(who), body=body, ts=ts, seq=(own.seq if own else 0) + 1, prev=ps, data=data)
        last[pub(who)] = ev
        return ev

    for i, (who, act) in enumerate(zip(voters, acts, strict=False)):
        if act == "none":
            continue
        choice = act.split()[-1]
        data = Vote(target=pid, choice=choice, severity="blocking" if choice == "no" else None,
                    category="cost" if choice == "no" else None)
        if act.startswith("late"):
            continue
        ev = sign(who, P_R1[0] + i, {pid}, data)
        timely.append(ev)
        kind[ev.id] = "timely"
    honest = {pid} | {e.id for e in timely}
    seals: dict[str, bytes] = {}
    # late votes are signed with prev from before the close, stamped inside round 1
    for i, (who, act) in enumerate(zip(voters, acts, strict=False)):
        if act.startswith("late"):
            choice = act.split()[-1]
            data = Vote(target=pid, choice=choice, severity="blocking" if choice == "no" else None,
                        category="cost" if choice == "no" else None)
            ev = sign(who, P_R1[1] - 1 - i, {pid}, data)
            late.append(ev)
            kind[ev.id] = "late"
    for j, (t, mode) in enumerate(zip(tellers, modes, strict=True)):
        if mode == "none":
            continue
        heads = {"honest": honest, "dishonest": honest | {e.id for e in late}, "drop": {pid}}[mode]
        ev = sign(t, P_R1[1] + 1 + j, set(sorted(heads)[:7]), Seal(proposal=pid, window="r1",
                                                                     heads=tuple(sorted(heads))))
        seals[t] = ev.id
    out += timely + late + [e for e in (last[pub(t)] for t in tellers) if isinstance(e.data, Seal)]
    return out, kind, seals


@PROFILE
@given(st.lists(member_action, min_size=6, max_size=6), st.lists(teller_mode, min_size=3, max_size=3),
       st.randoms(use_true_random=False))
def test_any_arrival_order_same_verdict_and_late_votes_never_count_when_sealed(
        acts: list[str], modes: list[str], rnd: random.Random) -> None:
    events, kind, _ = build(acts, modes)
    _, tellers, _, pid, _ = base()
    as_of = P_R1[1] + DAY
    ref = tally_proposal(events, pid, as_of)
    shuffled = list(events) + rnd.sample(events, k=min(5, len(events)))
    rnd.shuffle(shuffled)
    assert tally_proposal(shuffled, pid, as_of).to_json({}) == ref.to_json({})
    r1 = ref.rounds[0]
    assert r1.seal is not None
    sealing = [m for m in modes if m != "none"]
    assert r1.seal.sealed == (2 * len(sealing) > len(tellers))
    counted = set(r1.votes)
    late_ignored = {i.id for i in ref.ignored if i.reason == LATE}
    saw_late = sum(1 for m in modes if m == "dishonest")
    saw_timely = sum(1 for m in modes if m in ("honest", "dishonest"))
    for eid, k in kind.items():
        if not r1.seal.sealed:
            assert eid in counted  # unsealed: counted as before
            continue
        if k == "late":
            if 2 * saw_late <= len(tellers):
                assert eid not in counted and eid in late_ignored
            else:
                assert eid in counted
        else:
            assert (eid in counted) == (2 * saw_timely > len(tellers))
