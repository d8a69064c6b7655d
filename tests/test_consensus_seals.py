"""Sealed windows (docs/rules.md s.10): tellers drawn by lot close the count.

Each test builds a body whose tellers are drawn by a carried ``draw``
proposal, then a proposal whose windows the tellers seal, then events
backdated into a closed window and delivered after the seals (signed by
hand with ``prev`` from before the close, as a dishonest node would).
"""

from __future__ import annotations

from imier.consensus import ProposalResult, tally_proposal
from imier.consensus.engine import LATE
from imier.protocol.events import (
    Amend,
    Event,
    Payload,
    Propose,
    Recall,
    Seal,
    Stand,
    Vote,
    Withdraw,
)

from .test_consensus_world import DAY, T0, World, pub

# The teller draw is made at T0 and carried when its contention closes.
DRAW_CARRIED = T0 + 3 * DAY + 2 * DAY + 7 * DAY
P0 = DRAW_CARRIED + DAY  # the proposal whose windows are sealed
P_R1 = (P0 + 3 * DAY, P0 + 5 * DAY)
P_A2 = (P0 + 5 * DAY, P0 + 7 * DAY)
P_R2 = (P0 + 7 * DAY, P0 + 9 * DAY)
P_A3 = (P0 + 9 * DAY, P0 + 11 * DAY)
P_R3 = (P0 + 11 * DAY, P0 + 13 * DAY)


def c_after(end: int) -> tuple[int, int]:
    return (end, end + 7 * DAY)


def world(members: int = 9, tellers: int = 3) -> tuple[World, list[str]]:
    """A community of ``members`` with ``tellers`` of them drawn as tellers."""
    w = World()
    w.body("north", members)
    chosen, carried = w.tellers("north", tellers, T0)
    assert carried == DRAW_CARRIED and len(chosen) == tellers
    # tellers first: the last members, who cast the late events below, never seal
    w.members["north"] = chosen + [n for n in w.members["north"] if n not in chosen]
    return w, chosen


def heads(w: World, body: bytes) -> tuple[bytes, ...]:
    return tuple(sorted(h for _, h in w.store.heads(body)))


def seal(w: World, teller: str, target: bytes, window: str, at: int,
         extra: tuple[bytes, ...] = (), drop: tuple[bytes, ...] = (),
         only: tuple[bytes, ...] | None = None) -> Event:
    """A seal by ``teller``: the node's heads, plus ``extra`` (a dishonest teller adding a
    late event), minus ``drop``, or exactly ``only``."""
    hs = set(heads(w, w.ids["north"]) if only is None else only) | set(extra)
    hs -= set(drop)
    # Its prev are its own last event and (up to 7 of) the heads it names, so its
    # causal past is exactly what it names.
    return w.late(teller, w.ids["north"], Seal(proposal=target, window=window, heads=tuple(sorted(hs))),
                  at, sorted(hs)[:7])


def backdate(w: World, who: str, data: Payload, at: int, prev: list[bytes]) -> Event:
    """``who`` signs ``data`` stamped ``at`` with ``prev`` from before the close, as if the
    node had seen nothing since, and it is delivered now."""
    return w.late(who, w.ids["north"], data, at, prev)


def proposal(w: World) -> bytes:
    return w.propose("north", by=w.members["north"][-1], at=P0)


def tally(w: World, pid: bytes, as_of: int) -> ProposalResult:
    return tally_proposal(w.events(), pid, as_of)


def test_no_tellers_means_unsealed_and_status_says_so() -> None:
    w = World()
    w.body("north", 3)
    pid = w.propose("north")
    w.votes("north", pid, T0 + 3 * DAY, yes=3)
    r = w.tally(pid, T0 + 5 * DAY)
    s = r.rounds[0].seal
    assert s is not None and (s.sealed, s.tellers, s.sealed_by) == (False, 0, 0)
    assert "unsealed" in s.text() and "backdated" in s.text()
    doc = r.to_json({})
    assert doc["rounds"][0]["seal"] == {"window": "r1", "sealed": False, "tellers": 0, "sealed_by": 0}
    # simulate's document is unchanged when the body has no tellers
    assert "seal" not in r.simulate_json({})["rounds"][0]


def test_tellers_are_the_drawn_holders() -> None:
    w, tellers = world()
    assert len(tellers) == 3
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    r = tally(w, pid, P_R1[1])
    assert r.rounds[0].seal is not None and r.rounds[0].seal.tellers == 3


def late_blocking_setup() -> tuple[World, list[str], bytes, list[bytes]]:
    """Nine members, eight vote yes in time (8/8 passes round 1); the ninth will vote a
    blocking no only after the close, backdated (8/9 < 9/10 would fail it)."""
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=8)
    before = list(heads(w, w.ids["north"]))
    return w, tellers, pid, before


def test_a_late_vote_outside_the_tellers_views_does_not_count() -> None:
    w, tellers, pid, before = late_blocking_setup()
    for i, t in enumerate(tellers):
        seal(w, t, pid, "r1", P_R1[1] + 1 + i)
    late_author = w.members["north"][8]
    late = backdate(w, late_author, Vote(target=pid, choice="no", severity="blocking", category="cost"),
                    P_R1[1] - 5, before)
    r = tally(w, pid, P_R1[1] + DAY)
    s = r.rounds[0].seal
    assert s is not None and (s.sealed, s.tellers, s.sealed_by) == (True, 3, 3)
    assert r.rounds[0].verdict is not None and (r.rounds[0].verdict.yes, r.rounds[0].verdict.no) == (8, 0)
    assert r.rounds[0].passed
    assert any(i.id == late.id and i.reason == LATE for i in r.ignored)


def test_one_dishonest_teller_of_three_cannot_add_a_late_vote() -> None:
    w, tellers, pid, before = late_blocking_setup()
    # two honest tellers sealed what they held at the close
    seal(w, tellers[0], pid, "r1", P_R1[1] + 1, only=tuple(before))
    seal(w, tellers[1], pid, "r1", P_R1[1] + 2, only=tuple(before))
    late = backdate(w, w.members["north"][8],
                    Vote(target=pid, choice="no", severity="blocking", category="cost"), P_R1[1] - 5, before)
    # the dishonest one adds it
    seal(w, tellers[2], pid, "r1", P_R1[1] + 3, only=tuple(before) + (late.id,))
    r = tally(w, pid, P_R1[1] + DAY)
    assert r.rounds[0].seal is not None and r.rounds[0].seal.sealed
    assert r.rounds[0].passed
    assert any(i.id == late.id and i.reason == LATE for i in r.ignored)


def test_one_dishonest_teller_of_three_cannot_drop_a_timely_vote() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=8)
    no = w.vote(w.members["north"][8], pid, "no", P_R1[0] + 100, severity="blocking", category="cost")
    hs = heads(w, w.ids["north"])
    assert no.id in hs
    seal(w, tellers[0], pid, "r1", P_R1[1] + 1, only=hs)
    seal(w, tellers[1], pid, "r1", P_R1[1] + 2, only=hs)
    # the dishonest teller seals a view without the 'no' (heads from before it)
    seal(w, tellers[2], pid, "r1", P_R1[1] + 3, only=tuple(sorted(no.prev)))
    r = tally(w, pid, P_R1[1] + DAY)
    v = r.rounds[0].verdict
    assert r.rounds[0].seal is not None and r.rounds[0].seal.sealed
    assert v is not None and (v.yes, v.no) == (8, 1)
    assert not r.rounds[0].passed  # 8/9 < 9/10


def test_fewer_than_half_sealed_counts_as_unsealed_and_says_so() -> None:
    w, tellers, pid, before = late_blocking_setup()
    seal(w, tellers[0], pid, "r1", P_R1[1] + 1)
    late = backdate(w, w.members["north"][8],
                    Vote(target=pid, choice="no", severity="blocking", category="cost"), P_R1[1] - 5, before)
    r = tally(w, pid, P_R1[1] + DAY)
    s = r.rounds[0].seal
    assert s is not None and (s.sealed, s.tellers, s.sealed_by) == (False, 3, 1)
    assert "unsealed (1/3 tellers sealed)" in s.text()
    v = r.rounds[0].verdict
    assert v is not None and v.no == 1  # counted as before: the backdated vote changes it
    assert not any(i.id == late.id for i in r.ignored)


def test_a_seal_by_a_non_teller_or_after_the_seal_window_does_not_count() -> None:
    w, tellers, pid, before = late_blocking_setup()
    others = [m for m in w.members["north"] if m not in tellers]
    seal(w, others[0], pid, "r1", P_R1[1] + 1)
    seal(w, others[1], pid, "r1", P_R1[1] + 2)
    seal(w, tellers[0], pid, "r1", P_R1[1] + DAY)  # seal_window is one day: [close, close + 1 day)
    seal(w, tellers[1], pid, "r1", P_R1[1] + DAY + 5)
    r = tally(w, pid, P_R1[1] + 2 * DAY)
    s = r.rounds[0].seal
    assert s is not None and (s.sealed, s.sealed_by) == (False, 0)


def test_seals_change_nothing_by_themselves() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=8, no=1)
    before = tally(w, pid, P_R1[1] + DAY).simulate_json({})
    assert before["rounds"][0].pop("seal") == {"window": "r1", "sealed": False, "tellers": 3, "sealed_by": 0}
    for i, t in enumerate(tellers):
        seal(w, t, pid, "r1", P_R1[1] + 1 + i)
    after = tally(w, pid, P_R1[1] + DAY)
    assert after.rounds[0].seal is not None and after.rounds[0].seal.sealed
    doc = after.simulate_json({})
    assert doc["rounds"][0].pop("seal")["sealed"] is True
    assert doc == before


def test_a_teller_may_seal_with_several_seals_their_union_is_the_view() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=8)
    no = w.vote(w.members["north"][8], pid, "no", P_R1[0] + 100, severity="blocking", category="cost")
    hs = heads(w, w.ids["north"])
    # teller 0 splits its heads over two seals: the 'no' only in the second
    seal(w, tellers[0], pid, "r1", P_R1[1] + 1, only=tuple(sorted(no.prev)))
    seal(w, tellers[0], pid, "r1", P_R1[1] + 2, only=hs)
    seal(w, tellers[1], pid, "r1", P_R1[1] + 3, only=tuple(sorted(no.prev)))
    r = tally(w, pid, P_R1[1] + DAY)
    # the 'no' is in the view of teller 0 only (1 of 3): ignored as late
    assert r.rounds[0].seal is not None and r.rounds[0].seal.sealed
    assert any(i.id == no.id and i.reason == LATE for i in r.ignored)
    seal(w, tellers[2], pid, "r1", P_R1[1] + 4, only=hs)
    r = tally(w, pid, P_R1[1] + DAY)
    assert not any(i.id == no.id for i in r.ignored)  # now 2 of 3 saw it


def test_every_window_type_is_sealed() -> None:
    """r1 fails, a2 adopts an amendment, r2 passes, then contention: a late event
    backdated into each sealed window is ignored; a2's and c's seals are shown."""
    w, tellers = world(12)
    m = w.members["north"]
    pid = proposal(w)
    body = w.ids["north"]
    at = w.votes("north", pid, P_R1[0], yes=7, no=2)  # 7/9 fails round 1
    for i, t in enumerate(tellers):
        seal(w, t, pid, "r1", P_R1[1] + 1 + i)
    amend = w.amend(m[0], pid, "v2", P_A2[0] + 1000)
    w.votes("north", amend, P_A2[0] + 2000, yes=6, no=3)
    before_a2 = list(heads(w, body))
    for i, t in enumerate(tellers):
        seal(w, t, pid, "a2", P_A2[1] + 1 + i)
    w.votes("north", pid, P_R2[0] + 1000, yes=9)
    for i, t in enumerate(tellers):
        seal(w, t, pid, "r2", P_R2[1] + 1 + i)
    c = c_after(P_R2[1])
    before_c = list(heads(w, body))
    for i, t in enumerate(tellers):
        seal(w, t, pid, "c", c[1] + 1 + i)
    # late events, each backdated into a sealed window and delivered now
    # (members 9-11 never voted; 3-8 voted yes in round 2, and would table it by standing no)
    lr1 = backdate(w, m[9], Vote(target=pid, choice="yes"), P_R1[1] - 1, [pid])
    la2 = backdate(w, m[10], Amend(proposal=pid, text="v3 (late)"), P_A2[1] - 10, before_a2)
    lr2 = backdate(w, m[11], Vote(target=pid, choice="no", severity="blocking", category="x"), P_R2[1] - 1,
                   before_a2)
    lc = [backdate(w, m[i], Stand(proposal=pid, choice="no"), c[1] - 20 + i, before_c) for i in range(3, 9)]
    r = tally(w, pid, c[1] + DAY)
    assert r.state == "carried" and r.version == 2 and r.text == "v2"
    assert [x.window for x in r.seals()] == ["r1", "a2", "r2", "c"]
    assert all(x.sealed for x in r.seals())
    late = {i.id for i in r.ignored if i.reason == LATE}
    assert {lr1.id, la2.id, lr2.id} | {e.id for e in lc} <= late
    doc = r.to_json({})
    assert doc["rounds"][1]["amendment_seal"]["sealed"] is True
    assert doc["contention"]["seal"]["sealed_by"] == 3
    sim = r.simulate_json({})
    assert sim["rounds"][1]["contention_seal"]["sealed"] is True and sim["rounds"][1]["seal"]["window"] == "r2"
    _ = at


def test_a_late_withdrawal_is_ignored_in_a_sealed_round1() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    for i, t in enumerate(tellers):
        seal(w, t, pid, "r1", P_R1[1] + 1 + i)
    proposer = w.members["north"][-1]
    wd = backdate(w, proposer, Withdraw(proposal=pid), P_R1[1] - 1, [pid])
    r = tally(w, pid, P_R1[1] + DAY)
    assert r.state == "contention"
    assert any(i.id == wd.id and i.reason == LATE for i in r.ignored)


def test_recall_window_is_sealed() -> None:
    w, tellers = world()
    m = w.members["north"]
    mp = w.propose("north", kind="mandate", holder=pub(m[1]), task="treasurer", term_ms=20 * DAY, at=P0)
    w.votes("north", mp, P_R1[0], yes=9)
    carried = c_after(P_R1[1])[1]
    assert tally(w, mp, carried).state == "carried"
    rid = w.recall(m[2], mp, m[1], carried + 10)
    rw = (carried + 10, carried + 10 + 2 * DAY)
    w.votes("north", rid, rw[0] + 1, yes=4, no=4)  # 4/8 is not > 1/2: the recall fails
    before = list(heads(w, w.ids["north"]))
    for i, t in enumerate(tellers):
        seal(w, t, rid, "recall", rw[1] + 1 + i)
    late = backdate(w, m[8], Vote(target=rid, choice="yes"), rw[1] - 1, before)
    r = tally(w, mp, rw[1] + DAY)
    rc = r.recalls[0]
    assert rc.seal is not None and rc.seal.sealed and rc.seal.window == "recall"
    assert not rc.passed
    assert any(i.id == late.id and i.reason == LATE for i in r.ignored)
    assert r.to_json({})["recall"][0]["seal"]["sealed"] is True


def test_a_recalled_teller_is_no_longer_a_teller() -> None:
    w, tellers = world()
    m = w.members["north"]
    draw = w.store.all_events()
    dp = next(e for e in draw if isinstance(e.data, Propose) and e.data.proposal_kind == "draw")
    rid = w.recall(m[0] if m[0] != tellers[0] else m[1], dp.id, tellers[0], DRAW_CARRIED + 10)
    w.votes("north", rid, DRAW_CARRIED + 20, yes=9)
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    r = tally(w, pid, P_R1[1] + DAY)
    assert r.rounds[0].seal is not None and r.rounds[0].seal.tellers == 2
    _ = Recall
