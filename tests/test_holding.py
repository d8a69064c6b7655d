"""Which bodies a node holds (holding.py) and what a sync session stores of what a
peer offers (sync.py): only bodies this node holds by its own store, never bodies a
peer merely offers; a federation only once our body carried ``federate`` naming it."""

from __future__ import annotations

import time
from typing import Any

import trio
from nacl.signing import SigningKey

from imier.nodeapp import holding
from imier.nodeapp.holding import held_bodies, placeholder_consented_federations
from imier.protocol.events import Admit, Found, Propose, Vote, sign_event
from imier.store.author import author_event

from .test_sync_session import _ids, _node, _session

DAY = 86_400_000


def _carry_federate(store: Any, key: SigningKey, body: bytes, federation: bytes, t0: int,
                    join: bool = True) -> bytes:
    """A ``federate`` proposal in ``body`` by its only member, voted yes in round 1:
    carried once discussion (3 days), the round (2 days) and contention (7 days) are over."""
    p = author_event(store, key, body=body, ts=t0, data=Propose(
        title="join" if join else "leave", text="M", proposal_kind="federate", federation=federation, join=join))
    author_event(store, key, body=body, ts=t0 + 3 * DAY + 3_600_000, data=Vote(target=p.id, choice="yes"))
    return p.id


def test_a_federation_is_held_only_after_our_body_carries_federate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, ana = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    now = int(time.time() * 1000)
    t0 = now - 40 * DAY
    north = author_event(a.store, ana, body=None, data=Found(body_kind="community", name="N"), ts=t0)
    east = author_event(b.store, ben, body=None, data=Found(body_kind="community", name="E"), ts=t0)
    a.store.ingest([east])
    muni = author_event(a.store, ana, body=None, ts=t0 + 5, data=Found(
        body_kind="municipality", name="M", parts=tuple(sorted([north.id, east.id]))))
    b.store.follow(east.id)
    a.store.follow(east.id)
    trio.run(_session, a, b)
    assert b.held(fresh=True) == {east.id} and b.store.get(muni.id) is None
    # East carries federate(M): b holds M from East's own record, and what M names
    pid = _carry_federate(b.store, ben, east.id, muni.id, t0 + DAY)
    assert placeholder_consented_federations(b.store, east.id, now) == {muni.id}
    # not before the proposal is carried (12 days after it)
    assert placeholder_consented_federations(b.store, east.id, t0 + DAY + 11 * DAY) == set()
    assert b.held(fresh=True) == {east.id, muni.id}
    trio.run(_session, a, b)  # M's founding arrives; M names North
    trio.run(_session, a, b)  # North's record
    assert b.held(fresh=True) == {east.id, muni.id, north.id}
    assert muni.id in _ids(b) and north.id in _ids(b)
    assert b.peer("A").offence_count == 0
    # and East leaves the same way
    _carry_federate(b.store, ben, east.id, muni.id, t0 + 14 * DAY, join=False)
    assert held_bodies(b.store, b.people()) == {east.id}
    assert pid


def test_an_offered_body_without_reason_leaves_nothing_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A peer that offers bodies this node does not hold (no admit of its people there)
    sends their events for nothing: none is stored, and it is an offence."""
    a, ana = _node(tmp_path, "a")
    b, _ = _node(tmp_path, "b")
    junk = []
    for n in range(3):
        k = SigningKey(bytes([40 + n]) * 32)
        f = sign_event(k, body=None, ts=1_700_000_000_000, seq=1, prev=[], data=Found(
            body_kind="community", name=f"J{n}"))
        evs = [f]
        for i in range(20):
            evs.append(sign_event(k, body=f.id, ts=f.ts + 1 + i, seq=i + 2, prev=[evs[-1].id],
                                  data=Vote(target=f.id, choice="yes")))
        a.store.ingest(evs)
        a.store.follow(f.id)
        junk.append(f.id)
    before = _ids(b)
    # a offers its bodies by patching its offer: what a hostile peer does on the wire
    orig = holding.offer_for
    import imier.nodeapp.sync as sync_mod

    sync_mod.offer_for = lambda store, mine, *_a, **_k: set(junk)  # type: ignore[assignment]
    try:
        sa, sb = trio.run(_session, a, b)
    finally:
        sync_mod.offer_for = orig  # type: ignore[assignment]
    assert _ids(b) == before == set()
    assert sb.received == 63 and sb.new == 0
    assert b.peer("A").offences[-1][1] == "unheld_body"


def test_an_admission_is_learnt_and_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The offered body of an admit naming our person is kept only if that admit is
    accepted in it; an admit's chain that is cut (a forged or partial body) stores nothing."""
    a, ana = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    north = author_event(a.store, ana, body=None, data=Found(body_kind="community", name="N"), ts=1_700_000_000_000)
    for i in range(5):
        author_event(a.store, ana, body=north.id, data=Vote(target=north.id, choice="yes"), ts=north.ts + i + 1)
    admit = author_event(a.store, ana, body=north.id, data=Admit(member=bytes(ben.verify_key)), ts=north.ts + 100)
    # a node that claims the admission but holds only the admit, not its history
    c, _ = _node(tmp_path, "c")
    c.store.ingest([admit])  # pending: its prev is missing
    sc, sb = trio.run(_session, c, b)
    assert _ids(b) == set() and sb.new == 0
    # the real one: the whole chain arrives, the admit is accepted, North is held
    sa, sb = trio.run(_session, a, b)
    assert north.id in b.held(fresh=True) and _ids(b) == _ids(a) and sb.new == 7
