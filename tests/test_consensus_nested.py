"""Nested verdicts: combine modes, three levels, per-body charters, contention
in federations, and the corners docs/rules.md leaves open (docs/decisions.md)."""

from __future__ import annotations

import pytest

from .test_consensus_world import A2, DAY, R1, T0, World, contention_after, pub


def town(mode: str, sizes: dict[str, int], **charter: str) -> tuple[World, bytes]:
    w = World()
    for name, n in sizes.items():
        w.body(name, n)
    w.body("town", parts=tuple(sizes), charter={"combine": mode, **charter})
    return w, w.propose("town")


@pytest.mark.parametrize(
    ("mode", "support", "participation", "passed"),
    [
        ("verdicts", "2/3", "3/3", False),  # two bodies passed, one did not
        ("support", "19/20", "3/3", True),  # mean(2/2, 2/2, 17/20) = 57/60
        ("population", "21/24", "24/24", False),  # one assembly of 24 people
    ],
)
def test_each_combine_mode(mode: str, support: str, participation: str, passed: bool) -> None:
    w, pid = town(mode, {"a": 2, "b": 2, "c": 20})
    w.votes("a", pid, R1[0], yes=2)
    w.votes("b", pid, R1[0] + 10, yes=2)
    w.votes("c", pid, R1[0] + 20, yes=17, no=3)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None
    assert (v.support.text(), v.participation.text(), v.passed) == (support, participation, passed)
    doc = r.to_json(w.names())["rounds"][0]
    assert set(doc["bodies"]) == {"a", "b", "c"}
    assert doc["bodies"]["c"]["support"] == "17/20"


def test_verdicts_mode_absent_body_and_body_without_support() -> None:
    # a passes; b lacks quorum (absent); c has quorum but only abstentions: counts as no (s.7.2).
    w, pid = town("verdicts", {"a": 2, "b": 4, "c": 2})
    w.votes("a", pid, R1[0], yes=2)
    w.votes("b", pid, R1[0] + 10, yes=1)
    w.votes("c", pid, R1[0] + 20, abstain=2)
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None
    assert (v.participation.text(), v.support.text(), v.yes, v.no) == ("2/3", "1/2", 1, 1)


def test_support_mode_leaves_out_bodies_without_a_ratio() -> None:
    w, pid = town("support", {"a": 2, "c": 2})
    w.votes("a", pid, R1[0], yes=2)
    w.votes("c", pid, R1[0] + 20, abstain=2)
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None and v.support.text() == "1/1" and v.passed


def test_federation_quorum_counts_bodies() -> None:
    w, pid = town("verdicts", {"a": 2, "b": 2, "c": 2})
    w.votes("a", pid, R1[0], yes=2)  # one body of three took part: 1/3 < 1/2
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None and not v.quorum and not v.passed


def test_each_body_uses_its_own_charter() -> None:
    w = World()
    w.body("a", 10, charter={"first_threshold": "7/10", "final_threshold": "2/3",
                             "contention_floor": "1/2"})
    w.body("b", 10)
    w.body("town", parts=("a", "b"))
    pid = w.propose("town")
    w.votes("a", pid, R1[0], yes=7, no=3)  # passes under a's own 7/10
    w.votes("b", pid, R1[0] + 20, yes=9, no=1)
    r = w.tally(pid, R1[1])
    assert [x.passed for x in r.rounds[0].verdict.parts] == [True, True]  # type: ignore[union-attr]
    assert r.state == "contention"


def test_three_levels_of_nesting() -> None:
    w = World()
    for name in ("a", "b", "c", "d"):
        w.body(name, 2)
    w.body("t1", parts=("a", "b"))
    w.body("t2", parts=("c",))
    w.body("t3", parts=("d",))
    w.body("r1", parts=("t1", "t2"), kind="region")
    w.body("r2", parts=("t3",), kind="region")
    w.body("world", parts=("r1", "r2"), kind="collective")
    pid = w.propose("world")
    # A second proposal: t1 fails (a yes, b no), so r1 = 1/2 fails, and the world 1/2.
    pid2 = w.propose("world", at=T0 + 1000)
    at = R1[0]
    for name in ("a", "b", "c", "d"):
        at = w.votes(name, pid, at, yes=2)
    at = R1[0] + 1000
    for name, yes in (("a", 2), ("b", 0), ("c", 2), ("d", 2)):
        at = w.votes(name, pid2, at, yes=yes, no=2 - yes)
    r = w.tally(pid, R1[1])
    doc = r.to_json(w.names())["rounds"][0]
    assert set(doc["bodies"]) == {"r1", "r2", "t1", "t2", "t3", "a", "b", "c", "d"}
    assert r.state == "contention" and doc["support"] == "2/2"
    doc2 = w.tally(pid2, R1[1] + 1000).to_json(w.names())["rounds"][0]
    assert (doc2["bodies"]["t1"]["support"], doc2["bodies"]["r1"]["support"], doc2["support"]) == (
        "1/2", "1/2", "1/2")


def test_contention_in_a_federation_member_falls_for_good() -> None:
    w, pid = town("verdicts", {"a": 4, "b": 4})
    w.votes("a", pid, R1[0], yes=4)
    w.votes("b", pid, R1[0] + 10, yes=4)
    cw = contention_after(1)
    for i in range(3):  # a falls to 1/4 < 1/2: a stands no; town 1/2 is not below 1/2
        w.stand(f"a{i}", pid, "no", cw[0] + i)
    for i in range(3):  # a recovers its support, but stands no for the rest of the phase
        w.stand(f"a{i}", pid, "yes", cw[0] + 10 + i)
    r = w.tally(pid, cw[1])
    assert r.state == "carried" and r.contention is not None
    assert r.contention.now.text() == "1/2" and r.contention.fallen == (w.ids["a"],)
    for i in range(3):
        w.stand(f"b{i}", pid, "no", cw[0] + 20 + i)
    r = w.tally(pid, cw[1])
    assert r.state == "tabled" and r.closed_at == cw[0] + 22


def test_population_contention_counts_people() -> None:
    w, pid = town("population", {"a": 2, "b": 8})
    w.votes("a", pid, R1[0], yes=2)
    w.votes("b", pid, R1[0] + 10, yes=8)
    cw = contention_after(1)
    for i in range(5):
        w.stand(f"b{i}", pid, "no", cw[0] + i)
    assert w.tally(pid, cw[1]).state == "carried"  # 5/10: not below 1/2
    w.stand("a0", pid, "no", cw[0] + 10)
    assert w.tally(pid, cw[1]).state == "tabled"


def test_amendment_adoption_is_federated() -> None:
    w, pid = town("verdicts", {"a": 4, "b": 4})
    aid = w.amend("a0", pid, "v2", A2[0])
    w.votes("a", aid, A2[0] + 1, yes=3, no=1)  # a adopts (3/4 > 1/2)
    w.votes("b", aid, A2[0] + 10, yes=2, no=2)  # b does not (2/4 = 1/2)
    r = w.tally(pid, A2[1])
    a = r.rounds[1].amendments[0]
    assert (a.verdict.support.text(), a.adopted) == ("1/2", False)


def test_person_in_two_base_bodies_counts_in_each_verdict_once_in_population() -> None:
    for mode, expected in (("verdicts", ("2/2", 2)), ("population", ("3/3", 3))):
        w = World()
        w.body("a", 2)
        w.body("b", 1)
        w.admit("b0", "b", "a0")
        w.body("town", parts=("a", "b"), charter={"combine": mode})
        pid = w.propose("town")
        w.votes("a", pid, R1[0], yes=2)
        w.vote("b0", pid, "yes", R1[0] + 10)
        v = w.tally(pid, R1[1]).rounds[0].verdict
        assert v is not None
        assert (v.support.text(), v.eligible) == expected


def test_body_leaving_the_federation_mid_proposal() -> None:
    w, pid = town("verdicts", {"a": 2, "b": 2})
    w.part("b0", "town", "b", join=False, at=T0 + 10)
    w.votes("a", pid, R1[0], yes=2)
    w.votes("b", pid, R1[0] + 10, no=2)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.eligible, v.support.text()) == (1, "1/1")
    assert all("not eligible" in i.reason for i in r.ignored)


def test_body_joining_after_the_proposal_does_not_vote_on_it() -> None:
    # Joining takes both sides (s.9.2): a person of the town names the body, and the
    # body carries a federate proposal; the body is a member from the later of the two.
    w, pid = town("verdicts", {"a": 2})
    w.body("late", 2)
    w.part("late0", "town", "late", join=True, at=T0 + 10)  # a person of 'late' alone: no naming
    w.part("a0", "town", "late", join=True, at=T0 + 11)  # the town names it
    pending = w.propose("town", at=T0 + 20)  # named, not yet consenting: not a member
    w.votes("a", pid, R1[0], yes=2)
    w.votes("late", pid, R1[0] + 10, no=2)
    done = w.consent(["late"], "town")
    pid2 = w.propose("town", at=done + 20)
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None and v.eligible == 1 and v.passed
    vp = w.tally(pending, R1[1] + 20).rounds[0].verdict
    assert vp is not None and vp.eligible == 1
    v2 = w.tally(pid2, done + 20 + 3 * DAY).rounds[0].verdict
    assert v2 is not None and v2.eligible == 2


def test_only_votes_in_the_proposal_body_record_count() -> None:
    # Another body's record is held by some nodes and not others: it must not matter.
    w, pid = town("verdicts", {"a": 2})
    stray = w.vote("a0", pid, "yes", R1[0], body=w.ids["a"])
    w.vote("a1", pid, "yes", R1[0] + 1)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and v.parts[0].yes == 1
    assert [(i.id, i.author) for i in r.ignored] == [(stray.id, pub("a0"))]
    assert "another body's record" in r.ignored[0].reason
    without = [e for e in w.events() if e.body_id != w.ids["a"] or e.kind != "vote"
               or getattr(e.data, "target", None) != pid]  # (a's consent to the town stays)
    from imier.consensus import tally_proposal

    assert tally_proposal(without, pid, R1[1]).simulate_json({}) == r.simulate_json({})
