"""The store's reads for watchers and writers (store/reads.py): rows since a look,
pending events, and who signed which seq."""

from __future__ import annotations

from imier.protocol.events import Admit, Propose
from imier.store.author import author_event
from imier.testing import T0, World, key, pub


def test_rows_since_a_look_name_the_bodies_and_whether_one_is_structural() -> None:
    w = World()
    north = w.body("north", 2)
    mark = w.store.last_row()
    assert mark > 0 and w.store.bodies_since(mark) == []
    w.propose("north")
    assert w.store.bodies_since(mark) == [(north, False)]
    mark = w.store.last_row()
    south = w.body("south", 1)
    w.propose("north", text="v2")
    assert dict(w.store.bodies_since(mark)) == {north: False, south: True}


def test_pending_bodies_lists_what_waits_for_its_prevs() -> None:
    w = World()
    north = w.body("north", 1)
    assert w.store.pending_bodies() == {}
    # An event naming a prev this store does not hold waits, pending.
    other = World()
    other.body("north", 1)
    early = author_event(other.store, key("north0"), body=north, data=Admit(member=pub("x")),
                         ts=T0, local=False)
    later = author_event(other.store, key("north0"), body=north, data=Propose(title="T", text="t"),
                         ts=T0 + 1, local=False)
    assert early.id in later.prev
    w.store.ingest([later])
    assert w.store.pending_bodies() == {later.id: north}
    w.store.ingest([early])
    assert w.store.pending_bodies() == {}


def test_ids_at_seq() -> None:
    w = World()
    north = w.body("north", 1)
    ev = w.propose("north")
    got = w.store.get(ev)
    assert got is not None
    assert w.store.ids_at_seq(north, pub("north0"), got.seq) == [ev]
    assert w.store.ids_at_seq(north, pub("north0"), got.seq + 1) == []
