"""People and their devices (docs/rules.md s.11), names, and federation by consent (s.9.2)."""

from __future__ import annotations

from imier.consensus import (
    members_of_federation,
    pending_invitations,
    person_of,
    profile_names,
    tally_proposal,
)
from imier.protocol.events import Link, Profile, Unlink

from .test_consensus_world import DAY, R1, T0, World, pub


def linked(members: int = 3) -> World:
    w = World()
    w.body("north", members)
    # north0 links a phone: from its timestamp the phone acts for north0
    w.emit("north0", w.ids["north"], Link(device=pub("phone")), T0 - 100)
    return w


def test_a_device_votes_as_its_person_and_the_person_counts_once() -> None:
    w = linked()
    pid = w.propose("north", by="north1")
    w.vote("north0", pid, "no", R1[0], severity="blocking", category="cost")
    w.vote("phone", pid, "yes", R1[0] + 5)  # later: the person's effective vote
    w.vote("north1", pid, "yes", R1[0] + 6)
    r = w.tally(pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and (v.yes, v.no, v.eligible) == (2, 0, 3)
    assert not r.forks  # each device keeps its own chain
    assert person_of(w.events(), w.ids["north"], pub("phone"), R1[0]) == pub("north0")
    assert person_of(w.events(), w.ids["north"], pub("phone"), T0 - 101) == pub("phone")


def test_the_latest_over_all_devices_counts_whichever_device() -> None:
    w = linked()
    pid = w.propose("north", by="north1")
    w.vote("phone", pid, "yes", R1[0])
    w.vote("north0", pid, "no", R1[0] + 5, severity="blocking", category="cost")
    v = w.tally(pid, R1[1]).rounds[0].verdict
    assert v is not None and (v.yes, v.no) == (0, 1)


def test_unlink_ends_a_device_from_its_timestamp() -> None:
    w = linked()
    w.emit("north0", w.ids["north"], Unlink(device=pub("phone")), T0 + 10)
    pid = w.propose("north", by="north1", at=T0 + 20)
    w.vote("phone", pid, "yes", R1[0] + 20)  # round 1 of a proposal made at T0 + 20
    r = w.tally(pid, R1[1] + 20)
    v = r.rounds[0].verdict
    assert v is not None and v.yes == 0
    # an unlinked device is its own key again: a stranger to the body
    assert [i.reason for i in r.ignored if i.author == pub("phone")] == [
        "not eligible: not a member at the proposal's timestamp and the window's opening"]


def test_a_link_by_a_stranger_or_in_another_tree_does_not_count() -> None:
    w = World()
    w.body("north", 2)
    w.body("south", 2)
    # the link is in south's record: it counts for south (and bodies above), not for north
    w.emit("south0", w.ids["south"], Link(device=pub("phone")), T0 - 50)
    pid = w.propose("north")
    w.vote("phone", pid, "yes", R1[0])
    r = w.tally(pid, R1[1])
    assert r.rounds[0].verdict is not None and r.rounds[0].verdict.yes == 0
    assert person_of(w.events(), w.ids["north"], pub("phone"), R1[0]) == pub("phone")
    assert person_of(w.events(), w.ids["south"], pub("phone"), R1[0]) == pub("south0")


def test_recover_links_the_new_key_and_unlinks_every_other_device() -> None:
    w = linked(4)
    body = w.ids["north"]
    rid = w.propose("north", by="north1", kind="recover", person=pub("north0"), new_key=pub("new0"))
    w.votes("north", rid, R1[0], yes=4)
    carried = R1[1] + 7 * DAY
    assert w.tally(rid, carried).state == "carried"
    assert person_of(w.events(), body, pub("new0"), carried) == pub("north0")
    assert person_of(w.events(), body, pub("phone"), carried) == pub("phone")  # a stranger again
    assert person_of(w.events(), body, pub("north0"), carried) is None
    assert person_of(w.events(), body, pub("phone"), carried - 1) == pub("north0")
    pid = w.propose("north", by="north1", at=carried + 10)
    r1 = (carried + 10 + 3 * DAY, carried + 10 + 5 * DAY)
    w.vote("new0", pid, "yes", r1[0])
    w.vote("phone", pid, "no", r1[0] + 1, severity="blocking", category="cost")
    w.vote("north0", pid, "no", r1[0] + 2, severity="blocking", category="cost")
    v = w.tally(pid, r1[1]).rounds[0].verdict
    assert v is not None and (v.yes, v.no) == (1, 0)


def test_profile_names_latest_by_timestamp_per_person() -> None:
    w = linked()
    body = w.ids["north"]
    w.emit("north0", body, Profile(name="Ana"), T0 + 1)
    w.emit("phone", body, Profile(name="Ana M."), T0 + 2)
    w.emit("north1", body, Profile(name="Ana"), T0 + 3)
    names = profile_names(w.events(), body)
    assert names == {pub("north0"): "Ana M.", pub("north1"): "Ana"}
    assert profile_names(w.events(), body, T0 + 1) == {pub("north0"): "Ana"}


def test_federation_by_consent_and_pending_invitations() -> None:
    w = World()
    w.body("a", 2)
    w.body("b", 2)
    w.body("town", parts=("a",))
    fed = w.ids["town"]
    w.part("a0", "town", "b", join=True)  # the town names b
    named = w.ready["town"]  # when a's consent is carried
    assert members_of_federation(w.events(), fed, named) == {w.ids["a"]}
    assert pending_invitations(w.events(), w.ids["b"], named) == [fed]
    done = w.consent(["b"], "town")
    assert members_of_federation(w.events(), fed, done) == {w.ids["a"], w.ids["b"]}
    assert members_of_federation(w.events(), fed, done - 1) == {w.ids["a"]}
    assert pending_invitations(w.events(), w.ids["b"], done) == []
    # b leaves by its own carried decision
    w.t = done
    left = w.consent(["b"], "town", join=False)
    assert members_of_federation(w.events(), fed, left) == {w.ids["a"]}


def test_consent_without_naming_is_not_membership() -> None:
    w = World()
    w.body("a", 2)
    w.body("b", 2)
    w.body("town", parts=("a",))
    done = w.consent(["b"], "town")
    assert members_of_federation(w.events(), w.ids["town"], done) == {w.ids["a"]}


def test_named_without_consent_gives_no_verdict() -> None:
    w = World()
    w.body("a", 2)
    w.body("b", 2)
    w.body("town", parts=("a",))
    w.part("a0", "town", "b", join=True)
    pid = w.propose("town")
    w.votes("a", pid, R1[0], yes=2)
    w.votes("b", pid, R1[0] + 10, no=2)
    r = tally_proposal(w.events(), pid, R1[1])
    v = r.rounds[0].verdict
    assert v is not None and v.eligible == 1 and v.passed
    assert all("not eligible" in i.reason for i in r.ignored)


def test_a_device_admits_and_leaves_for_its_person() -> None:
    from imier.consensus import members_at
    from imier.protocol.events import Admit, Leave

    w = linked()
    body = w.ids["north"]
    w.emit("phone", body, Admit(member=pub("dora")), T0 - 50)
    assert pub("dora") in members_at(w.events(), body, T0)
    w.emit("phone", body, Leave(), T0 - 40)  # the phone's person, north0, leaves
    assert pub("north0") not in members_at(w.events(), body, T0)
    assert pub("phone") not in members_at(w.events(), body, T0)
