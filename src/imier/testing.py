"""Worlds of signed events for tests, rehearsals and the demo (like ``trio.testing``).

Two helpers, both on the real path (nothing is mocked):

* :class:`World` -- bodies, people and their signed events at chosen times,
  in a memory store. Every event is signed and ingested as a node would,
  and read back from the accepted set. People are named; their keys are
  derived from the name (``key("ana")``), so a test can say who without
  handling keys. ``World.clerk("ana")`` gives the library's
  :class:`~imier.api.Clerk` acting as ``ana`` at a chosen time, with every
  rule check; ``World.emit`` writes what a person could not (a vote outside
  its window), for the tally to refuse. ``World.carry`` runs a proposal
  through round 1 with everyone voting yes (a federation's consent, a draw
  of tellers); ``World.seal`` and ``World.late`` write what tellers seal and
  what reaches a node after their seals. ``imier simulate`` builds its
  worlds with it, from keys of its own (``World(keys=...)``).
* :class:`HomeProcess` -- one node's home driven by the real ``imier``
  command in subprocesses, with its daemon; every wait has a deadline.

Times: :data:`T0` is when proposals are made unless told otherwise; with
the default charter (discussion 3 days, votes 2 days, amendments 2 days)
round 1 votes in :data:`R1`, and so on.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from nacl.signing import SigningKey

from .protocol.events import (
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
from .consensus.ladder import Calendar
from .protocol.charter import DEFAULT_CHARTER
from .protocol.errors import LocalError
from .protocol.events import TELLER_TASK, Seal, sign_event
from .store.author import author_event
from .store.db import Store

if TYPE_CHECKING:
    from .api import Clerk
    from .consensus import ProposalResult

__all__ = [
    "DAY", "T0", "R1", "A2", "R2", "A3", "R3", "contention_after", "key", "pub", "World",
    "HomeProcess", "wait_for", "TimedOut", "Clock", "WindowFull",
]

DAY = 86_400_000
T0 = 1_767_225_600_000 + DAY  # proposals are made here unless told otherwise
# The default calendar: discussion 3d, vote 2d, amendments 2d, contention 7d.
R1 = (T0 + 3 * DAY, T0 + 5 * DAY)
A2 = (T0 + 5 * DAY, T0 + 7 * DAY)
R2 = (T0 + 7 * DAY, T0 + 9 * DAY)
A3 = (T0 + 9 * DAY, T0 + 11 * DAY)
R3 = (T0 + 11 * DAY, T0 + 13 * DAY)


def contention_after(k: int) -> tuple[int, int]:
    """The contention window after round ``k`` passes (default charter, proposal at T0)."""
    end = {1: R1, 2: R2, 3: R3}[k][1]
    return (end, end + 7 * DAY)


def key(name: str) -> SigningKey:
    """The signing key of the person called ``name`` in every world."""
    return SigningKey(hashlib.sha256(f"test/{name}".encode()).digest())


def pub(name: str) -> bytes:
    return bytes(key(name).verify_key)


class WindowFull(LocalError):
    """More events than milliseconds in a window; ``what`` names the window."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: more events than milliseconds in the window")
        self.what = what


class Clock:
    """Increasing timestamps, one millisecond apart, inside ``[start, end)``;
    :class:`WindowFull` (naming ``what``) past its end."""

    def __init__(self, start: int, end: int, what: str) -> None:
        self.t, self.end, self.what = start, end, what

    def next(self) -> int:
        if self.t >= self.end:
            raise WindowFull(self.what)
        t = self.t
        self.t += 1
        return t


class World:
    """Bodies, people and signed events in a memory store, at chosen times.

    ``body("north", 3)`` founds a community whose members are ``north0``,
    ``north1`` and ``north2``; ``body("town", parts=("north", "south"))`` a
    federation of them. Emit in time order (each event's time is at least
    its ``prev``'s).
    """

    def __init__(self, *, admission: bool = False, keys: Callable[[str], SigningKey] = key,
                 clock: int = T0 - 60 * DAY) -> None:
        """``keys``: each person's signing key from their name (default :func:`key`).
        ``clock``: the world's clock; the first event without a time is stamped just after."""
        # By default outsiders' events are stored too (a node's store refuses them,
        # docs/rules.md s.9.1): these worlds test that consensus ignores them by itself.
        self.store = Store.memory(admission=admission)
        self.keys = keys
        self.ids: dict[str, bytes] = {}
        self.members: dict[str, list[str]] = {}
        # Setup happens before the proposal: a federation's members consent by carrying a
        # ``federate`` proposal (s.9.2), which takes 12 days under the default charter,
        # so the world starts two months before T0.
        self.t = clock
        self.charters: dict[str, dict[str, str]] = {}
        self.ready: dict[str, int] = {}  # federation -> when all its parts have consented

    def tick(self) -> int:
        self.t += 1
        return self.t

    def pub(self, who: str) -> bytes:
        """The public key of the person called ``who`` in this world."""
        return bytes(self.keys(who).verify_key)

    def emit(self, who: str, body: bytes | None, data: Payload, at: int | None = None) -> Event:
        """Sign ``data`` as ``who`` and store it, with no rule check (the tally judges it)."""
        if at is None:  # after everything already in that record (consent votes run ahead)
            ts = max([self.tick()] + [t + 1 for t, _ in (self.store.heads(body) if body else [])])
        else:
            ts = at
        ev = author_event(self.store, self.keys(who), body=body, data=data, ts=ts, local=False)
        if ev.ts != ts:
            raise LocalError(f"event moved from {ts} to {ev.ts}: emit in time order")
        self.t = max(self.t, ts)
        return ev

    def late(self, who: str, body: bytes, data: Payload, at: int, names: Sequence[bytes]) -> Event:
        """An event stamped ``at`` that names only ``names`` (and its author's own last
        event) in ``prev``: one written before the heads it could have named, as a vote
        cast inside a window that reaches the node after the window's seals. It must be
        accepted (its author a person, ``names`` held)."""
        last = self.store.last_own(body, self.pub(who))
        prev = sorted(set(names) | ({last[1]} if last else set()))
        ev = sign_event(self.keys(who), body=body, ts=at, seq=1 if last is None else last[0] + 1,
                        prev=prev, data=data)
        r = self.store.ingest([ev], local=False)
        if ev.id not in r.accepted:
            raise LocalError(f"a late event was refused: {r.rejected}")
        self.t = max(self.t, at)
        return ev

    def clerk(self, who: str, at: int | None = None) -> "Clerk":
        """The library acting as ``who`` at ``at`` (default: the world's clock), every rule checked."""
        from .api import Clerk, Signer

        people = {n: self.pub(n) for ms in self.members.values() for n in ms}
        people[who] = self.pub(who)
        return Clerk(self.store, clock=(lambda: at) if at is not None else self.tick,
                     signer=Signer.of(self.keys(who)), people=people)

    def body(self, name: str, members: int = 0, *, kind: str = "community",
             charter: Mapping[str, str] | None = None, parts: tuple[str, ...] = (),
             parent: str | None = None, people: Sequence[str] | None = None,
             consent: bool = True) -> bytes:
        """Found ``name``: a base body whose members are ``people`` (default ``members``
        names ``name0``, ``name1``...), the first founding it and admitting the others;
        or, with ``parts``, a federation founded by ``organiser`` whose parts then
        consent to it (:meth:`consent`; not with ``consent=False``)."""
        charter = dict(charter or {})
        self.charters[name] = charter
        if parts:
            kind = kind if kind != "community" else "municipality"
            ev = self.emit("organiser", None, Found(
                body_kind=kind, name=name, charter=charter,
                parts=tuple(sorted(self.ids[p] for p in parts))))
            self.ids[name] = ev.id
            if consent:
                self.consent(parts, name)
        else:
            if kind == "committee" and parent:  # its term runs from its founding: found it just before T0
                self.t = max(self.t, T0 - DAY // 2)
            names = list(people) if people is not None else [f"{name}{i}" for i in range(members)]
            self.members[name] = names
            ev = self.emit(names[0], None, Found(
                body_kind=kind, name=name, charter=charter,
                parent=self.ids[parent] if parent else None))
            for p in names[1:]:
                self.emit(names[0], ev.id, Admit(member=self.pub(p)))
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
            _, carried = self.carry(part, Propose(
                title="Federate", text=f"join {fed}" if join else f"leave {fed}",
                proposal_kind="federate", federation=self.ids[fed], join=join), t0)
            done = max(done, carried)
            self.t = clock = max(clock, t0)
        # The votes run ahead in the parts' records; the clock does not, so that the
        # consent of many bodies runs in parallel. The federation is whole at ``done``.
        self.ready[fed] = max(self.ready.get(fed, 0), done)
        return done

    def carry(self, body: str, data: Propose, at: int, *,
              voters: Sequence[str] | None = None) -> tuple[bytes, int]:
        """``data`` proposed in ``body`` at ``at`` by the first of ``voters`` (default:
        everyone under ``body``), all of them voting yes as round 1 opens, one ms apart:
        ``(proposal id, when it is carried)`` (the end of round 1's contention). The
        votes run ahead in the body's record; the world's clock stays where it was."""
        cal = Calendar.of(at, DEFAULT_CHARTER.with_changes(self.charters.get(body, {})))
        people = list(voters) if voters is not None else self.people(body)
        clock = self.t
        pid = self.emit(people[0], self.ids[body], data, at).id
        times = Clock(cal.t1, cal.vote_window(1).end, f"bodies.{body}")
        for who in people:
            self.vote(who, pid, "yes", times.next())
        self.t = clock
        return pid, cal.contention_window(1).end

    def tellers(self, body: str, k: int, at: int, *,
                voters: Sequence[str] | None = None) -> tuple[list[str], int]:
        """``k`` tellers drawn by lot among every member of ``body`` (:meth:`carry`):
        the names drawn (none if the draw was not carried) and when it was carried."""
        people = list(voters) if voters is not None else self.people(body)
        pid, carried = self.carry(body, Propose(
            title="Tellers", text="Tellers drawn by lot.", proposal_kind="draw", k=k,
            task=TELLER_TASK, all_members=True), at, voters=people)
        res = self.tally(pid, carried)
        if res.state != "carried" or res.draw is None:
            return [], carried
        names = {self.pub(n): n for n in people}
        return [names[h] for h in res.draw.chosen], carried

    def seal(self, who: str, pid: bytes, window: str, heads: Sequence[bytes], at: int) -> Event:
        """Teller ``who`` seals ``window`` of proposal ``pid``, naming ``heads``."""
        return self.emit(who, self._target(pid).body_id,
                         Seal(proposal=pid, window=window, heads=tuple(heads)), at)

    def heads(self, body: str) -> list[bytes]:
        """The ids of ``body``'s accepted events that no accepted event names, sorted."""
        return sorted(h for _, h in self.store.heads(self.ids[body]))

    def admit(self, by: str, body: str, who: str, at: int | None = None) -> None:
        self.emit(by, self.ids[body], Admit(member=self.pub(who)), at)
        self.members[body].append(who)

    def leave(self, who: str, body: str, at: int | None = None) -> None:
        self.emit(who, self.ids[body], Leave(), at)

    def part(self, by: str, fed: str, part: str, join: bool, at: int | None = None) -> None:
        self.emit(by, self.ids[fed], Part(part=self.ids[part], join=join), at)

    def propose(self, body: str, by: str | None = None, *, at: int = T0, text: str = "v1",
                title: str = "T", **kw: Any) -> bytes:
        who = by or self.members[self._first_base(body)][0]
        if "kind" in kw:
            kw["proposal_kind"] = kw.pop("kind")
        return self.emit(who, self.ids[body], Propose(title=title, text=text, **kw), at).id

    def _first_base(self, body: str) -> str:
        if body in self.members:
            return body
        found = self.store.get(self.ids[body])
        assert found is not None and isinstance(found.data, Found)
        names = {v: k for k, v in self.ids.items()}
        return self._first_base(names[sorted(found.data.parts)[0]])

    def _target(self, eid: bytes) -> Event:
        tgt = self.store.get(eid)
        assert tgt is not None, f"no event {eid.hex()[:12]} in this world"
        return tgt

    def vote(self, who: str, target: bytes, choice: str, at: int, *, body: bytes | None = None,
             severity: str = "minor", category: str = "other", delegate: str | None = None) -> Event:
        tgt = self._target(target)
        data = Vote(target=target, choice=choice,
                    severity=severity if choice == "no" else None,
                    category=category if choice == "no" else None,
                    delegate=self.pub(delegate) if delegate and choice == "no" else None)
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
        return self.emit(who, self._target(pid).body_id, Amend(proposal=pid, text=text), at).id

    def stand(self, who: str, pid: bytes, choice: str, at: int) -> None:
        self.emit(who, self._target(pid).body_id, Stand(proposal=pid, choice=choice), at)

    def withdraw(self, who: str, pid: bytes, at: int) -> None:
        self.emit(who, self._target(pid).body_id, Withdraw(proposal=pid), at)

    def recall(self, who: str, pid: bytes, holder: str, at: int) -> bytes:
        return self.emit(who, self._target(pid).body_id,
                         Recall(mandate=pid, holder=self.pub(holder), reason="r"), at).id

    def events(self) -> list[Event]:
        return self.store.all_events()

    def tally(self, pid: bytes, as_of: int) -> "ProposalResult":
        from .consensus import tally_proposal

        return tally_proposal(self.events(), pid, as_of)

    def names(self) -> dict[bytes, str]:
        return {v: k for k, v in self.ids.items()}


# -- real homes and daemons ------------------------------------------------------------------


class TimedOut(Exception):
    """A bounded wait gave up."""


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``pred`` until it is truthy; :class:`TimedOut` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimedOut(f"gave up after {timeout:.0f} s waiting for {what}")


class HomeProcess:
    """One node's home, driven by the real ``imier`` command; its daemon a subprocess."""

    def __init__(self, root: Path, name: str, *, passphrase: str = "demo") -> None:
        self.name = name
        self.home = root / name
        self.passphrase = passphrase
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{name}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, IMIER_HOME=str(self.home), IMIER_PASSPHRASE=self.passphrase)
        env.pop("IMIER_NOW", None)
        env.pop("IMIER_AS", None)
        return env

    def imier(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run ``imier ARGS`` for this home; its stdout (stripped), or :class:`RuntimeError`."""
        r = subprocess.run([sys.executable, "-m", "imier", *args], env=self.env(),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: imier {' '.join(args)} failed:\n{r.stderr.strip()}")
        return r.stdout.strip()

    def doc(self, *args: str) -> Any:
        return json.loads(self.imier(*args, "--json"))

    def start(self, *args: str, timeout: float = 30) -> str:
        """Start ``imier daemon ARGS``; its first address once it listens."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "imier", "daemon", *args],
                                         env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        info = self.home / "daemon.json"

        def ready() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}'s daemon exited; see {self.log_path}")
            try:
                return json.loads(info.read_text())["addresses"][0]
            except (FileNotFoundError, json.JSONDecodeError, IndexError, KeyError):
                return None

        return str(wait_for(ready, timeout, f"{self.name}'s daemon"))

    def stop(self) -> float:
        """SIGTERM the daemon (SIGKILL after 10 s); the seconds it took."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        return time.monotonic() - t0

    def holds(self, ev_id: str) -> bool:
        """Whether this home's store has accepted the event (read beside the running daemon)."""
        with Store.open(self.home / "store.sqlite3") as store:
            return store.state(bytes.fromhex(ev_id)) == 1
