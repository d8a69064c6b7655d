"""store/causality.py without SQLite: acceptance and admission (docs/rules.md s.8, s.9.1).

Histories are made of bare candidates (ids are counters, no signatures), so
hypothesis can explore many shapes quickly: an event is accepted iff its
prevs are accepted, causally consistent, and its author admitted by the
accepted events; the accepted set must not depend on the order of the
candidates, nor on how they are split into deliveries, once refused events
are delivered again (as sync does).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imier.store.causality import (
    ACCEPTED, CAUSALITY, NOT_ADMITTED, Admission, Cand, Known, resolve,
)

BODY = b"B" * 32
PEOPLE = [bytes([i]) * 32 for i in range(1, 6)]


def eid(n: int) -> bytes:
    return n.to_bytes(32, "big")


@st.composite
def histories(draw: st.DrawFn) -> dict[bytes, Cand]:
    """A body founded by PEOPLE[0]; people admit others (or not) and write events."""
    found = eid(1)
    evs: dict[bytes, Cand] = {found: Cand(BODY, PEOPLE[0], 1, 10, (), "found", (PEOPLE[0],))}
    # The found event is its body's first event: give it BODY as its body id.
    last: dict[bytes, tuple[int, bytes]] = {PEOPLE[0]: (1, found)}
    n = 1
    for _ in range(draw(st.integers(1, 16))):
        n += 1
        who = PEOPLE[draw(st.integers(0, 4))]
        pool = list(evs)
        prev = set(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3)))
        seq = 1
        if who in last:
            seq = last[who][0] + 1
            prev.add(last[who][1])
        ts = max(evs[p].ts for p in prev) + draw(st.sampled_from([0, 1, 3]))
        if draw(st.integers(0, 9)) == 0:
            ts = min(evs[p].ts for p in prev) - 1  # backdated: refused for causality
        if draw(st.booleans()):
            grants = (PEOPLE[draw(st.integers(1, 4))],)
            evs[eid(n)] = Cand(BODY, who, seq, ts, tuple(sorted(prev)), "admit", grants)
        else:
            evs[eid(n)] = Cand(BODY, who, seq, ts, tuple(sorted(prev)), "vote")
        last[who] = (seq, eid(n))
    return evs


def reference(evs: dict[bytes, Cand]) -> set[bytes]:
    """One event at a time, to a fixpoint."""
    acc: dict[bytes, Cand] = {}
    persons: set[bytes] = set()
    changed = True
    while changed:
        changed = False
        for i, c in evs.items():
            if i in acc or not all(p in acc for p in c.prev):
                continue
            ps = [acc[p] for p in c.prev]
            ok = (all(p.ts <= c.ts for p in ps)
                  and (c.seq == 1 or any(p.author == c.author and p.seq == c.seq - 1 for p in ps))
                  and not (c.seq == 1 and any(p.author == c.author for p in ps)))
            if ok and (c.kind == "found" or c.author in persons):
                acc[i] = c
                persons.update(c.grants)
                changed = True
    return set(acc)


def deliver(evs: dict[bytes, Cand], batches: list[list[bytes]]) -> set[bytes]:
    """A store in memory: accepted (known), pending (held), refused (forgotten); the
    same Admission across deliveries; then everything delivered again until still."""
    known: dict[bytes, Known] = {}
    pending: dict[bytes, Cand] = {}
    adm = Admission()

    def one(ids: list[bytes]) -> int:
        cand = {i: evs[i] for i in ids if i not in known}
        cand.update(pending)
        out = resolve(cand, known, adm)
        for i in out.accepted:
            pending.pop(i, None)
        for r in out.refused:
            pending.pop(r.id, None)
        refused = {r.id for r in out.refused}
        for i, c in cand.items():
            if i not in known and i not in refused:
                pending[i] = c
        return len(out.accepted)

    for b in batches:
        one(b)
    for _ in range(len(evs) + 1):
        if not one(list(evs)):
            break
    return {i for i, k in known.items() if k[0] == ACCEPTED}


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_one_call_in_any_order_gives_the_reference(evs, rnd) -> None:  # type: ignore[no-untyped-def]
    want = reference(evs)
    ids = list(evs)
    rnd.shuffle(ids)
    out = resolve({i: evs[i] for i in ids}, {}, Admission())
    assert set(out.accepted) == want
    # every candidate is accepted, refused, or still waiting on a refused prev
    refused = {r.id for r in out.refused}
    assert not (refused & want)
    for i in set(evs) - want - refused:
        assert any(p not in want for p in evs[i].prev)


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.integers(1, 6))
def test_any_split_and_order_of_deliveries_gives_the_reference(evs, rnd, parts) -> None:  # type: ignore[no-untyped-def]
    ids = list(evs) + rnd.sample(list(evs), k=len(evs) // 3)
    rnd.shuffle(ids)
    size = max(1, len(ids) // parts)
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    assert deliver(evs, batches) == reference(evs)


def test_an_admission_decided_after_the_event_it_admits_still_admits_it() -> None:
    """Same timestamp, the admit sorts after the admitted person's event: one call takes both."""
    f = Cand(BODY, PEOPLE[0], 1, 10, (), "found", (PEOPLE[0],))
    vote = Cand(BODY, PEOPLE[1], 1, 20, (eid(1),), "vote")
    admit = Cand(BODY, PEOPLE[0], 2, 20, (eid(1),), "admit", (PEOPLE[1],))
    out = resolve({eid(1): f, eid(2): vote, eid(3): admit}, {}, Admission())
    assert set(out.accepted) == {eid(1), eid(2), eid(3)} and not out.refused


def test_refusal_codes_and_fields() -> None:
    f = Cand(BODY, PEOPLE[0], 1, 10, (), "found", (PEOPLE[0],))
    stranger = Cand(BODY, PEOPLE[4], 1, 20, (eid(1),), "vote")
    early = Cand(BODY, PEOPLE[0], 2, 5, (eid(1),), "vote")
    out = resolve({eid(1): f, eid(2): stranger, eid(3): early}, {}, Admission())
    got = {r.id: (r.code, r.field) for r in out.refused}
    assert got == {eid(2): (NOT_ADMITTED, "author"), eid(3): (CAUSALITY, "ts")}


def test_federations_admit_the_people_of_the_bodies_they_name_recursively() -> None:
    community, municipality, region = b"C" * 32, b"M" * 32, b"R" * 32
    ana, bo = PEOPLE[1], PEOPLE[2]
    loaded = {community: ({ana}, set()), municipality: (set(), {community}), region: (set(), set())}
    adm = Admission(lambda b: loaded.get(b, (set(), set())))
    assert adm.admits(municipality, ana)
    assert not adm.admits(region, ana) and not adm.admits(municipality, bo)
    adm.grow(region, names=[municipality])  # a part join in the region's record
    assert adm.admits(region, ana)
    adm.grow(community, grants=[bo])  # admitted to the community: admissible above it too
    assert adm.admits(region, bo) and adm.admits(municipality, bo)
    assert adm.added_parts == [(region, municipality)] and adm.added_persons == [(community, bo)]
    assert adm.admits(b"X" * 32, PEOPLE[4], "found")  # founding a body needs no one's leave


def test_admission_only_grows() -> None:
    adm = Admission()
    adm.grow(BODY, grants=[PEOPLE[1]])
    v = adm.version
    adm.grow(BODY, grants=[PEOPLE[1]])  # again: nothing new
    assert adm.version == v and adm.admits(BODY, PEOPLE[1])


def test_a_seal_waits_for_the_heads_it_names() -> None:
    """docs/rules.md s.10.2: a seal is accepted only once every head it names is held
    and accepted (its view is their causal past); until then it is pending, and it is
    decided when the head arrives, whatever the order."""
    found = eid(1)
    head = eid(2)
    seal = eid(3)
    f = Cand(BODY, PEOPLE[0], 1, 10, (), "found", (PEOPLE[0],))
    h = Cand(BODY, PEOPLE[0], 2, 20, (found,), "vote")
    s = Cand(BODY, PEOPLE[1], 1, 30, (found,), "seal", wait=(head,))  # names a head not in its prev
    assert s.deps == (found, head)
    known: dict[bytes, Known] = {found: (ACCEPTED, BODY, PEOPLE[0], 1, 10)}
    alone = resolve({seal: s}, dict(known), Admission(lambda b: ((PEOPLE[0], PEOPLE[1]), ())))
    assert alone.accepted == [] and alone.refused == []  # pending: the head is not held
    both = resolve({seal: s, head: h}, dict(known), Admission(lambda b: ((PEOPLE[0], PEOPLE[1]), ())))
    assert both.accepted == [head, seal] and both.refused == []
    assert resolve({seal: s, head: h, found: f}, {}, None).accepted == [found, head, seal]
    assert resolve({seal: s, found: f}, {}, None).accepted == [found]
