"""sync.ratio_max: bytes to reconcile two nodes ÷ (d × mean event size).

Two nodes share a body of ``IMIER_BENCH_SYNC_N`` events (100,000, the cached
ingest data set); one lacks ``d`` of them, chosen at random across the whole
history (the hard case for range reconciliation: no two misses share a
range). The session is the one nodeapp/sync.py runs, frame for frame, with
the real encoders and the pure :class:`~imier.protocol.reconcile.Reconciler`,
wired in memory: hello and offer each way, ``rec`` messages until done,
then the missing events in ``ev`` frames and ``end`` each way. Every byte of
every frame in both directions is counted (4-byte length headers included).

``ratio`` = total bytes ÷ (d × mean event size), for d in
``IMIER_BENCH_SYNC_D`` (1,10,100,1000). Target <= 2 for d >= 10; d = 1 is
the constant cost of a session and reported on its own. Round trips: one
each for hello and offer, plus the reconcile exchange (a message and its
answer), plus one for the events (they flow while the last answer is read).
"""

from __future__ import annotations

import random
from typing import Any

from imier.protocol import syncwire as wire
from imier.protocol.events import decode_event
from imier.protocol.reconcile import Reconciler

from .common import community_history, env_int, load_or_build

__all__ = ["run", "session"]


def session(a_items: list[tuple[int, bytes]], b_items: list[tuple[int, bytes]],
            raw_of: dict[bytes, bytes], bodies: list[bytes]) -> dict[str, Any]:
    """Bytes and messages of one sync session between A and B (in memory)."""
    sent = {"hello": 0, "offer": 0, "rec": 0, "ev": 0, "end": 0}
    msgs = {"rec": 0}
    for _ in "ab":
        sent["hello"] += len(wire.hello("node", bodies, []))
        sent["offer"] += len(wire.offer(bodies))
    a, b = Reconciler(a_items), Reconciler(b_items)
    msg = a.initiate()
    sides = [b, a]
    turn = 0
    while True:
        sent["rec"] += len(wire.rec(msg))
        msgs["rec"] += 1
        reply, _, _ = sides[turn % 2].reconcile(msg)
        if reply is None:
            break
        msg = reply
        turn += 1
        if sides[(turn - 1) % 2].done:
            sent["rec"] += len(wire.rec(msg))
            msgs["rec"] += 1
            break
    for side, items in ((a, a_items), (b, b_items)):
        order = [i for _, i in items if i in side.have]
        batch: list[bytes] = []
        size = 0
        for i in order:
            raw = raw_of[i]
            if batch and (size + len(raw) > wire.EVENT_FRAME_TARGET or len(batch) >= 512):
                sent["ev"] += len(wire.events_frame(batch))
                batch, size = [], 0
            batch.append(raw)
            size += len(raw)
        if batch:
            sent["ev"] += len(wire.events_frame(batch))
        sent["end"] += len(wire.end())
    assert a.have == {i for _, i in a_items} - {i for _, i in b_items}
    assert b.need == a.have and not b.have and not a.need
    return {"bytes": sum(sent.values()), "by_frame": sent, "rec_messages": msgs["rec"],
            "round_trips": 2 + (msgs["rec"] + 1) // 2 + 1, "transferred": len(a.have)}


def run() -> dict[str, Any]:
    n = env_int("IMIER_BENCH_SYNC_N", 100_000)
    ds = [int(x) for x in (__import__("os").environ.get("IMIER_BENCH_SYNC_D") or "1,10,100,1000").split(",")]
    raws = load_or_build(f"community-{n}", lambda: community_history(n))
    evs = [decode_event(r, verify=False) for r in raws]
    mean = sum(map(len, raws)) / len(raws)
    raw_of = {e.id: e.raw for e in evs}
    items = sorted((e.ts, e.id) for e in evs)
    bodies = [evs[0].id]
    rnd = random.Random(6)
    by_d = []
    for d in ds:
        drop = set(rnd.sample(range(len(items)), d))
        b_items = [it for k, it in enumerate(items) if k not in drop]
        s = session(items, b_items, raw_of, bodies)
        ideal = d * mean
        ratio = s["bytes"] / ideal
        row = {"d": d, "bytes": s["bytes"], "ideal_bytes": ideal, "ratio": ratio,
               "overhead_bytes": s["bytes"] - sum(len(raw_of[items[k][1]]) for k in drop),
               "round_trips": s["round_trips"], "rec_messages": s["rec_messages"],
               "by_frame": s["by_frame"]}
        if d > 1:
            row["met"] = ratio <= 2
        by_d.append(row)
    worst = max((x for x in by_d if x["d"] > 1), key=lambda x: x["ratio"], default=by_d[-1])
    d1 = next((x for x in by_d if x["d"] == 1), None)
    return {
        "n": n,
        "mean_event_bytes": mean,
        "by_d": by_d,
        "ratio_max": worst["ratio"],
        "worst_d": worst["d"],
        "target": 2,
        "met": all(x.get("met", True) for x in by_d),
        "d1_constant_bytes": None if d1 is None else d1["overhead_bytes"],
        "round_trips_max": max(x["round_trips"] for x in by_d),
    }
