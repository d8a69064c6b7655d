"""Making a new local event: choose ``seq`` and ``prev`` from the store, sign, ingest.

DECISIONS.md s.8: ``prev`` holds the newest events of the body this node
holds (its heads, at most 8, sorted) and always the author's own previous
event in the body. The timestamp is never earlier than any event in
``prev`` (a node whose clock lags its peers signs at the newest time it has
seen, so its event stays valid).
"""

from __future__ import annotations

from nacl.signing import SigningKey

from ..protocol.errors import LocalError
from ..protocol.events import Event, Found, Payload, sign_event
from ..protocol.limits import MAX_PREV
from .db import Store

__all__ = ["author_event", "choose_prev"]


def choose_prev(store: Store, body: bytes, author: bytes) -> tuple[int, list[bytes], int]:
    """``(seq, prev, min_ts)`` for the author's next event in ``body``."""
    last = store.last_own(body, author)
    heads = store.heads(body)
    prev: list[bytes] = []
    min_ts = 0
    if last is not None:
        seq = last[0] + 1
        prev.append(last[1])
        min_ts = last[2]
    else:
        seq = 1
    for ts, hid in heads:
        if len(prev) >= MAX_PREV:
            break
        if hid not in prev:
            prev.append(hid)
            min_ts = max(min_ts, ts)
    if not prev:
        raise LocalError("this node holds nothing of that body yet", hint="sync or import its record first")
    return seq, sorted(prev), min_ts


def author_event(
    store: Store, key: SigningKey, *, body: bytes | None, data: Payload, ts: int, local: bool = True
) -> Event:
    """Sign ``data`` as the next event of ``key`` in ``body`` and ingest it.

    Raises :class:`LocalError` if the store does not accept it (nothing is written then).
    """
    if isinstance(data, Found):
        ev = sign_event(key, body=None, ts=ts, seq=1, prev=[], data=data)
    else:
        assert body is not None
        if store.state(body) != 1:
            raise LocalError("this node does not hold that body", hint="check the id, or sync first")
        seq, prev, min_ts = choose_prev(store, body, bytes(key.verify_key))
        ev = sign_event(key, body=body, ts=max(ts, min_ts), seq=seq, prev=prev, data=data)
    res = store.ingest([ev], local=local)
    if res.rejected:
        raise LocalError(f"the store refused the new event: {res.rejected[0][1]}")
    if ev.id not in res.accepted and ev.id not in res.held:
        raise LocalError("the new event could not be accepted (its history is incomplete)")
    return ev
