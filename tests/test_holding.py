"""Which bodies a node holds (holding.py) and what a sync session stores of what a
peer offers (sync.py): only bodies this node holds by its own store, never bodies a
peer merely offers; a federation only once our body carried ``federate`` naming it."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import trio
from nacl.signing import SigningKey

from imier.nodeapp import holding
from imier.nodeapp.holding import held_bodies, placeholder_consented_federations
from imier.protocol.events import Admit, Found, Propose, Vote, sign_event
from imier.store.author import author_event
from imier.store.invitations import EXPIRY_MS, MAX_INVITATIONS, Invitation, Invitations

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
    assert Invitations.beside(b.store.path).list(north.ts) == []  # type: ignore[union-attr]
    # the real one: the whole chain arrives, the admit is accepted: an invitation, nothing stored
    sa, sb = trio.run(_session, a, b)
    assert north.id not in b.held(fresh=True) and _ids(b) == set() and sb.new == 0
    invs = Invitations.beside(b.store.path).list(north.ts)  # type: ignore[union-attr]
    assert [(i.body, i.name, i.member, i.admitted_by, i.admit) for i in invs] == [
        (north.id, "N", bytes(ben.verify_key), bytes(ana.verify_key), admit.id)]
    assert b.peer("A").offence_count == 0
    # ben follows it: now it is held and its record stored
    b.store.follow(north.id)
    sa, sb = trio.run(_session, a, b)
    assert north.id in b.held(fresh=True) and _ids(b) == _ids(a) and sb.new == 7


def test_a_strangers_body_admitting_our_person_is_not_held(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stranger founds a body and admits our person: our node does not hold it, so it
    stores nothing the stranger writes there, until one of our people writes or follows."""
    a, _ = _node(tmp_path, "a")
    b, ben = _node(tmp_path, "b")
    k = SigningKey(b"\x33" * 32)
    f = sign_event(k, body=None, ts=1_700_000_000_000, seq=1, prev=[], data=Found(body_kind="community", name="S"))
    evs = [f, sign_event(k, body=f.id, ts=f.ts + 1, seq=2, prev=[f.id], data=Admit(member=bytes(ben.verify_key)))]
    for i in range(30):
        evs.append(sign_event(k, body=f.id, ts=f.ts + 2 + i, seq=i + 3, prev=[evs[-1].id],
                              data=Propose(title=f"p{i}", text="x" * 2000)))
    a.store.ingest(evs)
    a.store.follow(f.id)
    for _ in range(2):
        trio.run(_session, a, b)
    assert _ids(b) == set() and held_bodies(b.store, b.people()) == set()
    assert [i.body for i in Invitations.beside(b.store.path).list(f.ts)] == [f.id]  # type: ignore[union-attr]
    b.store.follow(f.id)  # accepted: now it is held, and synced
    trio.run(_session, a, b)
    assert _ids(b) == {e.id for e in evs}


def _bid(n: int) -> bytes:
    return hashlib.sha256(bytes([n])).digest()


def test_invitations_are_bounded_and_expire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    book = Invitations(tmp_path / "invitations.sqlite3")
    assert book.list(0) == [] and not book.path.exists()  # reading creates nothing
    t = 1_700_000_000_000

    def inv(n: int, seen: int) -> Invitation:
        return Invitation(body=_bid(n), name=f"B{n}", kind="community", member=b"m" * 32,
                          admitted_by=b"s" * 32, admit=b"a" * 32, peer="P", seen_ms=seen)

    for n in range(MAX_INVITATIONS + 10):
        assert book.add(inv(n, t + n), t + n)
    assert not book.add(inv(5 + 10, t + 999), t + 999)  # first learnt wins
    kept = book.list(t + 1000)
    assert len(kept) == MAX_INVITATIONS and {i.name for i in kept} == {f"B{n}" for n in range(10, 74)}
    assert book.find("B20", t + 1000) is not None and book.find("b20", t + 1000) is not None
    assert book.find(_bid(20).hex()[:12], t + 1000) is not None
    assert book.find("B3", t + 1000) is None  # dropped, the oldest first
    # a lunar month after it was learnt, an invitation is gone
    assert len(book.list(t + 10 + EXPIRY_MS)) == MAX_INVITATIONS - 1
    assert book.list(t + 74 + EXPIRY_MS) == []
    book.remove(_bid(70))
    assert book.find("B70", t + 1000) is None
