"""A small world of bodies, people and signed events for consensus tests.

Every event goes through the real path (sign, ingest into a memory store,
read back the accepted set), so the tests exercise what nodes do.
"""

from __future__ import annotations

import hashlib
from typing import Any

from nacl.signing import SigningKey

from imier.consensus import ProposalResult, tally_proposal
from imier.consensus.ladder import Calendar
from imier.protocol.charter import DEFAULT_CHARTER
from imier.protocol.events import (
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Part,
    Payload,
    Propose,
    Recall,
    Stand,
    Vote,
    Withdraw,
)
from imier.store.author import author_event
from imier.store.db import Store

DAY = 86_400_000
T0 = 1_767_225_600_000 + DAY  # proposals are made here unless told otherwise
# Default calendar (DECISIONS.md s.1): discussion 3d, vote 2d, amendments 2d, contention 7d.
R1 = (T0 + 3 * DAY, T0 + 5 * DAY)
A2 = (T0 + 5 * DAY, T0 + 7 * DAY)
R2 = (T0 + 7 * DAY, T0 + 9 * DAY)
A3 = (T0 + 9 * DAY, T0 + 11 * DAY)
R3 = (T0 + 11 * DAY, T0 + 13 * DAY)


def contention_after(k: int) -> tuple[int, int]:
    end = {1: R1, 2: R2, 3: R3}[k][1]
    return (end, end + 7 * DAY)


def key(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"test/{name}".encode()).digest())


def pub(name: str) -> bytes:
    return bytes(key(name).verify_key)


class World:
    def __init__(self) -> None:
        # Outsiders' events too (a node's store refuses them, DECISIONS.md s.9.1):
        # these worlds test that consensus ignores them by itself.
        self.store = Store.memory(admission=False)
        self.ids: dict[str, bytes] = {}
        self.members: dict[str, list[str]] = {}
        # Setup happens before the proposal: a federation's members consent by carrying a
        # ``federate`` proposal (s.9.2), which takes 12 days under the default charter,
        # so the world starts two months before T0.
        self.t = T0 - 60 * DAY
        self.charters: dict[str, dict[str, str]] = {}
        self.ready: dict[str, int] = {}  # federation -> when all its parts have consented

    def tick(self) -> int:
        self.t += 1
        return self.t

    def emit(self, who: str, body: bytes | None, data: Payload, at: int | None = None) -> Event:
        if at is None:  # after everything already in that record (consent votes run ahead)
            ts = max([self.tick()] + [t + 1 for t, _ in (self.store.heads(body) if body else [])])
        else:
            ts = at
        ev = author_event(self.store, key(who), body=body, data=data, ts=ts, local=False)
        assert ev.ts == ts, f"event moved from {ts} to {ev.ts}: emit in time order"
        self.t = max(self.t, ts)
        return ev

    def body(self, name: str, members: int = 0, *, kind: str = "community",
             charter: dict[str, str] | None = None, parts: tuple[str, ...] = (),
             parent: str | None = None) -> bytes:
        self.charters[name] = dict(charter or {})
        if parts:
            kind = kind if kind != "community" else "municipality"
            ev = self.emit("organiser", None, Found(
                body_kind=kind, name=name, charter=charter or {},
                parts=tuple(sorted(self.ids[p] for p in parts))))
            self.ids[name] = ev.id
            self.consent(parts, name)
        else:
            if kind == "committee":  # its term runs from its founding: found it just before T0
                self.t = max(self.t, T0 - DAY // 2)
            people = [f"{name}{i}" for i in range(members)]
            self.members[name] = people
            ev = self.emit(people[0], None, Found(
                body_kind=kind, name=name, charter=charter or {},
                parent=self.ids[parent] if parent else None))
            for p in people[1:]:
                self.emit(people[0], ev.id, Admit(member=pub(p)))
        self.ids[name] = ev.id
        return ev.id

    def people(self, body: str) -> list[str]:
        """Everyone under ``body`` (named parts, in order), each once."""
        if body in self.members:
            return list(self.members[body])
        out: list[str] = []
        found = self.store.get(self.ids[body])
        assert found is not None and isinstance(found.data, Found)
        names = {v: k for k, v in self.ids.items()}
        for pid in sorted(found.data.parts):
            out += [p for p in self.people(names[pid]) if p not in out]
        return out

    def consent(self, parts: tuple[str, ...] | list[str], fed: str, join: bool = True) -> int:
        """Each of ``parts`` carries a ``federate`` proposal naming ``fed`` (everyone under
        it votes yes in round 1); returns when the last one is carried."""
        done, clock = self.t, self.t
        for part in parts:
            t0 = max(self.tick(), self.ready.get(part, 0) + 1)
            cal = Calendar.of(t0, DEFAULT_CHARTER.with_changes(self.charters.get(part, {})))
            people = self.people(part)
            pid = self.emit(people[0], self.ids[part], Propose(
                title="Federate", text=f"join {fed}" if join else f"leave {fed}",
                proposal_kind="federate", federation=self.ids[fed], join=join), t0).id
            for i, who in enumerate(people):
                self.vote(who, pid, "yes", cal.t1 + i)
            done = max(done, cal.contention_window(1).end)
            self.t = clock = max(clock, t0)
        # The votes run ahead in the parts' records; the clock does not, so that the
        # consent of many bodies runs in parallel. The federation is whole at ``done``.
        self.ready[fed] = max(self.ready.get(fed, 0), done)
        return done

    def admit(self, by: str, body: str, who: str, at: int | None = None) -> None:
        self.emit(by, self.ids[body], Admit(member=pub(who)), at)
        self.members[body].append(who)

    def leave(self, who: str, body: str, at: int | None = None) -> None:
        self.emit(who, self.ids[body], Leave(), at)

    def part(self, by: str, fed: str, part: str, join: bool, at: int | None = None) -> None:
        self.emit(by, self.ids[fed], Part(part=self.ids[part], join=join), at)

    def propose(self, body: str, by: str | None = None, *, at: int = T0, text: str = "v1",
                **kw: Any) -> bytes:
        who = by or self.members[self._first_base(body)][0]
        if "kind" in kw:
            kw["proposal_kind"] = kw.pop("kind")
        return self.emit(who, self.ids[body], Propose(title="T", text=text, **kw), at).id

    def _first_base(self, body: str) -> str:
        if body in self.members:
            return body
        found = self.store.get(self.ids[body])
        assert found is not None and isinstance(found.data, Found)
        names = {v: k for k, v in self.ids.items()}
        return self._first_base(names[sorted(found.data.parts)[0]])

    def vote(self, who: str, target: bytes, choice: str, at: int, *, body: bytes | None = None,
             severity: str = "minor", category: str = "other", delegate: str | None = None) -> Event:
        tgt = self.store.get(target)
        assert tgt is not None
        data = Vote(target=target, choice=choice,
                    severity=severity if choice == "no" else None,
                    category=category if choice == "no" else None,
                    delegate=pub(delegate) if delegate and choice == "no" else None)
        return self.emit(who, body or tgt.body_id, data, at)

    def votes(self, body: str, target: bytes, at: int, yes: int = 0, no: int = 0,
              abstain: int = 0, **kw: Any) -> int:
        """The first members vote yes, the next no, the next abstain; returns the next free ms."""
        choices = ["yes"] * yes + ["no"] * no + ["abstain"] * abstain
        for who, c in zip(self.members[body], choices, strict=False):
            self.vote(who, target, c, at, **kw)
            at += 1
        return at

    def amend(self, who: str, pid: bytes, text: str, at: int) -> bytes:
        tgt = self.store.get(pid)
        assert tgt is not None
        return self.emit(who, tgt.body_id, Amend(proposal=pid, text=text), at).id

    def stand(self, who: str, pid: bytes, choice: str, at: int) -> None:
        tgt = self.store.get(pid)
        assert tgt is not None
        self.emit(who, tgt.body_id, Stand(proposal=pid, choice=choice), at)

    def withdraw(self, who: str, pid: bytes, at: int) -> None:
        tgt = self.store.get(pid)
        assert tgt is not None
        self.emit(who, tgt.body_id, Withdraw(proposal=pid), at)

    def recall(self, who: str, pid: bytes, holder: str, at: int) -> bytes:
        tgt = self.store.get(pid)
        assert tgt is not None
        return self.emit(who, tgt.body_id, Recall(mandate=pid, holder=pub(holder), reason="r"), at).id

    def events(self) -> list[Event]:
        return self.store.all_events()

    def tally(self, pid: bytes, as_of: int) -> ProposalResult:
        return tally_proposal(self.events(), pid, as_of)

    def names(self) -> dict[bytes, str]:
        return {v: k for k, v in self.ids.items()}


def test_world_builds_a_body_with_its_members() -> None:
    w = World()
    w.body("north", 3)
    from imier.consensus import members_at

    assert members_at(w.events(), w.ids["north"], T0) == {pub("north0"), pub("north1"), pub("north2")}
