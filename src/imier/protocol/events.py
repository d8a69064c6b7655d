"""Signed events: the only thing Imier nodes store and exchange.

An event on the wire is one canonical msgpack map (see canonical.py)::

    {"author": bin32, "body": bin32 | nil, "data": {...}, "kind": str,
     "prev": [bin32, ...], "seq": int, "sig": bin64, "ts": int, "v": 1}

* ``sig`` is Ed25519 by ``author`` over ``SIGN_CONTEXT + pack(map without "sig")``.
* The event id is ``sha256(wire bytes)``. A body's id is the id of the
  ``found`` event that founded it (whose ``body`` is nil).
* ``seq``/``prev``: docs/rules.md s.8. ``prev`` is sorted, unique, at most 8.

Rules checked here (pure, per event): shape and types of every field,
limits, canonical form, signature. Rules that need other events (prev held,
timestamps monotone along prev, forks, eligibility) live in store/ and
consensus/.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union

from msgpack import unpackb as _unpackb
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from . import canonical
from .charter import COMBINE_MODES, parse_changes  # noqa: F401  (COMBINE_MODES re-exported)
from .errors import Rejected
from .limits import (
    FORMAT_VERSION,
    ID_LEN,
    KEY_LEN,
    MAX_CANDIDATES,
    MAX_CATEGORY,
    MAX_EVENT_BYTES,
    MAX_NAME,
    MAX_PARTS,
    MAX_PREV,
    MAX_PROFILE_NAME,
    MAX_SEAL_HEADS,
    MAX_SEQ,
    MAX_TEXT,
    MAX_TITLE,
    MAX_TS,
    SIG_LEN,
)

__all__ = [
    "SIGN_CONTEXT",
    "BODY_KINDS",
    "BASE_KINDS",
    "FEDERATION_KINDS",
    "PROPOSAL_KINDS",
    "Found",
    "Admit",
    "Leave",
    "Part",
    "Propose",
    "Amend",
    "Vote",
    "Stand",
    "Withdraw",
    "Recall",
    "Seal",
    "Profile",
    "Link",
    "Unlink",
    "SEAL_WINDOWS",
    "TELLER_TASK",
    "Payload",
    "Event",
    "decode_event",
    "decode_stored",
    "sign_event",
    "event_id",
]

SIGN_CONTEXT = b"imier/event/v1\x00"
BASE_KINDS = ("community", "workplace", "committee")
FEDERATION_KINDS = ("municipality", "region", "collective")
BODY_KINDS = BASE_KINDS + FEDERATION_KINDS
PROPOSAL_KINDS = ("general", "charter", "mandate", "draw", "renew", "federate", "recover")
# The windows a seal can close (docs/rules.md s.10): the rounds, the amendment
# windows before rounds 2 and 3, contention, and a recall's single round.
SEAL_WINDOWS = ("r1", "a2", "r2", "a3", "r3", "c", "recall")
TELLER_TASK = "teller"  # the task of a mandate whose holder seals windows
CHOICES = ("yes", "no", "abstain")
SEVERITIES = ("minor", "blocking")
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


# -- field checkers: each names the field it refuses -------------------------


def _b32(v: Any, name: str, length: int = ID_LEN) -> bytes:
    if not isinstance(v, bytes) or len(v) != length:
        raise Rejected("bad_field", f"must be {length} bytes", field=name)
    return v


def _opt_b32(v: Any, name: str) -> bytes | None:
    return None if v is None else _b32(v, name)


def _text(v: Any, name: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(v, str):
        raise Rejected("bad_field", "must be text", field=name)
    if len(v) > max_len:
        raise Rejected("too_long", f"{len(v)} characters, limit is {max_len}", field=name)
    if not allow_empty and not v.strip():
        raise Rejected("bad_field", "must not be empty", field=name)
    if "\x00" in v:
        raise Rejected("bad_field", "must not contain NUL", field=name)
    return v


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not (lo <= v <= hi):
        raise Rejected("bad_field", f"must be an integer in [{lo}, {hi}]", field=name)
    return v


def _one_of(v: Any, name: str, options: tuple[str, ...]) -> str:
    if v not in options:
        raise Rejected("bad_field", f"must be one of {', '.join(options)}", field=name)
    return str(v)


def _ids(v: Any, name: str, max_len: int, *, sorted_unique: bool) -> tuple[bytes, ...]:
    if not isinstance(v, (list, tuple)):
        raise Rejected("bad_field", "must be a list", field=name)
    if len(v) > max_len:
        raise Rejected("too_long", f"{len(v)} entries, limit is {max_len}", field=name)
    out = tuple(v)
    for i, x in enumerate(out):
        if type(x) is not bytes or len(x) != ID_LEN:  # the name is formatted only on failure
            _b32(x, f"{name}[{i}]")
    if sorted_unique and list(out) != sorted(set(out)):
        raise Rejected("bad_field", "must be sorted and without duplicates", field=name)
    return out


def _keys(d: Any, name: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise Rejected("bad_field", "must be a map", field=name)
    missing = required - d.keys()
    if missing:
        raise Rejected("missing_field", f"missing {', '.join(sorted(missing))}", field=name)
    extra = d.keys() - required - optional
    if extra:
        raise Rejected("unknown_field", f"unknown {', '.join(sorted(extra))}", field=name)
    return d


# -- payloads -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Found:
    """Founds a body. ``charter`` holds only the keys that differ from the defaults."""

    KIND: ClassVar[str] = "found"
    body_kind: str
    name: str
    charter: dict[str, str] = field(default_factory=dict)
    parts: tuple[bytes, ...] = ()
    parent: bytes | None = None  # committees: the body that set them up

    def __post_init__(self) -> None:
        _one_of(self.body_kind, "data.kind", BODY_KINDS)
        _text(self.name, "data.name", MAX_NAME)
        _check_charter(self.charter, "data.charter")
        _ids(self.parts, "data.parts", MAX_PARTS, sorted_unique=True)
        if self.parts and self.body_kind not in FEDERATION_KINDS:
            raise Rejected("bad_field", "only federations have member bodies", field="data.parts")
        _opt_b32(self.parent, "data.parent")

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.body_kind, "name": self.name}
        if self.charter:
            d["charter"] = dict(self.charter)
        if self.parts:
            d["parts"] = list(self.parts)
        if self.parent is not None:
            d["parent"] = self.parent
        return d

    @classmethod
    def from_wire(cls, d: Any) -> "Found":
        d = _keys(d, "data", {"kind", "name"}, {"charter", "parts", "parent"})
        return cls(
            body_kind=d["kind"],
            name=d["name"],
            charter=d.get("charter", {}),
            parts=_ids(d.get("parts", []), "data.parts", MAX_PARTS, sorted_unique=True),
            parent=d.get("parent"),
        )


def _check_charter(c: Any, name: str) -> None:
    if not isinstance(c, dict):
        raise Rejected("bad_field", "must be a map", field=name)
    for k, v in c.items():
        if not isinstance(v, str):
            raise Rejected("bad_charter", "values are written as strings", field=f"{name}.{k}")
    # Values must parse; coherence with the rest of the charter is checked where
    # the whole charter is known (consensus applies changes to the current one).
    parse_changes(c)


@dataclass(frozen=True, kw_only=True)
class Admit:
    """An existing member vouches ``member`` into the body (base) or the body ``member`` in."""

    KIND: ClassVar[str] = "admit"
    member: bytes

    def __post_init__(self) -> None:
        _b32(self.member, "data.member", KEY_LEN)

    def to_wire(self) -> dict[str, Any]:
        return {"member": self.member}

    @classmethod
    def from_wire(cls, d: Any) -> "Admit":
        d = _keys(d, "data", {"member"})
        return cls(member=d["member"])


@dataclass(frozen=True, kw_only=True)
class Leave:
    """The author leaves the body. Always allowed (free exit)."""

    KIND: ClassVar[str] = "leave"

    def to_wire(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_wire(cls, d: Any) -> "Leave":
        _keys(d, "data", set())
        return cls()


@dataclass(frozen=True, kw_only=True)
class Part:
    """A member body joins (``join=True``) or leaves a federation (the event's body)."""

    KIND: ClassVar[str] = "part"
    part: bytes
    join: bool

    def __post_init__(self) -> None:
        _b32(self.part, "data.part")
        if not isinstance(self.join, bool):
            raise Rejected("bad_field", "must be true or false", field="data.join")

    def to_wire(self) -> dict[str, Any]:
        return {"join": self.join, "part": self.part}

    @classmethod
    def from_wire(cls, d: Any) -> "Part":
        d = _keys(d, "data", {"part", "join"})
        return cls(part=d["part"], join=d["join"])


@dataclass(frozen=True, kw_only=True)
class Propose:
    """A proposal. Kind-specific fields (docs/rules.md s.5, docs/decisions.md):

    * ``charter``: ``charter`` holds the keys to change.
    * ``mandate``: ``holder`` gets ``task`` for ``term_ms`` (``scope``: an
      optional proposal or federation id it serves).
    * ``draw``: ``k`` of ``candidates`` are drawn by lot for ``task``.
    * ``renew``: renews the committee ``committee``.
    * ``draw`` draws from ``candidates`` or, with ``all_members`` (true), from
      every member eligible at the proposal's timestamp; exactly one of the two.
    * ``federate``: the body joins (``join`` true) or leaves the federation
      ``federation`` (docs/rules.md s.9.2).
    * ``recover``: ``new_key`` becomes the only device of ``person`` (the
      person's first key) once carried (s.11.2).
    """

    KIND: ClassVar[str] = "propose"
    title: str
    text: str
    proposal_kind: str = "general"
    charter: dict[str, str] | None = None
    holder: bytes | None = None
    task: str | None = None
    term_ms: int | None = None
    scope: bytes | None = None
    candidates: tuple[bytes, ...] | None = None
    k: int | None = None
    committee: bytes | None = None
    federation: bytes | None = None
    join: bool | None = None
    person: bytes | None = None
    new_key: bytes | None = None
    all_members: bool | None = None

    _BY_KIND: ClassVar[dict[str, tuple[set[str], set[str]]]] = {
        "general": (set(), set()),
        "charter": ({"charter"}, set()),
        "mandate": ({"holder", "task", "term_ms"}, {"scope"}),
        "draw": ({"k", "task"}, {"term_ms", "candidates", "all_members"}),
        "renew": ({"committee"}, set()),
        "federate": ({"federation", "join"}, set()),
        "recover": ({"person", "new_key"}, set()),
    }
    _EXTRA: ClassVar[tuple[str, ...]] = (
        "charter", "holder", "task", "term_ms", "scope", "candidates", "k", "committee",
        "federation", "join", "person", "new_key", "all_members",
    )

    def __post_init__(self) -> None:
        _text(self.title, "data.title", MAX_TITLE)
        _text(self.text, "data.text", MAX_TEXT)
        _one_of(self.proposal_kind, "data.kind", PROPOSAL_KINDS)
        required, optional = self._BY_KIND[self.proposal_kind]
        for name in self._EXTRA:
            present = getattr(self, name) is not None
            if present and name not in required | optional:
                raise Rejected(
                    "unknown_field",
                    f"not used by a {self.proposal_kind} proposal",
                    field=f"data.{name}",
                )
            if not present and name in required:
                raise Rejected(
                    "missing_field", f"a {self.proposal_kind} proposal needs it", field=f"data.{name}"
                )
        if self.charter is not None:
            if not self.charter:
                raise Rejected("bad_field", "names no charter key", field="data.charter")
            _check_charter(self.charter, "data.charter")
        _opt_b32(self.holder, "data.holder")
        _opt_b32(self.scope, "data.scope")
        _opt_b32(self.committee, "data.committee")
        if self.task is not None:
            _text(self.task, "data.task", MAX_TEXT)
        if self.term_ms is not None:
            _int(self.term_ms, "data.term_ms", 1, 366 * 86_400_000)
        if self.candidates is not None:
            _ids(self.candidates, "data.candidates", MAX_CANDIDATES, sorted_unique=True)
            if not self.candidates:
                raise Rejected("bad_field", "must name at least one candidate", field="data.candidates")
        if self.k is not None:
            _int(self.k, "data.k", 1, MAX_CANDIDATES)
            if self.candidates is not None and self.k > len(self.candidates):
                raise Rejected("bad_field", "more seats than candidates", field="data.k")
        if self.all_members is not None and self.all_members is not True:
            # Canonical form: the key is left out rather than set to false.
            raise Rejected("bad_field", "is true, or left out", field="data.all_members")
        if self.proposal_kind == "draw" and (self.candidates is None) == (self.all_members is None):
            raise Rejected(
                "bad_field", "a draw names its candidates or draws from all members, not both",
                field="data.candidates",
            )
        _opt_b32(self.federation, "data.federation")
        if self.join is not None and not isinstance(self.join, bool):
            raise Rejected("bad_field", "must be true or false", field="data.join")
        if self.person is not None:
            _b32(self.person, "data.person", KEY_LEN)
        if self.new_key is not None:
            _b32(self.new_key, "data.new_key", KEY_LEN)
            if self.new_key == self.person:
                raise Rejected("bad_field", "is the person's own first key", field="data.new_key")

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.proposal_kind, "text": self.text, "title": self.title}
        for name in self._EXTRA:
            v = getattr(self, name)
            if v is not None:
                d[name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_wire(cls, d: Any) -> "Propose":
        d = _keys(d, "data", {"title", "text", "kind"}, set(cls._EXTRA))
        kw = {name: d.get(name) for name in cls._EXTRA}
        if isinstance(kw["candidates"], list):
            kw["candidates"] = tuple(kw["candidates"])
        return cls(title=d["title"], text=d["text"], proposal_kind=d["kind"], **kw)


@dataclass(frozen=True, kw_only=True)
class Amend:
    """A new full text for ``proposal``; its round follows from its timestamp."""

    KIND: ClassVar[str] = "amend"
    proposal: bytes
    text: str

    def __post_init__(self) -> None:
        _b32(self.proposal, "data.proposal")
        _text(self.text, "data.text", MAX_TEXT)

    def to_wire(self) -> dict[str, Any]:
        return {"proposal": self.proposal, "text": self.text}

    @classmethod
    def from_wire(cls, d: Any) -> "Amend":
        d = _keys(d, "data", {"proposal", "text"})
        return cls(proposal=d["proposal"], text=d["text"])


@dataclass(frozen=True, kw_only=True)
class Vote:
    """A vote on a proposal (its open round), an amendment or a recall.

    A ``no`` carries an objection: ``severity`` (minor/blocking), a
    ``category`` and optionally a ``delegate`` to plead it. Other choices
    carry none of these.
    """

    KIND: ClassVar[str] = "vote"
    target: bytes
    choice: str
    severity: str | None = None
    category: str | None = None
    delegate: bytes | None = None

    def __post_init__(self) -> None:
        _b32(self.target, "data.target")
        _one_of(self.choice, "data.choice", CHOICES)
        if self.choice == "no":
            _one_of(self.severity, "data.severity", SEVERITIES)
            _text(self.category, "data.category", MAX_CATEGORY)
            if not _CATEGORY_RE.match(self.category or ""):
                raise Rejected(
                    "bad_field",
                    "lowercase letters, digits, '-' and '_' only",
                    field="data.category",
                )
            _opt_b32(self.delegate, "data.delegate")
        elif self.severity is not None or self.category is not None or self.delegate is not None:
            raise Rejected(
                "bad_field", "only a 'no' carries an objection", field="data.severity"
            )

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"choice": self.choice, "target": self.target}
        if self.choice == "no":
            d["severity"] = self.severity
            d["category"] = self.category
            if self.delegate is not None:
                d["delegate"] = self.delegate
        return d

    @classmethod
    def from_wire(cls, d: Any) -> "Vote":
        d = _keys(d, "data", {"target", "choice"}, {"severity", "category", "delegate"})
        return cls(
            target=d["target"],
            choice=d["choice"],
            severity=d.get("severity"),
            category=d.get("category"),
            delegate=d.get("delegate"),
        )


@dataclass(frozen=True, kw_only=True)
class Stand:
    """A member's standing on a passed proposal during contention."""

    KIND: ClassVar[str] = "stand"
    proposal: bytes
    choice: str

    def __post_init__(self) -> None:
        _b32(self.proposal, "data.proposal")
        _one_of(self.choice, "data.choice", ("yes", "no"))

    def to_wire(self) -> dict[str, Any]:
        return {"choice": self.choice, "proposal": self.proposal}

    @classmethod
    def from_wire(cls, d: Any) -> "Stand":
        d = _keys(d, "data", {"proposal", "choice"})
        return cls(proposal=d["proposal"], choice=d["choice"])


@dataclass(frozen=True, kw_only=True)
class Withdraw:
    """The proposer withdraws ``proposal`` (only before round 1 closes)."""

    KIND: ClassVar[str] = "withdraw"
    proposal: bytes

    def __post_init__(self) -> None:
        _b32(self.proposal, "data.proposal")

    def to_wire(self) -> dict[str, Any]:
        return {"proposal": self.proposal}

    @classmethod
    def from_wire(cls, d: Any) -> "Withdraw":
        d = _keys(d, "data", {"proposal"})
        return cls(proposal=d["proposal"])


@dataclass(frozen=True, kw_only=True)
class Recall:
    """Opens a recall vote (one round) on the mandate made by proposal ``mandate``
    (for a draw: the seat of ``holder``)."""

    KIND: ClassVar[str] = "recall"
    mandate: bytes
    holder: bytes
    reason: str

    def __post_init__(self) -> None:
        _b32(self.mandate, "data.mandate")
        _b32(self.holder, "data.holder", KEY_LEN)
        _text(self.reason, "data.reason", MAX_TEXT)

    def to_wire(self) -> dict[str, Any]:
        return {"holder": self.holder, "mandate": self.mandate, "reason": self.reason}

    @classmethod
    def from_wire(cls, d: Any) -> "Recall":
        d = _keys(d, "data", {"mandate", "holder", "reason"})
        return cls(mandate=d["mandate"], holder=d["holder"], reason=d["reason"])


@dataclass(frozen=True, kw_only=True)
class Seal:
    """A teller closes the count of one window (docs/rules.md s.10).

    ``proposal`` is the proposal (or, for ``window`` "recall", the recall
    event); ``heads`` are ids of the body's record the teller's node held when
    sealing: the teller's view of the window is their causal past, united over
    all of the teller's counting seals for the window.
    """

    KIND: ClassVar[str] = "seal"
    proposal: bytes
    window: str
    heads: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _b32(self.proposal, "data.proposal")
        _one_of(self.window, "data.window", SEAL_WINDOWS)
        _ids(self.heads, "data.heads", MAX_SEAL_HEADS, sorted_unique=True)
        if not self.heads:
            raise Rejected("bad_field", "must name at least one event", field="data.heads")

    def to_wire(self) -> dict[str, Any]:
        return {"heads": list(self.heads), "proposal": self.proposal, "window": self.window}

    @classmethod
    def from_wire(cls, d: Any) -> "Seal":
        d = _keys(d, "data", {"proposal", "window", "heads"})
        return cls(
            proposal=d["proposal"], window=d["window"],
            heads=_ids(d["heads"], "data.heads", MAX_SEAL_HEADS, sorted_unique=True),
        )


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How the author is shown in this body (s.11.4): the latest by (ts, id) counts."""

    KIND: ClassVar[str] = "profile"
    name: str

    def __post_init__(self) -> None:
        _text(self.name, "data.name", MAX_PROFILE_NAME)

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_wire(cls, d: Any) -> "Profile":
        d = _keys(d, "data", {"name"})
        return cls(name=d["name"])


@dataclass(frozen=True, kw_only=True)
class Link:
    """From its timestamp, the key ``device`` acts for the author's person (s.11.1)."""

    KIND: ClassVar[str] = "link"
    device: bytes

    def __post_init__(self) -> None:
        _b32(self.device, "data.device", KEY_LEN)

    def to_wire(self) -> dict[str, Any]:
        return {"device": self.device}

    @classmethod
    def from_wire(cls, d: Any) -> "Link":
        d = _keys(d, "data", {"device"})
        return cls(device=d["device"])


@dataclass(frozen=True, kw_only=True)
class Unlink:
    """From its timestamp, the key ``device`` no longer acts for the author's person (s.11.2)."""

    KIND: ClassVar[str] = "unlink"
    device: bytes

    def __post_init__(self) -> None:
        _b32(self.device, "data.device", KEY_LEN)

    def to_wire(self) -> dict[str, Any]:
        return {"device": self.device}

    @classmethod
    def from_wire(cls, d: Any) -> "Unlink":
        d = _keys(d, "data", {"device"})
        return cls(device=d["device"])


Payload = Union[
    Found, Admit, Leave, Part, Propose, Amend, Vote, Stand, Withdraw, Recall, Seal, Profile, Link, Unlink
]
PAYLOADS: dict[str, Callable[[Any], Payload]] = {
    cls.KIND: cls.from_wire
    for cls in (
        Found, Admit, Leave, Part, Propose, Amend, Vote, Stand, Withdraw, Recall,
        Seal, Profile, Link, Unlink,
    )
}


# -- the event ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Event:
    """A validated, signed event. Build with :func:`sign_event` or :func:`decode_event`."""

    author: bytes
    body: bytes | None
    ts: int
    seq: int
    prev: tuple[bytes, ...]
    data: Payload
    sig: bytes
    version: int = FORMAT_VERSION
    raw: bytes = field(default=b"", compare=False, repr=False)
    id: bytes = field(default=b"", compare=False)

    @property
    def kind(self) -> str:
        return self.data.KIND

    @property
    def body_id(self) -> bytes:
        """The body this event belongs to (a ``found`` event belongs to the body it founds)."""
        return self.id if self.body is None else self.body

    @property
    def order_key(self) -> tuple[int, bytes]:
        """``(timestamp, id)``: the order docs/rules.md uses everywhere."""
        return (self.ts, self.id)


def _envelope(
    *, author: bytes, body: bytes | None, ts: int, seq: int, prev: tuple[bytes, ...], data: Payload
) -> dict[str, Any]:
    return {
        "author": author,
        "body": body,
        "data": data.to_wire(),
        "kind": data.KIND,
        "prev": list(prev),
        "seq": seq,
        "ts": ts,
        "v": FORMAT_VERSION,
    }


def _check_header(
    author: Any, body: Any, ts: Any, seq: Any, prev: Any, data: Payload
) -> tuple[bytes, ...]:
    _b32(author, "author", KEY_LEN)
    _int(ts, "ts", 0, MAX_TS)
    _int(seq, "seq", 1, MAX_SEQ)
    prev_t = _ids(prev, "prev", MAX_PREV, sorted_unique=True)
    if isinstance(data, Found):
        if body is not None:
            raise Rejected("bad_field", "a found event names no body", field="body")
        if seq != 1 or prev_t:
            raise Rejected("bad_field", "a found event has seq 1 and no prev", field="seq")
    else:
        _b32(body, "body")
        if not prev_t:
            # Every event but a founding names what it saw of its body: at
            # least the author's previous event, or the body's founding.
            raise Rejected("bad_field", "must name at least one earlier event of the body", field="prev")
    return prev_t


def event_id(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def sign_event(
    key: SigningKey,
    *,
    body: bytes | None,
    ts: int,
    seq: int,
    prev: tuple[bytes, ...] | list[bytes],
    data: Payload,
) -> Event:
    """Sign a new event with ``key``. Raises :class:`Rejected` on a bad field."""
    author = bytes(key.verify_key)
    prev_t = _check_header(author, body, ts, seq, tuple(sorted(set(prev))), data)
    env = _envelope(author=author, body=body, ts=ts, seq=seq, prev=prev_t, data=data)
    sig = key.sign(SIGN_CONTEXT + canonical.pack(env)).signature
    env["sig"] = sig
    raw = canonical.pack(env)
    if len(raw) > MAX_EVENT_BYTES:
        raise Rejected("too_large", f"{len(raw)} bytes, limit is {MAX_EVENT_BYTES}", field="event")
    return Event(
        author=author, body=body, ts=ts, seq=seq, prev=prev_t, data=data, sig=sig,
        raw=raw, id=event_id(raw),
    )


_TOP = {"author", "body", "data", "kind", "prev", "seq", "sig", "ts", "v"}


def decode_event(raw: bytes, *, verify: bool = True) -> Event:
    """Bytes from anywhere to a validated :class:`Event`, or :class:`Rejected`.

    Order: size, msgpack, canonical form, shape, signature.
    """
    # The canonical check is the round trip below (stronger: it covers payloads),
    # and so is the type check: only bytes that re-encode exactly from the
    # validated fields pass, so a float or any other type cannot.
    value = canonical.unpack(raw, max_size=MAX_EVENT_BYTES, check_canonical=False, check_types=False)
    if not isinstance(value, dict):
        raise Rejected("bad_shape", "an event is a map", field="event")
    v = value.get("v")
    if v != FORMAT_VERSION:
        raise Rejected("bad_version", f"format version {v!r} is not supported", field="v")
    missing = _TOP - value.keys()
    if missing:
        raise Rejected("missing_field", f"missing {', '.join(sorted(missing))}", field="event")
    extra = value.keys() - _TOP
    if extra:
        raise Rejected("unknown_field", f"unknown {', '.join(sorted(extra))}", field="event")
    kind = value["kind"]
    parse = PAYLOADS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise Rejected("unknown_kind", f"unknown event kind {kind!r}", field="kind")
    data = parse(value["data"])
    prev = _check_header(value["author"], value["body"], value["ts"], value["seq"], value["prev"], data)
    sig = _b32(value["sig"], "sig", SIG_LEN)
    raw = bytes(raw)
    env = _envelope(
        author=value["author"], body=value["body"], ts=value["ts"], seq=value["seq"],
        prev=prev, data=data,
    )
    # One canonical walk and one pack serve both encodings (docs/performance.md).
    # The envelope's keys are fixed and already in order (its other values were
    # checked above: bytes, ints, a list of ids); only the payload needs the
    # walk. The signed map has 8 entries, the full one 9 (both one-byte
    # fixmap headers), and "sig" sorts between "seq" and "ts": the full
    # encoding is the signed one with the sig entry spliced in before "ts".
    env["data"] = canonical.canonicalize(env["data"])
    signed = canonical.pack_canonical(env)
    cut = len(signed) - _tail_len(env["ts"])
    full = b"\x89" + signed[1:cut] + _SIG_ENTRY + sig + signed[cut:]
    # The payload round trip must give the same bytes: no field may be encoded
    # two ways (e.g. an explicit nil where the canonical form omits the key).
    if full != raw:
        raise Rejected("not_canonical", "payload is not in its canonical form", field="data")
    if verify:
        try:
            VerifyKey(value["author"]).verify(SIGN_CONTEXT + signed, sig)
        except (BadSignatureError, ValueError):
            raise Rejected("bad_signature", "signature does not match the author", field="sig") from None
    # Every field is validated above and Event has no __post_init__: fill the
    # frozen instance directly (the generated __init__ costs ~2 us an event
    # in object.__setattr__ calls; docs/performance.md).
    ev = object.__new__(Event)
    ev.__dict__.update(
        author=value["author"], body=value["body"], ts=value["ts"], seq=value["seq"],
        prev=prev, data=data, sig=sig, version=FORMAT_VERSION, raw=raw, id=event_id(raw),
    )
    return ev


def _stored_admit(d: dict[str, Any]) -> Payload:
    a = object.__new__(Admit)
    a.__dict__["member"] = d["member"]
    return a


def _stored_vote(d: dict[str, Any]) -> Payload:
    v = object.__new__(Vote)
    v.__dict__.update(
        target=d["target"], choice=d["choice"], severity=d.get("severity"),
        category=d.get("category"), delegate=d.get("delegate"),
    )
    return v


# The two kinds that make up almost every record (memberships and votes) are
# filled directly; the others, rare, go through their checked from_wire.
_STORED: dict[str, Callable[[Any], Payload]] = {**PAYLOADS, "admit": _stored_admit, "vote": _stored_vote}


def decode_stored(raw: bytes) -> Event:
    """An event read back from the store: bytes that already passed
    :func:`decode_event` when they were stored (store invariant 1).

    Unpacks and builds the same :class:`Event` as ``decode_event(raw,
    verify=False)`` without checking again what cannot have changed (shape,
    field types, canonical form). Never use it for bytes from anywhere else.
    If the bytes do not even have an event's shape, the full decode says why.
    """
    try:
        value = _unpackb(raw)
        if value["v"] != FORMAT_VERSION:
            return decode_event(raw, verify=False)
        data = _STORED[value["kind"]](value["data"])
        ev = object.__new__(Event)
        ev.__dict__.update(
            author=value["author"], body=value["body"], ts=value["ts"], seq=value["seq"],
            prev=tuple(value["prev"]), data=data, sig=value["sig"], version=FORMAT_VERSION,
            raw=raw, id=hashlib.sha256(raw).digest(),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return decode_event(raw, verify=False)
    return ev


_SIG_ENTRY = b"\xa3sig\xc4\x40"  # fixstr "sig", bin8 of 64 bytes; the signature follows


def _tail_len(ts: int) -> int:
    """Bytes of the entries after "sig" in an event map: "ts" (a uint) and "v": 1."""
    if ts < 0x80:
        n = 1
    elif ts < 0x100:
        n = 2
    elif ts < 0x10000:
        n = 3
    elif ts < 0x100000000:
        n = 5
    else:
        n = 9
    return 3 + n + 3
