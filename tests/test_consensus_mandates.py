"""Charters in force, mandates, recall, draws by lot, committee sunset and forks."""

from __future__ import annotations

import pytest

from imier.consensus import committee_until, draw_seed, sortition
from imier.consensus.engine import NotAProposal
from imier.protocol.events import Vote, sign_event
from imier.store.author import choose_prev

from .test_consensus_world import DAY, R1, T0, World, contention_after, key, pub

CARRIED_1 = contention_after(1)[1]  # a proposal passed in round 1 is carried then


def carry(w: World, body: str, pid: bytes, at: int = R1[0]) -> int:
    return w.votes(body, pid, at, yes=len(w.members[body]))


def test_charter_changes_only_by_a_carried_charter_proposal_from_its_carrying_on() -> None:
    w = World()
    w.body("a", 10)
    change = w.propose("a", kind="charter", text="lower the bar", charter={"first_threshold": "7/10"})
    before = w.propose("a", at=T0 + 1)  # made before the change is carried: old charter
    carry(w, "a", change)
    w.votes("a", before, R1[0] + 1000, yes=7, no=3)
    after = w.propose("a", at=CARRIED_1)  # made at the moment it is carried: new charter
    t1 = CARRIED_1 + 3 * DAY
    w.votes("a", after, t1, yes=7, no=3)
    assert w.tally(change, CARRIED_1).state == "carried"
    assert w.tally(before, R1[1] + 1000).state == "round2"
    r = w.tally(after, t1 + 2 * DAY)
    assert r.state == "contention"
    assert r.rounds[0].verdict is not None and r.rounds[0].verdict.threshold.text() == "7/10"


def test_tabled_charter_proposal_changes_nothing() -> None:
    w = World()
    w.body("a", 10)
    change = w.propose("a", kind="charter", text="x", charter={"quorum": "1/10"})
    carry(w, "a", change)
    cw = contention_after(1)
    for i in range(6):
        w.stand(f"a{i}", change, "no", cw[0] + i)
    later = w.propose("a", at=cw[1] + 1)
    w.vote("a0", later, "yes", cw[1] + 1 + 3 * DAY)
    assert w.tally(change, cw[1]).state == "tabled"
    assert w.tally(later, cw[1] + 1 + 5 * DAY).state == "round2"  # 1/10 took part: no quorum


def test_incoherent_charter_proposal_is_void() -> None:
    w = World()
    w.body("a", 3)
    pid = w.propose("a", kind="charter", text="x", charter={"first_threshold": "1/3"})
    with pytest.raises(NotAProposal, match="contention_floor <= final_threshold"):
        w.tally(pid, R1[1])


def test_mandate_starts_when_carried_and_expires_after_its_term() -> None:
    w = World()
    w.body("a", 10)
    pid = w.propose("a", kind="mandate", text="m", holder=pub("a1"), task="buy seeds",
                    term_ms=10 * DAY)
    carry(w, "a", pid)
    assert w.tally(pid, CARRIED_1 - 1).mandates == ()
    r = w.tally(pid, CARRIED_1)
    (m,) = r.mandates
    assert (m.holder, m.task, m.start, m.expires) == (pub("a1"), "buy seeds", CARRIED_1, CARRIED_1 + 10 * DAY)
    assert m.active(CARRIED_1) and not m.active(CARRIED_1 + 10 * DAY)
    assert r.to_json({})["mandate"][0]["status"] == "active"


def test_mandate_term_is_capped_by_the_charter() -> None:
    w = World()
    w.body("a", 2, charter={"mandate_term": "5d"})
    pid = w.propose("a", kind="mandate", text="m", holder=pub("a1"), task="t", term_ms=10 * DAY)
    carry(w, "a", pid)
    (m,) = w.tally(pid, CARRIED_1).mandates
    assert m.expires - m.start == 5 * DAY


@pytest.mark.parametrize(("yes", "recalled"), [(6, True), (5, False)])
def test_recall_needs_more_than_half_with_quorum(yes: int, recalled: bool) -> None:
    w = World()
    w.body("a", 10)
    pid = w.propose("a", kind="mandate", text="m", holder=pub("a1"), task="t", term_ms=20 * DAY)
    carry(w, "a", pid)
    rid = w.recall("a2", pid, "a1", CARRIED_1 + DAY)
    w.votes("a", rid, CARRIED_1 + DAY + 1, yes=yes, no=10 - yes)
    r = w.tally(pid, CARRIED_1 + 3 * DAY)
    (rc,) = r.recalls
    (m,) = r.mandates
    assert rc.passed is recalled
    assert (m.ended == CARRIED_1 + 3 * DAY) is recalled
    assert m.active(CARRIED_1 + 3 * DAY) is not recalled


def test_recall_of_someone_without_the_mandate_is_ignored() -> None:
    w = World()
    w.body("a", 4)
    pid = w.propose("a", kind="mandate", text="m", holder=pub("a1"), task="t", term_ms=20 * DAY)
    carry(w, "a", pid)
    w.recall("a2", pid, "a3", CARRIED_1 + DAY)
    r = w.tally(pid, CARRIED_1 + 3 * DAY)
    assert r.recalls == () and r.ignored[-1].reason == "names no holder of this mandate"


def test_mandate_holder_must_be_a_member() -> None:
    w = World()
    w.body("a", 4)
    pid = w.propose("a", kind="mandate", text="m", holder=pub("stranger"), task="t", term_ms=DAY)
    carry(w, "a", pid)
    r = w.tally(pid, CARRIED_1)
    assert r.state == "carried" and r.mandates == ()


def test_draw_is_recomputable_from_the_deciding_votes() -> None:
    w = World()
    w.body("a", 6)
    cands = tuple(sorted(pub(f"a{i}") for i in range(6)))
    pid = w.propose("a", kind="draw", text="d", candidates=cands, k=2, task="treasurer")
    carry(w, "a", pid)
    r = w.tally(pid, CARRIED_1)
    assert r.draw is not None
    assert r.draw.votes == r.rounds[0].votes and len(r.draw.votes) == 6
    assert r.draw.seed == draw_seed(list(reversed(r.rounds[0].votes)))
    assert r.draw.chosen == sortition(r.draw.seed, list(reversed(cands)), 2)
    assert [m.holder for m in r.mandates] == list(r.draw.chosen)
    doc = r.to_json({})
    assert doc["draw"]["seed"] == r.draw.seed.hex() and len(doc["draw"]["chosen"]) == 2
    assert w.tally(pid, CARRIED_1 - 1).draw is None  # nobody sees it before it is carried


def test_committee_sunsets_unless_renewed() -> None:
    w = World()
    w.body("a", 4)
    w.body("c", 2, kind="committee", parent="a", charter={"mandate_term": "20d"})
    founded = w.store.get(w.ids["c"])
    assert founded is not None
    renew = w.propose("a", kind="renew", text="keep it", committee=w.ids["c"])
    carry(w, "a", renew)
    late = founded.ts + 25 * DAY
    in_committee = w.propose("c", at=late)
    events = w.events()
    # The store's closure of a committee brings its parent's record, where renewals are.
    closure = w.store.events_for_bodies(w.store.closure(w.ids["c"]))
    from imier.consensus import tally_proposal

    assert tally_proposal(closure, in_committee, late).state == "discussion"
    assert committee_until(events, w.ids["c"], CARRIED_1) == CARRIED_1 + 20 * DAY
    assert w.tally(in_committee, late).state == "discussion"
    # Without the renewal the committee has sunset: no one may propose in it.
    no_renewal = [e for e in events if e.body_id != w.ids["a"] or e.kind in ("found", "admit")]
    assert committee_until(no_renewal, w.ids["c"], late) == founded.ts + 20 * DAY
    with pytest.raises(NotAProposal):
        tally_proposal(no_renewal, in_committee, late)


def test_forked_author_is_not_counted_from_the_fork_on() -> None:
    w = World()
    w.body("a", 10)
    pid = w.propose("a")
    w.votes("a", pid, R1[0], yes=9)
    seq, prev, _ = choose_prev(w.store, w.ids["a"], pub("a9"))
    one = sign_event(key("a9"), body=w.ids["a"], ts=R1[0] + 50, seq=seq, prev=prev,
                     data=Vote(target=pid, choice="yes"))
    two = sign_event(key("a9"), body=w.ids["a"], ts=R1[0] + 51, seq=seq, prev=prev,
                     data=Vote(target=pid, choice="no", severity="minor", category="x"))
    res = w.store.ingest([one, two])
    assert set(res.accepted) == {one.id, two.id}
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.yes, v.no) == (9, 0)
    assert r.forks == ((pub("a9"), *sorted((one.id, two.id))),)
    assert {i.id for i in r.ignored} == {one.id, two.id}


def test_member_body_charter_change_applies_to_later_federation_proposals() -> None:
    w = World()
    w.body("a", 10)
    w.body("b", 10)
    w.body("town", parts=("a", "b"))
    change = w.propose("a", kind="charter", text="x", charter={"first_threshold": "7/10"})
    early = w.propose("town", at=T0 + 1)
    carry(w, "a", change)
    at = w.votes("a", early, R1[0] + 1000, yes=7, no=3)
    w.votes("b", early, at, yes=10)
    late = w.propose("town", at=CARRIED_1)
    t1 = CARRIED_1 + 3 * DAY
    at = w.votes("a", late, t1, yes=7, no=3)
    w.votes("b", late, at, yes=10)
    early_a = w.tally(early, R1[1] + 1000).to_json(w.names())["rounds"][0]["bodies"]["a"]
    assert (early_a["support"], early_a["passed"]) == ("7/10", False)  # under a's old 9/10
    r = w.tally(late, t1 + 2 * DAY)
    late_a = r.to_json(w.names())["rounds"][0]["bodies"]["a"]
    assert (late_a["support"], late_a["passed"]) == ("7/10", True)  # under a's new 7/10
    assert r.state == "contention"


def test_recall_in_a_federation_is_nested() -> None:
    w = World()
    w.body("a", 4)
    w.body("b", 4)
    w.body("town", parts=("a", "b"))
    pid = w.propose("town", kind="mandate", text="m", holder=pub("a1"), task="delegate",
                    term_ms=20 * DAY)
    at = w.votes("a", pid, R1[0], yes=4)
    w.votes("b", pid, at, yes=4)
    rid = w.recall("b0", pid, "a1", CARRIED_1 + DAY)
    at = w.votes("a", rid, CARRIED_1 + DAY + 1, yes=3, no=1)  # a: 3/4 > 1/2
    w.votes("b", rid, at, yes=2, no=2)  # b: 2/4 is not > 1/2, so the town is at 1/2: kept
    r = w.tally(pid, CARRIED_1 + 3 * DAY)
    (rc,) = r.recalls
    assert (rc.verdict.support.text(), rc.passed) == ("1/2", False)
    assert r.mandates[0].active(CARRIED_1 + 3 * DAY)


def test_stands_outside_the_window_or_by_outsiders_are_ignored() -> None:
    w = World()
    w.body("a", 4)
    w.body("x", 1)
    pid = w.propose("a")
    w.votes("a", pid, R1[0], yes=4)
    cw = contention_after(1)
    w.stand("x0", pid, "no", cw[0] + 1)
    w.stand("a0", pid, "no", cw[1])
    r = w.tally(pid, cw[1])
    assert r.state == "carried" and r.contention is not None and r.contention.now.text() == "4/4"
    reasons = sorted(i.reason for i in r.ignored)
    assert reasons[0].startswith("not eligible") and reasons[1] == "outside the contention window"


def test_only_members_are_drawn() -> None:
    w = World()
    w.body("a", 4)
    members = [pub(f"a{i}") for i in range(4)]
    strangers = [bytes([0xEE]) * 31 + bytes([i]) for i in range(3)]
    cands = tuple(sorted(members[:2] + strangers))
    pid = w.propose("a", kind="draw", text="d", candidates=cands, k=3, task="stewards")
    carry(w, "a", pid)
    r = w.tally(pid, CARRIED_1)
    assert r.draw is not None
    assert set(r.draw.candidates) == set(members[:2])
    assert set(r.draw.chosen) == set(members[:2])  # fewer than k eligible: all of them
    assert r.draw.chosen == sortition(r.draw.seed, members[:2], 3)
    assert {m.holder for m in r.mandates} == set(members[:2])
