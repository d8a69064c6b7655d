"""Table tests of the ladder for one base body, edge by edge (docs/rules.md s.2-3)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from imier.consensus import STATES, TRANSITIONS, LadderError, Share, step
from imier.consensus.engine import NotAProposal

from .test_consensus_world import A2, A3, DAY, R1, R2, R3, T0, World, contention_after

# -- arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num", "den", "ratio", "meets", "exceeds", "below"),
    [
        (9, 10, "9/10", True, False, False),
        (8, 10, "9/10", False, False, True),
        (2, 3, "2/3", True, False, False),
        (14, 21, "2/3", True, False, False),
        (5, 10, "1/2", True, False, False),
        (6, 10, "1/2", True, True, False),
        (4, 10, "1/2", False, False, True),
        (0, 0, "1/2", False, False, True),
        (0, 5, "0/1", True, False, False),
    ],
)
def test_share_tests_are_exact(num: int, den: int, ratio: str, meets: bool, exceeds: bool,
                               below: bool) -> None:
    s, r = Share(num=num, den=den), Fraction(ratio)
    assert (s.meets(r), s.exceeds(r), s.below(r)) == (meets, exceeds, below)


def test_transition_table_refuses_unknown_pairs() -> None:
    assert step("round1", "fail") == "round2"
    assert step("round3", "fail") == "rejected"
    for state in ("carried", "tabled", "rejected", "withdrawn"):
        for inp in ("withdraw", "open", "pass", "fail", "fall", "close"):
            with pytest.raises(LadderError):
                step(state, inp)
    assert {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values()) == set(STATES)


# -- one base body of 10 --------------------------------------------------------------


def assembly(n: int = 10, **charter: str) -> tuple[World, bytes]:
    w = World()
    w.body("a", n, charter=dict(charter))
    return w, w.propose("a")


@pytest.mark.parametrize(
    ("yes", "no", "abstain", "state", "round_"),
    [
        (9, 1, 0, "contention", 1),  # exactly 9/10 passes round 1
        (10, 0, 0, "contention", 1),
        (8, 1, 1, "round2", None),  # 8/9 < 9/10
        (5, 0, 0, "contention", 1),  # quorum exactly met: 5/10 took part
        (4, 0, 0, "round2", None),  # 4/10 < 1/2: no quorum
        (0, 0, 5, "round2", None),  # quorum, but yes + no = 0: no support
    ],
)
def test_round1_edges(yes: int, no: int, abstain: int, state: str, round_: int | None) -> None:
    w, pid = assembly()
    w.votes("a", pid, R1[0], yes=yes, no=no, abstain=abstain)
    r = w.tally(pid, R1[1])
    assert r.state == state
    assert r.decided_round == round_
    assert r.rounds[0].verdict is not None
    assert r.rounds[0].verdict.yes == yes and r.rounds[0].verdict.no == no


def test_no_votes_at_all_is_rejected_at_the_end_of_round3() -> None:
    w, pid = assembly()
    assert w.tally(pid, R3[1] - 1).state == "round3"
    r = w.tally(pid, R3[1])
    assert (r.state, r.decided_round, r.closed_at) == ("rejected", 3, R3[1])
    assert [x.verdict.participation.text() for x in r.rounds if x.verdict] == ["0/10"] * 3
    assert "lacked quorum" in r.explain()


def test_round3_passes_at_exactly_two_thirds() -> None:
    w, pid = assembly(9)
    w.votes("a", pid, R3[0], yes=6, no=3)
    r = w.tally(pid, R3[1])
    assert r.state == "contention" and r.decided_round == 3
    assert r.rounds[2].verdict is not None and r.rounds[2].verdict.support.text() == "6/9"
    w2, pid2 = assembly(9)
    w2.votes("a", pid2, R3[0], yes=5, no=4)
    assert w2.tally(pid2, R3[1]).state == "rejected"


def test_round2_uses_first_threshold_round3_final() -> None:
    w, pid = assembly(10)
    w.votes("a", pid, R2[0], yes=8, no=2)
    assert w.tally(pid, R2[1]).state == "round3"


@pytest.mark.parametrize(("yes", "no", "adopted"), [(5, 5, False), (6, 4, True), (4, 0, False)])
def test_amendment_needs_more_than_half(yes: int, no: int, adopted: bool) -> None:
    # (4, 0): 4/10 took part, below quorum.
    w, pid = assembly()
    aid = w.amend("a0", pid, "v2", A2[0])
    w.votes("a", aid, A2[0] + 1, yes=yes, no=no)
    r = w.tally(pid, A2[1])
    a = r.rounds[1].amendments[0]
    assert a.adopted is adopted
    assert (r.text, r.version) == (("v2", 2) if adopted else ("v1", 1))


def test_amendments_apply_in_timestamp_order_later_text_wins() -> None:
    w, pid = assembly()
    first = w.amend("a0", pid, "first", A2[0])
    second = w.amend("a1", pid, "second", A2[0] + 1)
    at = w.votes("a", second, A2[0] + 2, yes=10)
    w.votes("a", first, at, yes=10)
    r = w.tally(pid, A3[1])
    assert (r.text, r.version) == ("second", 3)


def test_round2_amendment_window_is_open_for_amendments() -> None:
    w, pid = assembly()
    aid = w.amend("a0", pid, "v2", A2[0])
    r = w.tally(pid, A2[0] + 5)
    assert (r.state, r.open_phase, r.round, r.window) == ("round2", "amend", 2, A2)
    assert r.open_amendments == (aid,)
    assert r.rounds[-1].open


def test_phases_and_windows_over_time() -> None:
    w, pid = assembly()
    seen = [(w.tally(pid, t).open_phase, w.tally(pid, t).round) for t in
            (T0, R1[0] - 1, R1[0], R1[1] - 1, R1[1], R2[0], A3[0], R3[0], R3[1])]
    assert seen == [("discussion", None), ("discussion", None), ("vote", 1), ("vote", 1),
                    ("amend", 2), ("vote", 2), ("amend", 3), ("vote", 3), (None, None)]


@pytest.mark.parametrize(("to_no", "state"), [(4, "carried"), (5, "tabled")])
def test_contention_floor_is_strict(to_no: int, state: str) -> None:
    # 10 yes, then to_no switch to no, then one more: 4+1 ends at exactly 5/10 (not
    # below 1/2: carried); 5+1 ends at 4/10 (tabled). Exactly 5/10 alone is carried too.
    w, pid = assembly()
    w.votes("a", pid, R1[0], yes=10)
    cw = contention_after(1)
    for i in range(to_no):
        w.stand(f"a{i}", pid, "no", cw[0] + i)
    r = w.tally(pid, cw[1])
    assert r.state == "carried"  # 5/10 is exactly the floor: not below
    w.stand("a9", pid, "no", cw[0] + 20)
    r = w.tally(pid, cw[1])
    assert r.state == state


def test_tabled_at_the_moment_support_falls_even_if_it_recovers() -> None:
    w, pid = assembly(4)
    w.votes("a", pid, R1[0], yes=4)
    cw = contention_after(1)
    for i, who in enumerate(("a0", "a1", "a2")):
        w.stand(who, pid, "no", cw[0] + i)
    for i, who in enumerate(("a0", "a1")):
        w.stand(who, pid, "yes", cw[0] + 10 + i)
    r = w.tally(pid, cw[1])
    assert r.state == "tabled" and r.closed_at == cw[0] + 2
    assert r.contention is not None and r.contention.now.text() == "1/4"


def test_effective_vote_is_the_last_inside_the_window() -> None:
    w, pid = assembly(10)
    w.votes("a", pid, R1[0], yes=10)
    w.vote("a0", pid, "no", R1[0] + 50)
    w.vote("a1", pid, "no", R1[1])  # at the close: outside, ignored
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.yes, v.no) == (9, 1)
    assert any(i.reason.startswith("outside") for i in r.ignored)


def test_equal_timestamps_are_ordered_by_id() -> None:
    w, pid = assembly(10)
    w.votes("a", pid, R1[0], yes=10)
    e1 = w.vote("a0", pid, "no", R1[0] + 100)
    e2 = w.vote("a0", pid, "abstain", R1[0] + 100)
    last = max(e1, e2, key=lambda e: e.id)
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None
    assert (v.no, v.abstain) == ((1, 0) if last is e1 else (0, 1))


def test_eligibility_is_fixed_at_the_proposal_timestamp() -> None:
    w = World()
    w.body("a", 4)
    pid = w.propose("a")
    w.admit("a0", "a", "late", at=T0 + 1)
    w.votes("a", pid, R1[0], yes=3, no=1)
    w.vote("late", pid, "yes", R1[0] + 10)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.eligible, v.yes) == (4, 3)
    assert [i.kind for i in r.ignored] == ["vote"] and "not eligible" in r.ignored[0].reason


def test_member_who_left_before_a_round_is_not_counted_in_it() -> None:
    w, pid = assembly(10)
    w.leave("a9", "a", at=T0 + 10)
    w.votes("a", pid, R1[0], yes=9)
    w.vote("a9", pid, "no", R1[0] + 20)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.eligible, v.yes, v.no) == (9, 9, 0)


def test_withdrawal_by_the_proposer_before_round1_closes() -> None:
    w, pid = assembly()
    w.withdraw("a1", pid, T0 + 10)  # not the proposer: ignored
    w.withdraw("a0", pid, R1[0] + 10)
    r = w.tally(pid, R1[1])
    assert (r.state, r.closed_at) == ("withdrawn", R1[0] + 10)
    assert r.ignored[0].reason == "only the proposer may withdraw"


def test_withdrawal_after_round1_closed_is_ignored() -> None:
    w, pid = assembly()
    w.withdraw("a0", pid, R1[1] + 1)
    r = w.tally(pid, R1[1] + 2)
    assert r.state == "round2"
    assert r.ignored[0].reason == "made after round 1 closed"


def test_grievances_and_delegates() -> None:
    w, pid = assembly(10)
    at = w.votes("a", pid, R1[0], yes=5)
    for who, cat, sev, dlg in [("a5", "cost", "minor", "a7"), ("a6", "cost", "minor", "a8"),
                               ("a7", "cost", "minor", "a8"), ("a8", "noise", "minor", None),
                               ("a9", "safety", "blocking", "a9")]:
        w.vote(who, pid, "no", at, severity=sev, category=cat, delegate=dlg)
        at += 1
    r = w.tally(pid, R1[1])
    g = {x.category: x for x in r.rounds[0].grievances}
    assert set(g) == {"cost", "noise"}  # round 1 hands on its minor objections
    from .test_consensus_world import pub

    assert (g["cost"].count, g["cost"].delegate) == (3, pub("a8"))
    assert g["noise"].delegate is None


def test_delegate_tie_goes_to_the_smallest_key() -> None:
    w, pid = assembly(10)
    at = w.votes("a", pid, R1[0], yes=6)
    for who, dlg in [("a6", "a1"), ("a7", "a2")]:
        w.vote(who, pid, "no", at, category="cost", delegate=dlg)
        at += 1
    from .test_consensus_world import pub

    g = w.tally(pid, R1[1]).rounds[0].grievances[0]
    assert g.delegate == min(pub("a1"), pub("a2"))


def test_proposal_by_a_non_member_is_void() -> None:
    w = World()
    w.body("a", 3)
    w.body("b", 2)
    pid = w.propose("a", by="b0")
    with pytest.raises(NotAProposal):
        w.tally(pid, R1[1])
    from imier.consensus import proposals

    assert proposals(w.events()) == []


def test_explain_names_the_numbers() -> None:
    w, pid = assembly(20)
    w.votes("a", pid, R3[0], yes=14, no=6)
    cw = contention_after(3)
    w.stand("a15", pid, "yes", cw[0])
    r = w.tally(pid, cw[1])
    assert r.explain() == "carried in round 3 with 14/20 ≥ 2/3; contention closed with 15/20"


def test_quorum_and_windows_follow_a_custom_charter() -> None:
    w, pid = assembly(6, quorum="1/3", discussion="60", vote_window="60")
    t1 = T0 + 60_000
    w.votes("a", pid, t1, yes=2)
    r = w.tally(pid, t1 + 60_000)
    assert r.state == "contention"
    assert r.rounds[0].vote_window == (t1, t1 + 60_000)


def test_result_is_stable_before_its_window_closes() -> None:
    w, pid = assembly()
    w.votes("a", pid, R1[0], yes=10)
    r = w.tally(pid, R1[0] + DAY)
    assert r.state == "round1" and r.rounds[0].open and not r.rounds[0].passed
    assert r.to_json({})["rounds"][0]["open"] is True


def test_consensus_is_pure_no_io_no_clock_no_floats() -> None:
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import imier.consensus

    code = ("import sys, imier.consensus\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlite3', 'trio', 'libp2p')]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for path in Path(imier.consensus.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), path.name
            assert not (isinstance(node, ast.Name) and node.id == "float"), path.name
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("time", "random", "sqlite3", "trio", "os") for n in names)


def test_amendments_and_standings_the_ladder_never_reached_are_listed_as_ignored() -> None:
    """A proposal carried in round 1 holds no amendment window; a standing before
    any contention phase counts for nothing: status says so for each."""
    w, pid = assembly(10)
    early_stand_at = R1[0] + 1
    w.stand("a1", pid, "no", early_stand_at)
    w.votes("a", pid, R1[0] + 2, yes=10)
    aid = w.amend("a2", pid, "a new text", R1[1] + 1)
    cw = contention_after(1)
    r = w.tally(pid, cw[1])
    assert r.state == "carried" and r.version == 1
    reasons = {i.id: (i.kind, i.reason) for i in r.ignored}
    assert reasons[aid] == ("amend", "no amendment window was open then")
    stands = [v for v in reasons.values() if v[0] == "stand"]
    assert stands == [("stand", "outside the contention window")]
    # A proposal that never passes holds no contention phase at all.
    w2, pid2 = assembly(10)
    w2.stand("a3", pid2, "no", R1[0] + 5)
    r2 = w2.tally(pid2, R2[0])
    assert r2.state == "round2"
    assert [(i.kind, i.reason) for i in r2.ignored] == [("stand", "no contention phase was open then")]
