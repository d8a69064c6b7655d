"""autoseal.ratio: one pass of the daemon's teller loop ÷ a plain `imier status`.

Data: the sealed municipality of bench/tally.py (``IMIER_BENCH_TALLY_COMMUNITIES``
x ``IMIER_BENCH_TALLY_MEMBERS``, default 100 x 1000: consent, three tellers drawn
by lot, 100,000 round-1 votes, round 1 sealed by all three) in an on-disk store.

* ``pass_s``: :func:`imier.nodeapp.autoseal.due_seals` for the three tellers'
  keys, three minutes after round 1 closed (its seals are in: nothing is due),
  the store's kept results warm, as the daemon runs it every few seconds.
* ``status_s``: :func:`imier.api.read.status` of the proposal at the same time,
  kept result warm (what `imier status P` costs).
* ``first_s``: the first pass on a cold store (kept results computed).
* ``ratio`` = pass_s ÷ status_s. Target <= 3 (a pass is a status of the body's
  proposals, not a tally of the whole record).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from imier.protocol.events import Seal
from imier.store.db import Store

from .common import best_of, env_int
from .tally import DAY, sealed_municipality

__all__ = ["run"]


def run() -> dict[str, Any]:
    from imier.api import read
    from imier.nodeapp.autoseal import SEAL_DELAY_MS, due_seals

    communities = env_int("IMIER_BENCH_TALLY_COMMUNITIES", 100)
    members = env_int("IMIER_BENCH_TALLY_MEMBERS", 1000)
    runs = env_int("IMIER_BENCH_RUNS", 3)
    evs, prop = sealed_municipality(communities, members)
    tellers = sorted({e.author for e in evs if isinstance(e.data, Seal)})
    close = prop.ts + 5 * DAY
    now = close + SEAL_DELAY_MS + 60_000
    with tempfile.TemporaryDirectory(prefix="imier-bench-") as tmp:
        store = Store.open(Path(tmp) / "autoseal.sqlite3")
        for i in range(0, len(evs), 50_000):
            assert not store.ingest(evs[i : i + 50_000]).rejected
        t = time.perf_counter()
        first = due_seals(store, tellers, now)
        first_s = time.perf_counter() - t
        pass_s, due = best_of(runs, lambda: due_seals(store, tellers, now))
        status_s, res = best_of(runs, lambda: read.status(store, prop.id, now))
        store.close()
    assert first == due == [], due
    seal = res.rounds[0].seal
    assert seal is not None and seal.sealed
    return {
        "communities": communities, "members": members, "events": len(evs),
        "first_s": first_s, "pass_s": pass_s, "status_s": status_s,
        "ratio": pass_s / status_s, "target": 3, "met": pass_s / status_s <= 3,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
