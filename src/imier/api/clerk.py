"""The assembly's clerk: every step a person takes, as one call, with its rules.

A :class:`Clerk` holds one node's store, a clock, the people on this node
and who signs. Each write (``found``, ``admit``, ``propose``, ``vote``...)
resolves what was typed, checks it, builds a draft, asks the decision
procedure whether it would count (:mod:`imier.api.checks`), and only then
unlocks the key, signs and stores, in one step of the store
(:func:`imier.store.author.author_event`). It returns a :class:`Written`.

Invariants:

1. A refused call writes nothing and raises one error: :class:`Rejected`
   (code and field: the argument was wrong) or :class:`LocalError` (it
   cannot be done now, with the reason the tally gives).
2. The secret key is unlocked only once the write is sure to be accepted.
3. The rules of the procedure are asked of :mod:`imier.consensus`; this
   module only checks what the procedure cannot see (arguments, kinds of
   the bodies named).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, Sequence, TypeVar, cast

from nacl.signing import SigningKey

from ..consensus import members_at, members_of_federation
from ..consensus.result import when
from ..protocol.charter import DEFAULT_CHARTER, parse_changes, parse_duration_ms
from ..protocol.errors import LocalError, Rejected
from ..protocol.events import (
    CHOICES,
    FEDERATION_KINDS,
    PROPOSAL_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Link,
    Part,
    Payload,
    Profile,
    Propose,
    Recall,
    Stand,
    Unlink,
    Vote,
    Withdraw,
)
from ..store.author import author_event
from ..store.db import Store
from ..store.invitations import Invitation, Invitations
from . import checks, resolve
from .resolve import Ref, short
from .written import Written


def _wall_ms() -> int:
    """Invitations expire by the machine's clock, not the record's (IMIER_NOW)."""
    return int(time.time() * 1000)


__all__ = ["Clerk", "Signer", "PROPOSAL_OPTIONS"]


class Signer:
    """Who signs: the public key at once, the secret key only when a write is sure."""

    def __init__(self, public: bytes, unlock: Callable[[], SigningKey]) -> None:
        self.public = public
        self._unlock = unlock

    @classmethod
    def of(cls, key: SigningKey) -> "Signer":
        return cls(bytes(key.verify_key), lambda: key)

    def unlock(self) -> SigningKey:
        key = self._unlock()
        if bytes(key.verify_key) != self.public:
            raise LocalError("the unlocked key is not the signer's")
        return key


#: Which options each proposal kind takes (the rest are refused, not dropped).
PROPOSAL_OPTIONS: dict[str, frozenset[str]] = {
    "general": frozenset(),
    "charter": frozenset({"charter"}),
    "mandate": frozenset({"holder", "task", "term", "scope"}),
    "draw": frozenset({"candidates", "seats", "task", "term", "all_members"}),
    "renew": frozenset({"committee"}),
    "federate": frozenset({"federation", "join"}),
    "recover": frozenset({"person", "new_key"}),
}


_W = TypeVar("_W", bound=Callable[..., Any])


def _one_view(method: _W) -> _W:
    """A write's checks read one snapshot of the store (:meth:`Store.snapshot`): the
    draft's ``seq`` and the events it is tallied with come from the same state, so a
    concurrent command of the same person cannot look like a fork. The signing step
    ends the snapshot and takes the write lock (``store.author``)."""
    @functools.wraps(method)
    def wrapper(self: "Clerk", *args: Any, **kwargs: Any) -> Any:
        with self.store.snapshot():
            return method(self, *args, **kwargs)
    return cast(_W, wrapper)


def _missing(kind: str, name: str) -> Rejected:
    return Rejected("missing_field", f"a {kind} proposal needs it", field=name)


class Clerk:
    """One node's store opened for the assembly's business (reads and writes)."""

    def __init__(self, store: Store, *, clock: Callable[[], int],
                 signer: Signer | Callable[[], Signer] | None = None,
                 people: Mapping[str, bytes] | None = None) -> None:
        self.store = store
        self.clock = clock
        self._signer = signer
        self.people: dict[str, bytes] = dict(people or {})

    # -- who ----------------------------------------------------------------------

    @property
    def signer(self) -> Signer:
        s = self._signer
        if s is None:
            raise LocalError("no one signs here", hint="'imier key new NAME' makes a person's key")
        if not isinstance(s, Signer):
            s = self._signer = s()
        return s

    def names(self) -> dict[bytes, str]:
        """Public key -> name for the people on this node."""
        return {v: k for k, v in self.people.items()}

    def who(self, key: bytes, body: bytes | None = None) -> str:
        """A person for a sentence: their name on this node, else the name they chose in
        ``body`` with a key prefix ('Ana (3f9c)': two people may pick one name), else the key."""
        local = self.names().get(key)
        if local:
            return local
        if body is not None:
            named = [e for e in self.store.events_for_bodies([body])
                     if e.author == key and isinstance(e.data, Profile)]
            if named:
                latest = max(named, key=lambda e: e.order_key).data
                assert isinstance(latest, Profile)
                return f"{latest.name} ({key.hex()[:4]})"
        return short(key)

    def body_name(self, body: bytes) -> str:
        ev = self.store.get(body)
        return ev.data.name if ev is not None and isinstance(ev.data, Found) else short(body)

    # -- reads ----------------------------------------------------------------------

    def resolve_body(self, ref: Ref, *, field: str = "body") -> Event:
        return resolve.body(self.store, ref, field=field)

    def resolve_event(self, ref: Ref, *, kinds: Sequence[str], what: str, field: str = "id") -> Event:
        return resolve.event(self.store, ref, kinds=kinds, what=what, field=field)

    def resolve_key(self, ref: Ref, *, field: str) -> bytes:
        return resolve.key(ref, self.people, field=field)

    def bodies(self) -> list[Event]:
        return self.store.bodies()

    def follows(self) -> list[bytes]:
        return self.store.follows()

    def members(self, body: Ref, *, as_of: int | None = None) -> list[bytes]:
        """The members of a body at ``as_of`` (default now), by the record's rules."""
        b = self.resolve_body(body)
        events = self.store.events_for_bodies([b.id])
        return sorted(members_at(events, b.id, self.clock() if as_of is None else as_of))

    # -- writing ----------------------------------------------------------------------

    def _sign(self, body: bytes | None, data: Payload, ts: int | Callable[[], int],
              key: SigningKey | None = None, window: tuple[int, int] | None = None) -> Event:
        # The one call into the store's authoring (seq, prev, sign, store in one step).
        return author_event(self.store, key or self.signer.unlock(), body=body, data=data, ts=ts,
                            window=window)

    def _write(self, d: Event, sentence: str = "", *, note: str | None = None,
               window: tuple[int, int] | None = None, **facts: object) -> Written:
        """Sign and store what draft ``d`` was checked as. The clock is read again inside
        the write (after the lock; a concurrent command of the same person may have
        written first), and ``window``, the window the draft was checked for, must
        still hold the stamped time: else nothing is written and the refusal says so."""
        ev = self._sign(d.body, d.data, self.clock, window=window)
        if note is not None:
            sentence += f"; this node does not count it yet ({note}): it counts once the admission is here"
        return Written(event=ev, sentence=sentence,
                       facts={"by": self.who(ev.author), "author": ev.author.hex(), "not_counted": note,
                              **facts})

    def _draft(self, body: bytes, data: Payload) -> Event:
        return checks.draft(self.store, self.signer.public, body, data, self.clock())

    @staticmethod
    def _settle(why: str | None, doing: str) -> str | None:
        """Refuse a draft the tally would not count; a membership reason only notes it."""
        if why is not None and checks.decisive(why):
            raise LocalError(f"cannot {doing}: {why}")
        return why

    # -- bodies and members ----------------------------------------------------------------

    @_one_view
    def found(self, kind: str, name: str, *, charter: Mapping[str, str] | None = None,
              parts: Sequence[Ref] = (), parent: Ref | None = None) -> Written:
        changes = dict(charter or {})
        full = DEFAULT_CHARTER.with_changes(changes)  # the whole charter must be coherent
        if parts and kind not in FEDERATION_KINDS:
            raise Rejected("bad_field", f"a {kind} has people as members, not bodies", field="parts",
                           hint="use municipality, region or collective for a federation")
        part_ids = sorted({self.resolve_body(p, field="parts").id for p in parts})
        parent_id = self.resolve_body(parent, field="parent").id if parent is not None else None
        if parent_id is not None and kind != "committee":
            raise Rejected("bad_field", "only a committee has a parent body", field="parent")
        canon = {k: v for k, v in full.to_wire().items() if k in changes}
        data = Found(body_kind=kind, name=name, charter=canon, parts=tuple(part_ids), parent=parent_id)
        me = self.signer
        ev = self._sign(None, data, self.clock())
        return Written(event=ev, sentence=f"{self.who(me.public)} founded the {kind} {name!r} ({short(ev.id)})",
                       facts={"by": self.who(me.public), "author": me.public.hex(), "verb": "founded",
                              "body_kind": kind, "name": name})

    def follow(self, body: Ref) -> bytes:
        """Hold a body's record here without being a member (a full id need not be held yet).

        A name or id prefix is looked up among the bodies held, then among the
        invitations (store/invitations.py): following accepts an invitation."""
        book = Invitations.beside(self.store.path)
        if isinstance(body, str) and len(body.strip()) == 64:
            t = body.strip().lower()
            if not resolve.is_hex(t):
                raise Rejected("not_an_id", f"{body!r} is not a body id", field="body")
            body_id = bytes.fromhex(t)
        elif isinstance(body, bytes) and len(body) == 32:
            body_id = body
        else:
            try:
                body_id = self.resolve_body(body).id
            except Rejected as exc:
                inv = (book.find(body, _wall_ms())
                       if book is not None and isinstance(body, str) and exc.code == "unknown_body" else None)
                if inv is None:
                    raise
                body_id = inv.body
        self.store.follow(body_id)
        if book is not None:
            book.remove(body_id)
        return body_id

    def invitations(self) -> list[Invitation]:
        """Admissions of this node's people learnt from peers, in bodies not held (not expired)."""
        book = Invitations.beside(self.store.path)
        return [] if book is None else book.list(_wall_ms())

    @_one_view
    def admit(self, body: Ref, member: Ref) -> Written:
        """A member vouches a person into a base body, or a body into a federation."""
        b = self.resolve_body(body)
        assert isinstance(b.data, Found)
        if b.data.body_kind in FEDERATION_KINDS:
            part = self.resolve_body(member, field="member")
            d = self._draft(b.id, Part(part=part.id, join=True))
            events = self.store.events_for_bodies(self.store.closure(b.id) | self.store.closure(part.id))
            if part.id in members_at(events, b.id, d.ts):
                raise LocalError(f"{self.body_name(part.id)} is already a member of {b.data.name}")
            after = [*events, d]
            joined = part.id in members_of_federation(after, b.id, d.ts)
            if part.id not in members_at(after, b.id, d.ts):
                # docs/rules.md s.9.2: only a person of the federation names a body
                raise LocalError(f"you are not a person of {b.data.name}, so you cannot name "
                                 f"{self.body_name(part.id)} as its part",
                                 hint="a person of the federation names the body; the body then "
                                 "joins by its own carried 'federate' proposal")
            if joined:
                sentence = f"{self.who(d.author)} added {self.body_name(part.id)} to {b.data.name}"
            else:
                sentence = (f"{self.who(d.author)} invited {self.body_name(part.id)} to {b.data.name}; "
                            f"it joins once {self.body_name(part.id)} carries 'imier propose "
                            f"{self.body_name(part.id)} --kind federate --federation {b.data.name}'")
            return self._write(d, sentence, verb="added" if joined else "invited",
                               member=part.id.hex(), body_name=b.data.name)
        who = self.resolve_key(member, field="member")
        d = self._draft(b.id, Admit(member=who))
        current = members_at(self.store.events_for_bodies([b.id]), b.id, d.ts)
        if d.author not in current:
            raise LocalError(f"you are not a member of {b.data.name}, so you cannot vouch for anyone",
                             hint="ask an existing member to admit them")
        if who in current:
            raise LocalError(f"{self.who(who)} is already a member of {b.data.name}")
        return self._write(d, f"{self.who(d.author)} admitted {self.who(who)} to {b.data.name}",
                           verb="admitted", member=who.hex(), body_name=b.data.name)

    @_one_view
    def leave(self, body: Ref) -> Written:
        b = self.resolve_body(body)
        assert isinstance(b.data, Found)
        d = self._draft(b.id, Leave())
        if b.data.body_kind not in FEDERATION_KINDS:
            if d.author not in members_at(self.store.events_for_bodies([b.id]), b.id, d.ts):
                raise LocalError(f"{self.who(d.author)} is not a member of {b.data.name}")
        return self._write(d, f"{self.who(d.author)} left {b.data.name}", verb="left", body_name=b.data.name)

    # -- proposals -------------------------------------------------------------------------

    @_one_view
    def propose(self, body: Ref, *, title: str, text: str, kind: str = "general",
                charter: Mapping[str, str] | None = None, holder: Ref | None = None,
                task: str | None = None, term: str | int | None = None, scope: Ref | None = None,
                candidates: Sequence[Ref] = (), seats: int | None = None,
                committee: Ref | None = None, federation: Ref | None = None, join: bool | None = None,
                person: Ref | None = None, new_key: Ref | None = None,
                all_members: bool = False) -> Written:
        """Put a proposal of any kind to a body. Options of another kind are refused."""
        if kind not in PROPOSAL_KINDS:
            raise Rejected("bad_field", f"{kind!r} is not a proposal kind ({', '.join(PROPOSAL_KINDS)})",
                           field="kind")
        given = {"charter": bool(charter), "holder": holder is not None, "task": task is not None,
                 "term": term is not None, "scope": scope is not None, "candidates": bool(candidates),
                 "seats": seats is not None, "committee": committee is not None,
                 "federation": federation is not None, "join": join is not None,
                 "person": person is not None, "new_key": new_key is not None,
                 "all_members": all_members}
        allowed = PROPOSAL_OPTIONS.get(kind, frozenset())
        for name, present in given.items():
            if present and name not in allowed:
                users = [k for k, v in PROPOSAL_OPTIONS.items() if name in v]
                raise Rejected("unknown_field", f"goes with --kind {' or '.join(users)}, not {kind}",
                               field=name, hint="add --kind, or leave the option out")
        b = self.resolve_body(body)
        assert isinstance(b.data, Found)
        extra: dict[str, Any] = {}
        if kind == "charter":
            if not charter:
                raise Rejected("missing_field", "a charter proposal names at least one KEY=VALUE",
                               field="charter")
            parse_changes(charter)
            extra["charter"] = dict(charter)
        elif kind == "mandate":
            for name in ("holder", "task", "term"):
                if not given[name]:
                    raise _missing(kind, name)
            assert holder is not None and term is not None
            extra.update(holder=self.resolve_key(holder, field="holder"), task=task,
                         term_ms=_duration(term, "term"))
            if scope is not None:
                extra["scope"] = resolve.scope(self.store, scope)
        elif kind == "draw":
            self._draw(extra, task, term, candidates, seats, all_members)
        elif kind == "renew":
            if committee is None:
                raise _missing(kind, "committee")
            c = self.resolve_body(committee, field="committee")
            assert isinstance(c.data, Found)
            if c.data.body_kind != "committee":
                raise Rejected("bad_field", f"{c.data.name} is a {c.data.body_kind}, not a committee",
                               field="committee", hint="renew names a committee ('imier body list')")
            renewer = c.data.parent if c.data.parent is not None else c.id
            if renewer != b.id:
                raise Rejected("bad_field", f"{c.data.name} is renewed by {self.body_name(renewer)}, "
                               f"not {b.data.name}", field="committee",
                               hint=f"propose it to {self.body_name(renewer)}")
            extra["committee"] = c.id
        elif kind == "federate":
            if federation is None:
                raise _missing(kind, "federation")
            fid: bytes | None = None
            if isinstance(federation, str) and len(federation.strip()) == 64 \
                    and resolve.is_hex(federation.strip()) \
                    and self.store.get(bytes.fromhex(federation.strip())) is None:
                # A body consents to a federation it does not hold yet: this node only
                # holds a federation above its body once the body has consented (s.9.2).
                fid = bytes.fromhex(federation.strip().lower())
            else:
                f = self.resolve_body(federation, field="federation")
                assert isinstance(f.data, Found)
                if f.data.body_kind not in FEDERATION_KINDS:
                    raise Rejected("bad_field", f"{f.data.name} is a {f.data.body_kind}, not a federation",
                                   field="federation")
                fid = f.id
            extra.update(federation=fid, join=True if join is None else join)
        elif kind == "recover":
            if person is None:
                raise _missing(kind, "person")
            if new_key is None:
                raise _missing(kind, "new_key")
            extra.update(person=self.resolve_key(person, field="person"),
                         new_key=self.resolve_key(new_key, field="new_key"))
        data = Propose(title=title, text=text, proposal_kind=kind, **extra)
        d = self._draft(b.id, data)
        why, r = checks.proposal_refusal(self.store, d)
        if why is not None or r is None:
            raise LocalError(f"cannot propose to {b.data.name}: {why}")
        t1 = r.calendar.t1
        return self._write(d, f"{self.who(d.author)} proposed {title!r} to {b.data.name} "
                           f"(discussion until {when(t1)}, then round 1's vote)",
                           verb="proposed", title=title, proposal_kind=kind, body_name=b.data.name,
                           discussion_closes=t1)

    def _draw(self, extra: dict[str, Any], task: str | None, term: str | int | None,
              candidates: Sequence[Ref], seats: int | None, all_members: bool) -> None:
        if task is None:
            raise _missing("draw", "task")
        if seats is None:
            raise _missing("draw", "seats")
        if seats < 1:
            raise Rejected("bad_field", f"a draw needs at least one seat, not {seats}", field="seats")
        if all_members and candidates:
            raise Rejected("bad_field", "give candidates or draw from all members, not both",
                           field="candidates")
        if not all_members and not candidates:
            raise Rejected("missing_field", "a draw needs candidates, or all members", field="candidates",
                           hint="--candidate PUBKEY (repeatable) or --all-members")
        if all_members:
            extra["all_members"] = True
        else:
            keys = sorted({self.resolve_key(c, field="candidates") for c in candidates})
            if seats > len(keys):
                raise Rejected("bad_field", f"{seats} seats but {len(keys)} candidate(s)", field="seats")
            extra["candidates"] = tuple(keys)
        extra.update(k=seats, task=task)
        if term is not None:
            extra["term_ms"] = _duration(term, "term")

    @_one_view
    def amend(self, proposal: Ref, text: str) -> Written:
        prop = self.resolve_event(proposal, kinds=("propose",), what="proposal", field="proposal")
        d = self._draft(prop.body_id, Amend(proposal=prop.id, text=text))
        r, why = checks.judged(self.store, prop, d, phases=("amend",), doing="amend")
        note = self._settle(why, "amend")
        assert r.window is not None
        return self._write(d, note=note, window=r.window, sentence=f"{self.who(d.author)} proposed an amendment to "
                           f"{r.title!r} (amendments close {when(r.window[1])})",
                           verb="amended", title=r.title, proposal=prop.id.hex(), round=r.round,
                           closes=r.window[1])

    @_one_view
    def vote(self, target: Ref, choice: str, *, severity: str | None = None,
             category: str | None = None, delegate: Ref | None = None) -> Written:
        """Vote on a proposal's open round, an open amendment or an open recall."""
        if choice not in CHOICES:
            raise Rejected("bad_field", f"{choice!r} is not yes, no or abstain", field="choice")
        if choice != "no":
            for name, v in (("severity", severity), ("category", category), ("delegate", delegate)):
                if v is not None:
                    raise Rejected("bad_field", "goes with a 'no' vote only", field=name)
        tgt = self.resolve_event(target, kinds=("propose", "amend", "recall"),
                                 what="proposal, amendment or recall")
        sev = cat = None
        dkey = None
        if choice == "no":
            sev = severity or "minor"
            cat = (category or "other").strip().lower()
            dkey = self.resolve_key(delegate, field="delegate") if delegate is not None else None
        d = self._draft(tgt.body_id, Vote(target=tgt.id, choice=choice, severity=sev, category=cat,
                                          delegate=dkey))
        if tgt.kind == "propose":
            prop = tgt
            r, why = checks.judged(self.store, prop, d, phases=("vote",), doing="vote")
            assert r.window is not None
            window = r.window
            closes, what, on = r.window[1], f"round {r.round} closes", repr(r.title)
        elif tgt.kind == "amend":
            assert isinstance(tgt.data, Amend)
            prop = self._held(tgt.data.proposal, "the proposal of that amendment")
            r, why = checks.judged(self.store, prop, d, phases=("amend",), doing="vote on the amendment")
            if tgt.id not in r.open_amendments:
                raise LocalError("cannot vote on the amendment: "
                                 + (checks.why_not(r, tgt.id) or "it is not open now"))
            assert r.window is not None
            window = r.window
            closes, what, on = r.window[1], "amendments close", f"an amendment to {r.title!r}"
        else:
            assert isinstance(tgt.data, Recall)
            prop = self._held(tgt.data.mandate, "the mandate proposal of that recall")
            why, r = checks.refusal(self.store, prop, d)
            rc = next((x for x in r.recalls if x.id == tgt.id), None)
            if rc is None:
                raise LocalError("cannot vote on that recall: it does not count ("
                                 + (checks.why_not(r, tgt.id) or "not counted") + ")")
            if not rc.open:
                raise LocalError(f"cannot vote on that recall: its vote closed {when(rc.window[1])}")
            window = rc.window
            closes, what = rc.window[1], "the recall vote closes"
            on = f"the recall of {self.who(rc.holder, prop.body_id)}'s mandate"
        note = self._settle(why, "vote")
        objection = f" ({sev} objection: {cat})" if choice == "no" else ""
        return self._write(d, note=note, window=window, sentence=f"{self.who(d.author)} voted {choice}{objection} on "
                           f"{on} ({what} {when(closes)})",
                           verb="voted", choice=choice, severity=sev, category=cat,
                           target=tgt.id.hex(), target_kind=tgt.kind, title=r.title,
                           proposal=prop.id.hex(), round=r.round, closes=closes)

    @_one_view
    def stand(self, proposal: Ref, choice: str) -> Written:
        if choice not in ("yes", "no"):
            raise Rejected("bad_field", f"{choice!r} is not yes or no", field="choice")
        prop = self.resolve_event(proposal, kinds=("propose",), what="proposal", field="proposal")
        d = self._draft(prop.body_id, Stand(proposal=prop.id, choice=choice))
        # A standing can table the proposal, so the phase is read without it.
        events = checks.events_for(self.store, prop)
        r = checks.require_phase(self.store, prop, d.ts, phases=("contention",),
                                 doing="change your standing", events=events)
        why, _ = checks.refusal(self.store, prop, d, events=events)
        note = self._settle(why, "change your standing")
        assert r.window is not None
        return self._write(d, note=note, window=r.window, sentence=f"{self.who(d.author)} now stands {choice} on "
                           f"{r.title!r} (contention closes {when(r.window[1])})",
                           verb="stood", choice=choice, title=r.title, proposal=prop.id.hex(),
                           closes=r.window[1])

    @_one_view
    def withdraw(self, proposal: Ref) -> Written:
        prop = self.resolve_event(proposal, kinds=("propose",), what="proposal", field="proposal")
        d = self._draft(prop.body_id, Withdraw(proposal=prop.id))
        why, r = checks.refusal(self.store, prop, d)  # proposer only, before round 1 closes
        note = self._settle(why, "withdraw")
        return self._write(d, note=note, sentence=f"{self.who(d.author)} withdrew {r.title!r}",
                           verb="withdrew", title=r.title, proposal=prop.id.hex())

    @_one_view
    def recall(self, mandate: Ref, holder: Ref, reason: str) -> Written:
        prop = self.resolve_event(mandate, kinds=("propose",), what="mandate proposal", field="mandate")
        who = self.resolve_key(holder, field="holder")
        d = self._draft(prop.body_id, Recall(mandate=prop.id, holder=who, reason=reason))
        why, r = checks.refusal(self.store, prop, d)  # "the proposal made no mandate", "names no holder"
        note = self._settle(why, "recall")
        rc = next((x for x in r.recalls if x.id == d.id), None)
        closes = rc.window[1] if rc is not None else None
        tail = f" (the recall vote closes {when(closes)})" if closes is not None else ""
        return self._write(d, note=note, sentence=f"{self.who(d.author)} opened a recall of "
                           f"{self.who(who, prop.body_id)}'s mandate from {r.title!r}{tail}", verb="recalled",
                           holder=who.hex(), title=r.title, proposal=prop.id.hex(), closes=closes)

    # -- people and devices (how a person is shown; which keys act for them) -------------------

    def _my_bodies(self, at: int) -> list[Event]:
        """The base bodies held here of which the signer is a member at ``at``."""
        me = self.signer.public
        out = []
        for b in self.store.bodies():
            if isinstance(b.data, Found) and b.data.body_kind not in FEDERATION_KINDS:
                if me in members_at(self.store.events_for_bodies([b.id]), b.id, at):
                    out.append(b)
        if not out:
            raise LocalError(f"{self.who(me)} is a member of no body held here",
                             hint="a name and devices are posted in the bodies one belongs to")
        return out

    def _everywhere(self, data: Payload, verb: str, sentence: str, **facts: object) -> Written:
        """Post ``data`` in every base body the signer belongs to (docs/rules.md: people and devices)."""
        bodies = self._my_bodies(self.clock())
        key = self.signer.unlock()
        evs = [self._sign(b.id, data, self.clock(), key) for b in bodies]
        names = [b.data.name for b in bodies if isinstance(b.data, Found)]
        return Written(event=evs[0], also=tuple(evs[1:]), sentence=f"{sentence} (in {', '.join(names)})",
                       facts={"by": self.who(key_pub(key)), "author": key_pub(key).hex(), "verb": verb,
                              "bodies": [b.id.hex() for b in bodies],
                              "events": [e.id.hex() for e in evs], **facts})

    @_one_view
    def person_name(self, name: str) -> Written:
        """How the signer is shown, in every body they belong to (a ``profile`` event)."""
        data = Profile(name=name.strip())
        return self._everywhere(data, "named", f"{self.who(self.signer.public)} is now shown as "
                                f"{data.name} ({self.signer.public.hex()[:4]})", name=data.name)

    @_one_view
    def person_link(self, device: Ref) -> Written:
        """From now, the key ``device`` acts for the signer (a phone's key)."""
        dev = self.resolve_key(device, field="device")
        if dev == self.signer.public:
            raise Rejected("bad_field", "is the signer's own key", field="device",
                           hint="link the new device's public key")
        return self._everywhere(Link(device=dev), "linked",
                                f"{self.who(self.signer.public)} linked the device {short(dev)}",
                                device=dev.hex())

    @_one_view
    def person_unlink(self, device: Ref) -> Written:
        """From now, the key ``device`` no longer acts for the signer."""
        dev = self.resolve_key(device, field="device")
        if dev == self.signer.public:
            raise Rejected("bad_field", "is the signer's own key", field="device")
        linked = any(isinstance(e.data, Link) and e.data.device == dev
                     for b in self._my_bodies(self.clock())
                     for e in self.store.events_for_bodies([b.id]))
        if not linked:
            raise Rejected("not_linked", f"{short(dev)} was never linked here", field="device",
                           hint="'imier person link' names a device first")
        return self._everywhere(Unlink(device=dev), "unlinked",
                                f"{self.who(self.signer.public)} unlinked the device {short(dev)}",
                                device=dev.hex())

    # -- helpers ------------------------------------------------------------------------------

    def _held(self, eid: bytes, what: str) -> Event:
        ev = self.store.get(eid)
        if ev is None or self.store.state(eid) != 1:
            raise LocalError(f"this node does not hold {what}", hint="sync first")
        return ev


def key_pub(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


def _duration(v: str | int, field: str) -> int:
    if isinstance(v, int):
        return v
    return parse_duration_ms(v, field=field)
