"""The node seals by itself (docs/rules.md s.10.5): what is due, and the seals it signs."""

from __future__ import annotations

from imier.nodeapp.autoseal import SEAL_DELAY_MS, Due, auto_seal, due_seals, seal_payloads
from imier.protocol.events import Seal, Vote, sign_event
from imier.protocol.limits import MAX_SEAL_HEADS
from imier.store.author import choose_prev

from .test_consensus_seals import P_R1, proposal, world
from .test_consensus_world import DAY, T0, World, key, pub


def test_due_only_after_the_delay_for_tellers_on_this_node_and_once() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    keys = [pub(t) for t in tellers] + [pub(w.members["north"][-1])]  # a non-teller too
    assert due_seals(w.store, keys, P_R1[1] + SEAL_DELAY_MS - 1) == []
    due = due_seals(w.store, keys, P_R1[1] + SEAL_DELAY_MS)
    assert {(d.proposal, d.window, d.close) for d in due} == {(pid, "r1", P_R1[1])}
    assert sorted(d.key for d in due) == sorted(pub(t) for t in tellers)
    # the teller draw's own windows had no tellers yet: nothing due for them
    made = auto_seal(w.store, {pub(t): key(t) for t in tellers[:2]}, P_R1[1] + SEAL_DELAY_MS)
    assert len(made) == 2 and all(isinstance(e.data, Seal) and e.data.window == "r1" for e in made)
    left = due_seals(w.store, keys, P_R1[1] + SEAL_DELAY_MS + 1)
    assert [d.key for d in left] == [pub(tellers[2])]
    r = w.tally(pid, P_R1[1] + SEAL_DELAY_MS + 1)
    assert r.rounds[0].seal is not None and r.rounds[0].seal.sealed  # 2 of 3
    # past the seal window (one day) a seal would not count: not due any more
    assert due_seals(w.store, keys, P_R1[1] + DAY) == []


def test_nothing_due_without_tellers() -> None:
    w = World()
    w.body("north", 3)
    pid = w.propose("north")
    w.votes("north", pid, T0 + 3 * DAY, yes=3)
    assert due_seals(w.store, [pub("north0")], T0 + 5 * DAY + SEAL_DELAY_MS) == []


def test_many_heads_are_split_over_several_seals() -> None:
    w = World()
    n = MAX_SEAL_HEADS + 6
    w.body("big", n)
    pid = w.propose("big")
    body = w.ids["big"]
    # everyone votes naming only the proposal: every vote is a head
    for i, who in enumerate(w.members["big"][1:]):
        ev = sign_event(key(who), body=body, ts=T0 + 3 * DAY + i, seq=1, prev=[pid],
                        data=Vote(target=pid, choice="yes"))
        assert ev.id in w.store.ingest([ev], local=False).accepted
    heads = sorted(h for _, h in w.store.heads(body))
    assert len(heads) == n - 1 > MAX_SEAL_HEADS
    seals = seal_payloads(w.store, Due(body=body, proposal=pid, window="r1", close=T0, key=pub("big0")))
    assert [len(s.heads) for s in seals] == [MAX_SEAL_HEADS, n - 1 - MAX_SEAL_HEADS]
    assert sorted(h for s in seals for h in s.heads) == heads


def test_a_pass_reads_the_whole_record_only_when_a_seal_may_be_due(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """docs/decisions.md 50: the cheap look (proposals, seals, kept results) comes first."""
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    store = w.store
    reads: list[object] = []
    full = store.events_for_bodies
    monkeypatch.setattr(store, "events_for_bodies", lambda *a, **k: reads.append(a) or full(*a, **k))
    keys = [pub(t) for t in tellers]
    at = P_R1[1] + SEAL_DELAY_MS
    assert due_seals(store, keys, P_R1[1] + SEAL_DELAY_MS - 1) == [] and reads == []  # too early
    made = auto_seal(store, {pub(t): key(t) for t in tellers}, at)
    assert len(made) == 3 and len(reads) == 1  # due: the record was read once
    assert due_seals(store, keys, at + 1) == []  # the seals changed the kept results: recomputed once
    reads.clear()
    assert due_seals(store, keys, at + 2) == [] and reads == []  # all sealed: nothing read
    # a member who is no teller never makes a pass read the record
    assert due_seals(store, [pub(w.members["north"][-1])], at + 2) == [] and reads == []


def test_windows_found_not_due_are_remembered() -> None:
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    skip: set[tuple[bytes, str, bytes]] = set()
    late = P_R1[1] + DAY + 1  # past the seal window: a seal would not count
    assert due_seals(w.store, [pub(tellers[0])], late, skip=skip) == []
    assert (pid, "r1", pub(tellers[0])) in skip


def test_a_seal_never_names_a_head_from_the_future() -> None:
    """Rules s.9.4: a member's event stamped after the node's clock is a head here (it
    came within max_skew). A seal at ``now`` names the events it hid instead, so the
    honest vote it names in its prev stays in the teller's view."""
    w, tellers = world()
    pid = proposal(w)
    w.votes("north", pid, P_R1[0], yes=9)
    body = w.ids["north"]
    now = P_R1[1] + SEAL_DELAY_MS
    before = w.store.heads_at(body, now)
    assert before == w.store.heads(body)  # no future head: the same heads
    voter = next(m for m in w.members["north"] if m not in tellers)
    seq, prev, _ = choose_prev(w.store, body, pub(voter), now)
    honest = sign_event(key(voter), body=body, ts=now - 10, seq=seq, prev=prev,
                        data=Vote(target=pid, choice="yes"))
    ahead = sign_event(key(voter), body=body, ts=now + 200_000, seq=seq + 1, prev=[honest.id],
                       data=Vote(target=pid, choice="abstain"))
    res = w.store.ingest([honest, ahead], local=False, now_ms=now + 300_000)
    assert set(res.accepted) == {honest.id, ahead.id}
    assert [h for _, h in w.store.heads(body)] == [ahead.id]
    assert w.store.heads_at(body, now) == [(now - 10, honest.id)]
    seals = seal_payloads(w.store, Due(body=body, proposal=pid, window="r1", close=P_R1[1], key=pub(tellers[0])),
                          now)
    assert [s.heads for s in seals] == [(honest.id,)]
    made = auto_seal(w.store, {pub(t): key(t) for t in tellers}, now)
    assert made and all(ahead.id not in e.data.heads for e in made if isinstance(e.data, Seal))
    assert all(honest.id in e.data.heads for e in made if isinstance(e.data, Seal))
