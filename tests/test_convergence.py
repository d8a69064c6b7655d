"""Convergence under faults: several in-memory nodes, gossip that drops,
duplicates and reorders, partitions, interrupted syncs; after healing and
syncing, every node holds the same events (same states) and computes the
same verdicts.

Each node is a :class:`Store` (``Store.memory()``) with its own people (a
key lives on one node, docs/rules.md s.8). Gossip is a bag of in-flight
messages that the state machine delivers in any order, drops or copies.
Sync is the pure :class:`~imier.protocol.reconcile.Reconciler` between two
stores' ``(ts, id)`` sets, then the missing raw events, decoded and
verified, into the same ``ingest`` path as everything else.

Examples: ``IMIER_CONVERGENCE_EXAMPLES`` (default 25).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from imier.consensus import proposals, tally_proposal
from imier.protocol.events import Admit, Found, Propose, Stand, Vote, decode_event
from imier.protocol.reconcile import Reconciler
from imier.store.author import author_event
from imier.store.db import Store

from .test_consensus_world import DAY, T0, key, pub

NODES = 4
PEOPLE_PER_NODE = 3


def items(s: Store) -> list[tuple[int, bytes]]:
    return sorted((r[0], r[1]) for r in s.conn.execute("SELECT ts, id FROM events"))


def snapshot(s: Store) -> list[tuple[bytes, int]]:
    return sorted((r[0], r[1]) for r in s.conn.execute("SELECT id, state FROM events"))


def deliver(s: Store, raws: list[bytes]) -> None:
    s.ingest([decode_event(r) for r in raws])


def sync(a: Store, b: Store, cut: int | None = None) -> None:
    """One session; ``cut`` interrupts the event transfer after that many events each way."""
    ra, rb = Reconciler(items(a)), Reconciler(items(b))
    msg: bytes | None = ra.initiate()
    side, turns = rb, 0
    while msg is not None:
        msg, _, _ = side.reconcile(msg)
        side = ra if side is rb else rb
        turns += 1
        assert turns < 200, "reconciliation did not end"
    for src, dst, r in ((a, b, ra), (b, a, rb)):
        order = [i for _, i in items(src) if i in r.have]
        if cut is not None:
            order = order[:cut]
        deliver(dst, src.raw_many(order))


def verdicts(s: Store, as_of: int) -> dict[bytes, object]:
    evs = s.all_events()
    return {p.id: tally_proposal(evs, p.id, as_of).to_json({}) for p in proposals(evs)}


class Federation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nodes = [Store.memory() for _ in range(NODES)]
        self.people = {n: [f"n{n}p{i}" for i in range(PEOPLE_PER_NODE)] for n in range(NODES)}
        self.wire: list[tuple[int, bytes]] = []  # in-flight gossip: (destination, raw)
        self.side: list[int] = [0] * NODES  # partition: nodes talk only within a side
        self.clock = T0

    @initialize()
    def found(self) -> None:
        # Node 0's first person founds the body and admits everyone; all nodes sync once.
        founder = self.people[0][0]
        s0 = self.nodes[0]
        self.clock += 1
        f = author_event(s0, key(founder), body=None, data=Found(body_kind="community", name="N"),
                         ts=self.clock)
        self.body = f.id
        for n in range(NODES):
            for p in self.people[n]:
                if p != founder:
                    self.clock += 1
                    author_event(s0, key(founder), body=f.id, data=Admit(member=pub(p)), ts=self.clock)
        for s in self.nodes[1:]:
            sync(s0, s)

    def _author(self, n: int, who: int, data: object, step: int) -> None:
        s = self.nodes[n]
        self.clock += step
        ev = author_event(s, key(self.people[n][who]), body=self.body, data=data, ts=self.clock)  # type: ignore[arg-type]
        self.clock = max(self.clock, ev.ts)
        for m in range(NODES):
            if m != n:
                self.wire.append((m, ev.raw))

    def _proposals(self, n: int) -> list[bytes]:
        return [p.id for p in proposals(self.nodes[n].all_events())]

    @rule(n=st.integers(0, NODES - 1), who=st.integers(0, PEOPLE_PER_NODE - 1),
          step=st.sampled_from([1, 60_000, DAY // 4]))
    def propose(self, n: int, who: int, step: int) -> None:
        self._author(n, who, Propose(title="t", text=f"x{self.clock}"), step)

    @rule(n=st.integers(0, NODES - 1), who=st.integers(0, PEOPLE_PER_NODE - 1),
          choice=st.sampled_from(["yes", "yes", "no", "abstain"]), k=st.integers(0, 5),
          step=st.sampled_from([1, 60_000, DAY // 4, DAY]))
    def vote(self, n: int, who: int, choice: str, k: int, step: int) -> None:
        ps = self._proposals(n)
        if not ps:
            return
        data = Vote(target=ps[k % len(ps)], choice=choice,
                    severity="minor" if choice == "no" else None,
                    category="cost" if choice == "no" else None)
        self._author(n, who, data, step)

    @rule(n=st.integers(0, NODES - 1), who=st.integers(0, PEOPLE_PER_NODE - 1),
          choice=st.sampled_from(["yes", "no"]), k=st.integers(0, 5),
          step=st.sampled_from([1, 60_000, DAY // 4, DAY]))
    def stand(self, n: int, who: int, choice: str, k: int, step: int) -> None:
        ps = self._proposals(n)
        if ps:
            self._author(n, who, Stand(proposal=ps[k % len(ps)], choice=choice), step)

    @rule(step=st.sampled_from([DAY // 2, DAY, 2 * DAY, 3 * DAY]))
    def wait(self, step: int) -> None:  # time passes: windows open and close
        self.clock += step

    @precondition(lambda self: bool(self.wire))
    @rule(i=st.integers(0, 10**6))
    def deliver_one(self, i: int) -> None:  # any order: reorders
        dest, raw = self.wire.pop(i % len(self.wire))
        deliver(self.nodes[dest], [raw])

    @precondition(lambda self: bool(self.wire))
    @rule(i=st.integers(0, 10**6))
    def drop(self, i: int) -> None:
        self.wire.pop(i % len(self.wire))

    @precondition(lambda self: bool(self.wire))
    @rule(i=st.integers(0, 10**6))
    def duplicate(self, i: int) -> None:
        self.wire.append(self.wire[i % len(self.wire)])

    @rule(sides=st.lists(st.integers(0, 1), min_size=NODES, max_size=NODES))
    def partition(self, sides: list[int]) -> None:
        self.side = sides

    @rule(a=st.integers(0, NODES - 1), b=st.integers(0, NODES - 1),
          cut=st.one_of(st.none(), st.integers(0, 5)))
    def sync_pair(self, a: int, b: int, cut: int | None) -> None:
        if a != b and self.side[a] == self.side[b]:
            sync(self.nodes[a], self.nodes[b], cut)

    @invariant()
    def stores_are_sound(self) -> None:
        for s in self.nodes:
            # rule 2 of store/db.py, from the outside: accepted events only name accepted ones
            acc = {i for i, st_ in snapshot(s) if st_ == 1}
            for ev in s.all_events():
                assert set(ev.prev) <= acc

    def teardown(self) -> None:
        try:
            # Heal: gossip in flight is lost or delivered, then everyone syncs
            # with everyone (twice round, so what one learned reaches all).
            for _ in range(2):
                for a in range(NODES):
                    for b in range(a + 1, NODES):
                        sync(self.nodes[a], self.nodes[b])
            snaps = [snapshot(s) for s in self.nodes]
            assert all(x == snaps[0] for x in snaps), "event sets differ after sync"
            assert all(st_ == 1 for _, st_ in snaps[0]), "an event is still pending"
            ends = [self.clock + 1, self.clock + 40 * DAY]
            for p in proposals(self.nodes[0].all_events()):
                ends += [p.ts + 5 * DAY, p.ts + 9 * DAY]  # round 1 and round 2 closed
            for as_of in ends:
                vs = [verdicts(s, as_of) for s in self.nodes]
                assert all(v == vs[0] for v in vs), f"verdicts differ as of {as_of}"
        finally:
            for s in self.nodes:
                s.close()


Federation.TestCase.settings = settings(
    max_examples=int(os.environ.get("IMIER_CONVERGENCE_EXAMPLES", "25")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
test_convergence_under_faults = Federation.TestCase
