"""The page's people (web/source.py) are consensus's: links, unlinks and recoveries
as the tally reads them (docs/decisions.md 40-41), names by profile_names."""

from __future__ import annotations

from imier.protocol.events import Link, Profile
from imier.testing import DAY, R1, T0, World, pub
from imier.web import source


def test_a_recovery_moves_the_person_to_the_new_key_and_strands_the_old_devices() -> None:
    w = World()
    w.body("north", 4)
    body = w.ids["north"]
    w.emit("north0", body, Link(device=pub("phone")), T0 - 100)
    w.emit("phone", body, Profile(name="Ana"), T0 - 50)
    before = source.person_doc(w.store, pub("phone"), T0, {})
    assert before["person"] == pub("north0").hex() and before["name"] == "Ana"
    assert [b["id"] for b in before["bodies"]] == [body.hex()] and before["devices"] == [pub("phone").hex()]

    rid = w.propose("north", by="north1", kind="recover", person=pub("north0"), new_key=pub("new0"))
    w.votes("north", rid, R1[0], yes=4)
    carried = R1[1] + 7 * DAY
    assert w.tally(rid, carried).state == "carried"
    new = source.person_doc(w.store, pub("new0"), carried, {})
    assert new["person"] == pub("north0").hex() and new["name"] == "Ana"
    assert [b["id"] for b in new["bodies"]] == [body.hex()] and new["devices"] == [pub("new0").hex()]
    phone = source.person_doc(w.store, pub("phone"), carried, {})
    assert phone["person"] == pub("phone").hex() and phone["bodies"] == [] and phone["name"] is None


def test_inside_is_the_members_and_their_linked_devices_now() -> None:
    w = World()
    w.body("north", 2)
    body = w.ids["north"]
    w.emit("north0", body, Link(device=pub("phone")), T0 - 100)
    assert source.inside(w.store, body, T0) == {pub("north0"), pub("north1"), pub("phone")}
    assert source.inside(w.store, body, T0 - 101) == {pub("north0"), pub("north1")}
