"""Which proposals' status changed since the last look, computed cheaply.

:class:`Watcher` owns one store connection and is driven by one task
(app.py's poll loop) in a worker thread, one :meth:`Watcher.tick` at a time:

* the store's data version (:meth:`~imier.store.db.Store.data_version`) tells,
  for nothing, whether any other connection (the CLI, the daemon, the web's
  own writer) committed since the last tick;
* if so, the bodies touched are those of the rows appended since the last
  tick (the events table's rowid only grows) and of the events that left
  the pending set (a pending event is one with ``prev`` edges, rule 6 of
  store/db.py); the proposals to recompute are those of every body whose
  closure holds a touched body (a vote in a town changes its municipality's
  verdict too). The bodies and their closures are read again only when a
  founding or a part event arrives;
* a proposal's status also changes with time alone (a window closes, a
  mandate expires): each document's next such moment is kept, and the
  proposal is recomputed once the clock passes it (at least every
  :data:`RECHECK_MS` while it is undecided).

A proposal counts as changed when its document, ``as_of`` aside, differs.
"""

from __future__ import annotations

import json
from typing import Any

from ..store.db import Store
from . import source

__all__ = ["Watcher", "RECHECK_MS"]

RECHECK_MS = 60_000
_FINAL = frozenset({"carried", "tabled", "rejected", "withdrawn"})
_TIME_KEYS = frozenset({"window", "start", "expires", "ended", "tabled_at"})


def _times(doc: Any, out: list[int]) -> None:
    """Every timestamp in a status document that may mark a change with time."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in _TIME_KEYS:
                if isinstance(v, int):
                    out.append(v)
                elif isinstance(v, list):
                    out.extend(x for x in v if isinstance(x, int))
            else:
                _times(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _times(v, out)


def next_change(doc: dict[str, Any]) -> int | None:
    as_of = int(doc["as_of"])
    ts: list[int] = []
    _times(doc, ts)
    later = [t for t in ts if t > as_of]
    if doc.get("state") not in _FINAL:
        later.append(as_of + RECHECK_MS)
    return min(later) if later else None


def _key(doc: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in doc.items() if k != "as_of"}, sort_keys=True)


class Watcher:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.version: int | None = None
        self.last_n = -1
        self.pending: dict[bytes, bytes] = {}  # pending event id -> body
        self.docs: dict[str, tuple[str, dict[str, Any]]] = {}  # proposal hex -> (key, doc)
        self.due: dict[str, tuple[int, bytes]] = {}  # proposal hex -> (next change, body)
        self.ticks = 0
        self.bodies: list[bytes] = []
        self.names: dict[bytes, str] = {}
        self.closures: dict[bytes, set[bytes]] = {}

    def current(self) -> list[dict[str, Any]]:
        return [d for _, d in self.docs.values()]

    def _touched(self) -> tuple[set[bytes], bool] | None:
        """Bodies with new accepted events since the last look, and whether any of
        them can change which bodies sit under which (a founding, a part, or an event
        leaving the pending set); None: look at everything."""
        store = self.store
        first = self.last_n < 0
        n = store.last_row()
        rows = [] if first else store.bodies_since(self.last_n)
        pending = store.pending_bodies()
        left = {b for eid, b in self.pending.items() if eid not in pending}
        self.last_n = n
        self.pending = pending
        if first:
            return None
        return {b for b, _ in rows} | left, bool(left) or any(s for _, s in rows)

    def _structure(self) -> None:
        """The bodies held, their names and closures (read again only when they may change)."""
        store = self.store
        self.bodies = [b.id for b in store.bodies()]
        self.names = source.body_names(store)
        self.closures = {b: store.closure(b) for b in self.bodies}

    def tick(self, now: int) -> list[dict[str, Any]]:
        """The status documents that changed since the last tick (all of them at the first).

        With nothing committed and no window passed, a tick is one read of the
        store's data version."""
        self.ticks += 1
        try:
            return self._tick(now)
        except BaseException:
            # What was noted as seen may not have been sent: look at everything next time.
            self.version, self.last_n = None, -1
            raise

    def _tick(self, now: int) -> list[dict[str, Any]]:
        store = self.store
        version = store.data_version()
        recompute: set[bytes] = set()
        if version != self.version:
            self.version = version
            seen = self._touched()
            if seen is None or seen[1] or not self.closures:
                self._structure()
            for b in self.bodies:
                if seen is None or self.closures[b] & seen[0]:
                    recompute.add(b)
        for _, (t, body) in list(self.due.items()):
            if t <= now:
                recompute.add(body)
        if not recompute:
            return []
        changed: list[dict[str, Any]] = []
        for body in sorted(recompute):
            for doc in source.status_of_body(store, body, now, self.names):
                pid = doc["id"]
                k = _key(doc)
                old = self.docs.get(pid)
                self.docs[pid] = (k, doc)
                due = next_change(doc)
                if due is None:
                    self.due.pop(pid, None)
                else:
                    self.due[pid] = (due, body)
                if old is None or old[0] != k:
                    changed.append(doc)
        return changed
