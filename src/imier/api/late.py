"""Late arrivals on this node (docs/rules.md s.10.6): events that count in a closed,
unsealed window but reached this node after that window closed.

Every node records when each event reached it (``arrived_ms``, the node's own
clock). That time never changes a verdict: the tally is the same on every
node. It only lets ``imier status`` warn, here, that a count which looks
closed was changed by something that came in late, and that it could change
again because nobody sealed the window.

An event *counts in* a window when:

* a vote window (``r1``, ``r2``, ``r3``): it is one of the round's counted
  votes (:attr:`~imier.consensus.RoundResult.votes`);
* an amendment window (``a2``, ``a3``): it is one of the round's amendments,
  or a vote on one of them timestamped in the window and not ignored;
* contention (``c``): a standing timestamped in the window (up to the moment
  it was tabled) and not ignored;
* a recall's vote (``recall``): a vote on the recall timestamped in its
  window and not ignored.

Sealed windows need no warning: in them an event that reached the tellers
after the close does not count (s.10.3). Nor does a window that closed before
the proposal itself reached this node: the node never saw that count close,
and a node that fetched an old record would otherwise warn about all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ..protocol.events import Amend, Event, Stand, Vote

if TYPE_CHECKING:
    from ..consensus import ProposalResult
    from ..consensus.result import SealInfo
    from ..store.db import Store

__all__ = ["Late", "LateGroup", "group", "late_events", "late_for", "late_groups", "window_words"]


@dataclass(frozen=True, kw_only=True, slots=True)  # slots: 100,000 of them on a node that joined late
class Late:
    """One event that counts in closed, unsealed window ``window`` of ``proposal`` but
    reached this node ``arrived - close`` ms after the window closed."""

    id: bytes
    author: bytes
    kind: str  # "vote", "amend", "amendment vote", "stand", "recall vote"
    target: bytes  # what the event is aimed at: the proposal, an amendment or a recall
    window: str  # r1, a2, r2, a3, r3, c or recall
    close: int  # when the window closed (ms, author time)
    ts: int  # the event's own timestamp (inside the window)
    arrived: int  # when it reached this node (ms, this node's clock)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id.hex(), "author": self.author.hex(), "kind": self.kind,
                "target": self.target.hex(), "window": self.window, "closed": self.close,
                "ts": self.ts, "arrived_ms": self.arrived, "late_by_ms": self.arrived - self.close}

    def text(self, who: Callable[[bytes], str]) -> str:
        """``ana's vote reached this node 1 hour after round 1 closed; it counts because
        the window is unsealed``"""
        what = {"amendment vote": f"vote on amendment {self.target.hex()[:8]}",
                "recall vote": f"vote on recall {self.target.hex()[:8]}",
                "stand": "standing"}.get(self.kind, self.kind)
        return (f"{who(self.author)}'s {what} reached this node {span(self.arrived - self.close)} "
                f"after {window_words(self.window)} closed; it counts because the window is unsealed")


def window_words(name: str) -> str:
    """``r1`` -> ``round 1``, ``a2`` -> ``the round 2 amendment window``..."""
    if name.startswith("r") and name[1:].isdigit():
        return f"round {name[1:]}"
    if name.startswith("a") and name[1:].isdigit():
        return f"the round {name[1:]} amendment window"
    return {"c": "contention", "recall": "the recall vote"}.get(name, name)


def span(ms: int) -> str:
    """A duration for people, cut (never rounded up) to its largest unit."""
    s = max(ms, 0) // 1000
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if s >= size:
            k = s // size
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return f"{max(ms, 0)} ms"


def _unsealed(seal: "SealInfo | None") -> bool:
    return seal is not None and not seal.sealed


def _windows_closes(res: "ProposalResult") -> list[int]:
    """The closes of the result's closed, unsealed windows."""
    out: list[int] = []
    for r in res.rounds:
        if _unsealed(r.seal):
            out.append(r.vote_window.end)
        if _unsealed(r.amend_seal) and r.amend_window is not None:
            out.append(r.amend_window.end)
    if _unsealed(res.contention_seal) and res.contention_window is not None:
        out.append(res.contention_window.end)
    out += [rc.window.end for rc in res.recalls if _unsealed(rc.seal)]
    return out


def targets(res: "ProposalResult") -> list[bytes]:
    """What the events of the result's windows are aimed at: the proposal, its amendments
    and its recalls."""
    return [res.id, *(a.id for r in res.rounds for a in r.amendments), *(rc.id for rc in res.recalls)]


def late_events(res: "ProposalResult", arrived: Iterable[tuple[Event, int]],
                held_from: int | None = None) -> list[Late]:
    """The events among ``arrived`` (``(event, arrived_ms)`` on this node) that count in a
    closed, unsealed window of ``res`` and arrived after its close; pure (no clock, no I/O).

    ``held_from``: when the proposal reached this node. A window that closed before then
    warns of nothing: this node never saw it close, so what came after is no news (a node
    that fetched an old record would otherwise warn about every vote in it)."""
    ignored = {i.id for i in res.ignored}
    out: list[Late] = []

    def add(ev: Event, at: int, kind: str, window: str, close: int) -> None:
        if at > close and (held_from is None or held_from <= close):
            out.append(Late(id=ev.id, author=ev.author, kind=kind, target=_target(ev), window=window,
                            close=close, ts=ev.ts, arrived=at))

    got = list(arrived)
    for r in res.rounds:
        if _unsealed(r.seal):
            counted = set(r.votes)
            for ev, at in got:
                if ev.id in counted:
                    add(ev, at, "vote", f"r{r.round}", r.vote_window.end)
        aw = r.amend_window
        if _unsealed(r.amend_seal) and aw is not None:
            mine = {a.id for a in r.amendments}
            for ev, at in got:
                if ev.id in mine and isinstance(ev.data, Amend):
                    add(ev, at, "amend", f"a{r.round}", aw.end)
                elif isinstance(ev.data, Vote) and ev.data.target in mine and aw.contains(ev.ts) \
                        and ev.id not in ignored:
                    add(ev, at, "amendment vote", f"a{r.round}", aw.end)
    cw, c = res.contention_window, res.contention
    if _unsealed(res.contention_seal) and cw is not None:
        until = cw.end if c is None or c.tabled_at is None else c.tabled_at + 1
        for ev, at in got:
            if isinstance(ev.data, Stand) and ev.data.proposal == res.id and cw.start <= ev.ts < until \
                    and ev.id not in ignored:
                add(ev, at, "stand", "c", cw.end)
    for rc in res.recalls:
        if _unsealed(rc.seal):
            for ev, at in got:
                if isinstance(ev.data, Vote) and ev.data.target == rc.id and rc.window.contains(ev.ts) \
                        and ev.id not in ignored:
                    add(ev, at, "recall vote", "recall", rc.window.end)
    out.sort(key=lambda x: (x.close, x.arrived, x.id))
    return out


def _target(ev: Event) -> bytes:
    d = ev.data
    if isinstance(d, Vote):
        return d.target
    if isinstance(d, (Amend, Stand)):
        return d.proposal
    return ev.id


def _since(store: "Store", res: "ProposalResult") -> tuple[int, int] | None:
    """``(held_from, after)``: when the proposal reached this node, and the first close
    of a closed, unsealed window this node saw close; None when there is none."""
    held_from = store.arrived_ms(res.id)
    if held_from is None:
        return None
    closes = [c for c in _windows_closes(res) if held_from <= c]
    return (held_from, min(closes)) if closes else None


# A counted vote told from its columns: (window, id, author, target, ts, arrived, close).
VoteRow = Callable[[str, bytes, bytes, bytes, int, int, int], None]


def _scan(res: "ProposalResult", after: int, store: "Store", held_from: int, vote: VoteRow) -> list[Late]:
    """Every late arrival of ``res`` among the rows that arrived after ``after``: a counted
    vote of an unsealed round is handed to ``vote`` from its columns, undecoded (a record
    that reached this node long after its windows closed has every vote late: 100,000 of
    them in the municipality); the other events are decoded and returned by
    :func:`late_events`."""
    from ..protocol.events import decode_stored
    from ..store.index import arrived_rows

    counted = {vid: r for r in res.rounds if _unsealed(r.seal) for vid in r.votes}
    others: dict[bytes, int] = {}
    for eid, author, kind, target, ts, arrived in arrived_rows(store.conn, targets(res), after):
        r = counted.get(eid)
        if kind == "vote" and r is not None:
            close = r.vote_window.end
            if arrived > close and held_from <= close:
                vote(f"r{r.round}", eid, author, target, ts, arrived, close)
        else:
            others[eid] = arrived
    rest = [(e, others[e.id]) for e in map(decode_stored, store.raw_many(list(others)))]
    return late_events(res, rest, held_from)


def late_for(store: "Store", res: "ProposalResult") -> list[Late]:
    """:func:`late_events` of ``res`` over what reached this node: reads only the events
    aimed at the proposal (and its amendments and recalls) that arrived after the first
    close of a closed, unsealed window this node saw close; nothing when there is none."""
    since = _since(store, res)
    return [] if since is None else _late_from_rows(res, since[1], store, since[0])


def _late_from_rows(res: "ProposalResult", after: int, store: "Store", held_from: int) -> list[Late]:
    """:func:`_scan` as a list of :class:`Late`, in ``(close, arrived, id)`` order."""
    quick: list[Late] = []
    shared: dict[bytes, bytes] = {}  # one bytes object per target, however many votes name it

    def vote(window: str, eid: bytes, author: bytes, target: bytes, ts: int, arrived: int, close: int) -> None:
        quick.append(Late(id=eid, author=author, kind="vote", target=shared.setdefault(target, target),
                          window=window, close=close, ts=ts, arrived=arrived))

    out = quick + _scan(res, after, store, held_from, vote)
    out.sort(key=lambda x: (x.close, x.arrived, x.id))
    return out


class LateGroup:
    """The late events of one window and kind, summed up as ``imier status`` tells them:
    the count, the longest delay, the authors, and the first few events in ``(close,
    arrived, id)`` order (told one by one when there are that few)."""

    FIRST = 4  # more than render.LATE_EACH_AT_MOST, so a group knows whether it is few

    __slots__ = ("window", "kind", "count", "longest", "authors", "first")

    def __init__(self, window: str, kind: str) -> None:
        self.window, self.kind = window, kind
        self.count, self.longest = 0, 0
        self.authors: set[bytes] = set()
        self.first: list[tuple[tuple[int, int, bytes], Late | tuple[bytes, bytes, bytes, int]]] = []

    def _note(self, author: bytes, close: int, arrived: int, eid: bytes,
              item: "Late | tuple[bytes, bytes, bytes, int]") -> None:
        self.count += 1
        self.longest = max(self.longest, arrived - close) if self.count > 1 else arrived - close
        self.authors.add(author)
        key = (close, arrived, eid)
        first = self.first
        if len(first) < self.FIRST or key < first[-1][0]:
            first.append((key, item))
            first.sort(key=lambda x: x[0])
            del first[self.FIRST:]

    def add(self, x: Late) -> None:
        self._note(x.author, x.close, x.arrived, x.id, x)

    def add_row(self, eid: bytes, author: bytes, target: bytes, ts: int, arrived: int, close: int) -> None:
        """A counted vote told from its columns: no :class:`Late` is built unless it is
        among the first few."""
        self._note(author, close, arrived, eid, (author, target, eid, ts))

    def events(self) -> list[Late]:
        """The first few, as :class:`Late` entries, in order."""
        out = []
        for (close, arrived, eid), item in self.first:
            if isinstance(item, Late):
                out.append(item)
            else:
                author, target, _, ts = item
                out.append(Late(id=eid, author=author, kind=self.kind, target=target, window=self.window,
                                close=close, ts=ts, arrived=arrived))
        return out

    @property
    def start(self) -> tuple[int, int, bytes]:
        return self.first[0][0]


def group(items: Iterable[Late], groups: dict[tuple[str, str], LateGroup] | None = None) -> list[LateGroup]:
    """``items`` by window and kind (added to ``groups``), the groups in the order of their
    first event."""
    groups = {} if groups is None else groups
    for x in items:
        g = groups.get((x.window, x.kind))
        if g is None:
            g = groups[(x.window, x.kind)] = LateGroup(x.window, x.kind)
        g.add(x)
    return sorted(groups.values(), key=lambda g: g.start)


def late_groups(store: "Store", res: "ProposalResult") -> list[LateGroup]:
    """:func:`group` of :func:`late_for`, streamed: a counted vote of an unsealed round is
    summed from its columns without building or sorting an entry for it (the text of
    ``imier status`` needs the counts and the first few; ``--json`` lists each one)."""
    since = _since(store, res)
    if since is None:
        return []
    groups: dict[tuple[str, str], LateGroup] = {}

    def vote(window: str, eid: bytes, author: bytes, target: bytes, ts: int, arrived: int, close: int) -> None:
        g = groups.get((window, "vote"))
        if g is None:
            g = groups[(window, "vote")] = LateGroup(window, "vote")
        g.add_row(eid, author, target, ts, arrived, close)

    return group(_scan(res, since[1], store, since[0], vote), groups)


def late_json(items: Sequence[Late]) -> list[dict[str, Any]]:
    return [x.to_json() for x in items]
