"""store/: the batched acceptance of Store.ingest against a naive reference.

Histories here have what meeting() never makes: events sharing a timestamp
(so a prev may sort after its child by id), events naming an invalid prev,
backdated events, skipped sequence numbers, and prevs that never arrive.
Authors are admitted (docs/rules.md s.9.1) by ``admit`` events in the same
history, by the founder or by people admitted before, or never: an event of
an author not (yet) admitted is refused and stored nowhere, and taken when
it is delivered again after the admission (as sync does).
Any split into batches and any order, delivered again until nothing new is
taken, must give the reference's outcome: the fixpoint of rule 2 of
store/db.py applied one event at a time.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from imier.protocol.events import Admit, Event, Found, Leave, sign_event
from imier.store.db import Store

from .strategies import KEYS


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], set[bytes]]:
    """Events of one body (plus a second body's founding), and the ids never delivered."""
    found = sign_event(KEYS[0], body=None, ts=100, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    other = sign_event(KEYS[1], body=None, ts=100, seq=1, prev=[], data=Found(body_kind="community", name="S"))
    evs = [found, other]
    mine: dict[int, list[Event]] = {}  # author -> their events in N
    for _ in range(draw(st.integers(1, 14))):
        a = draw(st.integers(0, 3))
        own = mine.get(a, [])
        pool = [e for e in evs if e.body_id == found.id]
        prev = {e.id: e for e in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))}
        seq = len(own) + 1
        if own:
            prev[own[-1].id] = own[-1]
        fault = draw(st.sampled_from(["none"] * 6 + ["early", "skip", "cross", "seq1"]))
        if fault == "cross":
            prev[other.id] = other
        if fault == "skip":
            seq += 1
        if fault == "seq1" and own:
            seq = 1
        ts = max(p.ts for p in prev.values()) + draw(st.sampled_from([0, 0, 1, 5]))
        if fault == "early":
            ts = max(0, min(p.ts for p in prev.values()) - 1)
        what = draw(st.sampled_from(["leave", "leave", "admit"]))
        data = Admit(member=bytes(KEYS[draw(st.integers(1, 3))].verify_key)) if what == "admit" else Leave()
        ev = sign_event(KEYS[a], body=found.id, ts=ts, seq=seq, prev=list(prev), data=data)
        evs.append(ev)
        mine.setdefault(a, []).append(ev)
    lost = set(draw(st.lists(st.sampled_from([e.id for e in evs[2:]]), max_size=2)))
    return evs, lost


def reference(evs: list[Event]) -> dict[bytes, int]:
    """Rule 2, one event at a time, to a fixpoint: id -> state (refused ones absent)."""
    held = {e.id: e for e in evs}
    state = {e.id: 0 for e in evs}
    persons: dict[bytes, set[bytes]] = {}
    changed = True
    while changed:
        changed = False
        for e in list(held.values()):
            if state[e.id] == 1 or not all(state.get(p) == 1 for p in e.prev):
                continue
            ps = [held[p] for p in e.prev]
            ok = (all(p.body_id == e.body_id for p in ps) and all(p.ts <= e.ts for p in ps)
                  and (e.seq == 1 or any(p.author == e.author and p.seq == e.seq - 1 for p in ps))
                  and not (e.seq == 1 and e.prev and any(p.author == e.author for p in ps)))
            if ok and e.kind != "found" and e.author not in persons.get(e.body_id, set()):
                continue  # not admitted (yet)
            if ok:
                state[e.id] = 1
                if isinstance(e.data, Found):
                    persons.setdefault(e.id, set()).add(e.author)
                if isinstance(e.data, Admit):
                    persons.setdefault(e.body_id, set()).add(e.data.member)
            else:
                del held[e.id]
                del state[e.id]
            changed = True
    for e in evs:  # decidable but never admitted: refused, not stored
        if e.id in state and state[e.id] == 0 and all(state.get(p) == 1 for p in e.prev):
            del state[e.id]
    return state


@settings(max_examples=int(os.environ.get("IMIER_RESOLVE_EXAMPLES", "150")), deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.integers(1, 6))
def test_batches_in_any_order_reach_the_reference_outcome(h, rnd, chunks) -> None:  # type: ignore[no-untyped-def]
    evs, lost = h
    delivered = [e for e in evs if e.id not in lost]
    want = reference(delivered)
    order = delivered + rnd.sample(delivered, k=len(delivered) // 3)
    rnd.shuffle(order)
    s = Store.memory()
    size = max(1, len(order) // chunks)
    for i in range(0, len(order), size):
        s.ingest(order[i : i + size])
    for _ in range(len(delivered) + 1):  # as sync does: offer again what was refused
        if not s.ingest(delivered).new:
            break
    got = dict(s.conn.execute("SELECT id, state FROM events").fetchall())
    assert got == want
    # heads: the accepted events no accepted event names
    acc = {i for i, st_ in want.items() if st_ == 1}
    named = {p for e in delivered if e.id in acc for p in e.prev}
    assert {r[0] for r in s.conn.execute("SELECT id FROM heads")} == acc - named
    # prev edges are kept for pending events only (rule 6)
    assert {r[0] for r in s.conn.execute("SELECT id FROM prev")} == {i for i, st_ in want.items() if st_ == 0}
