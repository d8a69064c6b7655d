"""Making a new local event: choose ``seq`` and ``prev``, sign and store, as one atomic step.

docs/rules.md s.8: ``prev`` holds the newest events of the body this node
holds (its heads, at most 8, sorted) and always the author's own previous
event in the body. s.9.4: choosing ``seq`` and ``prev``, signing and storing
happen in one write transaction (``BEGIN IMMEDIATE`` takes SQLite's write
lock before ``seq`` is read), so one person's concurrent commands, in any
number of processes, never fork their chain; and the node never signs over
an event timestamped after its own clock (such heads are left out of
``prev``; if the author's own previous event is in the future, the node
refuses, since it cannot sign after it without stamping in the future).
The event is stamped with the node's clock, so it never lands in a window
it was not meant for; ``window`` makes that a refusal instead of a surprise.
"""

from __future__ import annotations

from typing import Callable, Protocol, Union

from nacl.signing import SigningKey

from ..protocol.errors import LocalError, Rejected
from ..protocol.events import Event, Found, Payload, sign_event
from ..protocol.limits import MAX_PREV
from .causality import ACCEPTED
from .db import Store

__all__ = ["author", "author_event", "choose_prev", "WindowLike"]


class _Contains(Protocol):
    def contains(self, ts: int) -> bool: ...


# ``(start, end)`` in ms (start <= ts < end), or anything with ``contains(ts)``.
WindowLike = Union[tuple[int, int], _Contains]


def _in_window(window: WindowLike, ts: int) -> bool:
    if isinstance(window, tuple):
        return window[0] <= ts < window[1]
    return bool(window.contains(ts))


def _describe(window: WindowLike) -> str:
    if isinstance(window, tuple):
        return f"[{window[0]}, {window[1]})"
    return str(window)


def choose_prev(
    store: Store, body: bytes, author: bytes, now_ms: int | None = None
) -> tuple[int, list[bytes], int]:
    """``(seq, prev, min_ts)`` for the author's next event in ``body``.

    With ``now_ms`` (the node's clock), heads timestamped after it are left out
    (their own older events are not reachable through them, so the newest
    accepted events at or before ``now_ms`` stand in when no head qualifies),
    and an own previous event after it is refused with the reason.
    """
    last = store.last_own(body, author)
    prev: list[bytes] = []
    min_ts = 0
    if last is not None:
        if now_ms is not None and last[2] > now_ms:
            raise Rejected(
                "future_own_event",
                f"this person's previous event in the body is timestamped {last[2] - now_ms} ms "
                "after this node's clock; an event signed now would be earlier than it",
                field="prev", hint="check this node's clock, or wait until that time has passed",
            )
        seq = last[0] + 1
        prev.append(last[1])
        min_ts = last[2]
    else:
        seq = 1
    heads = store.heads(body)
    if now_ms is not None:
        fresh = [(ts, hid) for ts, hid in heads if ts <= now_ms]
        if len(fresh) < len(heads) and not fresh and not prev:
            fresh = store.recent(body, at_or_before=now_ms, limit=MAX_PREV)
        heads = fresh
    for ts, hid in heads:
        if len(prev) >= MAX_PREV:
            break
        if hid not in prev:
            prev.append(hid)
            min_ts = max(min_ts, ts)
    if not prev:
        raise LocalError("this node holds nothing of that body yet", hint="sync or import its record first")
    return seq, sorted(prev), min_ts


def author(
    store: Store,
    key: SigningKey,
    body: bytes | None,
    make_payload: Payload | Callable[[], Payload],
    now_ms: int | Callable[[], int],
    *,
    window: WindowLike | None = None,
    local: bool = True,
) -> Event:
    """Sign the next event of ``key`` in ``body`` at ``now_ms`` and store it, atomically.

    ``now_ms`` is the node's clock, or the clock itself: a callable is read inside
    the write transaction, after the lock is taken, so a concurrent command of the
    same person that wrote first can never look like an event from the future
    (rules s.9.4). ``make_payload`` is the payload, or a function making it (called inside the
    transaction, so it sees the store as the event will). ``window``: refuse
    (``Rejected``, code ``outside_window``, field ``ts``) unless the stamped
    timestamp falls inside it. Nothing is written on any refusal.
    """
    with store.atomic():
        now = now_ms() if callable(now_ms) else now_ms
        data = make_payload() if callable(make_payload) else make_payload
        if isinstance(data, Found):
            ts = now
            _check_window(window, ts)
            ev = sign_event(key, body=None, ts=ts, seq=1, prev=[], data=data)
        else:
            if body is None:
                raise LocalError("only a founding event has no body")
            if store.state(body) != ACCEPTED:
                raise LocalError("this node does not hold that body", hint="check the id, or sync first")
            seq, prev, min_ts = choose_prev(store, body, bytes(key.verify_key), now)
            ts = max(now, min_ts)
            _check_window(window, ts)
            ev = sign_event(key, body=body, ts=ts, seq=seq, prev=prev, data=data)
        res = store.ingest([ev], local=local, now_ms=None, source="local")
        if res.refusals:
            r = res.refusals[0]
            raise Rejected(r.code, f"the store refused the new event: {r.message}", field=r.field)
        if ev.id not in res.accepted and ev.id not in res.held:
            raise LocalError("the new event could not be accepted (its history is incomplete)")
    return ev


def _check_window(window: WindowLike | None, ts: int) -> None:
    if window is not None and not _in_window(window, ts):
        raise Rejected(
            "outside_window",
            f"the event would be stamped {ts}, outside the window it is meant for {_describe(window)}",
            field="ts", hint="nothing was written; check the phase with 'imier status'",
        )


def author_event(
    store: Store, key: SigningKey, *, body: bytes | None, data: Payload, ts: int | Callable[[], int],
    local: bool = True,
    window: WindowLike | None = None,
) -> Event:
    """:func:`author` with the payload given and ``ts`` the node's clock (older signature).

    Raises :class:`LocalError` or :class:`Rejected` if the event is not stored
    (nothing is written then).
    """
    return author(store, key, body, data, ts, window=window, local=local)
