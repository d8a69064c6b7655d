"""gossip.heartbeats: publish to the last node's ingest, with real daemons on loopback.

``IMIER_BENCH_GOSSIP_NODES`` (10) daemons, each its own process and home,
on 127.0.0.1. Node 0 founds a body and admits one person of every other
node, which follows it (an admission from elsewhere is only an invitation);
node ``i`` bootstraps to nodes ``i - 1`` and ``(i - 1) // 2`` (a sparse
graph, so messages take several hops). Once every node holds the
body and the meshes have formed, ``IMIER_BENCH_GOSSIP_PUBLISHES`` (5)
proposals are made in turn on the farthest nodes with ``imier propose`` (the
CLI writes the store and the outbox and wakes the daemon, which publishes).
For each, the latency is from the moment the event is in the source's store
to the moment the last other node's store holds it (stores polled every
5-10 ms, read-only).

The figure is that latency in GossipSub heartbeats (the daemon's router
heartbeat, ``nodeapp/quirks.py``: 1 s). Delivery is by whichever path is
first: the daemons also reconcile with their peers 0.3-1 s after new
events, so the logs are read to count how many deliveries came by gossip.
Periodic sync is set to an hour so it plays no part.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import env_int

__all__ = ["run", "HEARTBEAT_S"]

HEARTBEAT_S = 1.0  # nodeapp/quirks.py: heartbeat_interval=1


def run() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.integration.nodes import Node, wait_until

    n = env_int("IMIER_BENCH_GOSSIP_NODES", 10)
    pubs = env_int("IMIER_BENCH_GOSSIP_PUBLISHES", 5)
    t0 = (int(time.time() * 1000) // 1000) * 1000 - 3600_000
    with tempfile.TemporaryDirectory(prefix="imier-bench-gossip-") as tmp:
        root = Path(tmp)
        nodes = [Node(root, f"n{i}") for i in range(n)]
        keys = [node.init(f"p{i}") for i, node in enumerate(nodes)]
        body = nodes[0].run("body", "found", "community", "Bench", IMIER_NOW=str(t0)).stdout.strip()
        for i, k in enumerate(keys[1:], start=1):
            nodes[0].run("member", "admit", "Bench", k, IMIER_NOW=str(t0 + i))
            # an admission learnt from a peer is an invitation (docs/decisions.md 45): accept it
            nodes[i].run("body", "follow", body)
        try:
            nodes[0].start("--sync-interval", "3600s")
            for i in range(1, n):
                boots = {nodes[i - 1].addr(), nodes[(i - 1) // 2].addr()}
                args: list[str] = ["--sync-interval", "3600s"]
                for b in sorted(boots):
                    args += ["--bootstrap", b]
                nodes[i].start(*args)
            bid = bytes.fromhex(body)
            wait_until(lambda: all(bid in nd.event_ids() for nd in nodes), 120, "every node to hold the body")
            time.sleep(5 * HEARTBEAT_S)  # let the meshes form
            lat: list[float] = []
            offsets = {nd.name: nd.log_path.stat().st_size for nd in nodes}  # count publishes only
            for k in range(pubs):
                src = nodes[n - 1 - (k % max(1, n // 2))]
                before = {nd.name: nd.event_ids() for nd in nodes}
                proc = subprocess.Popen(
                    [sys.executable, "-m", "imier.cli.main", "propose", "Bench", "--title", f"P{k}",
                     "--text", "bench"], env=src.env(IMIER_NOW=str(t0 + 1000 * (k + 1) + 100)),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                # The write: the first new event in the source's store.
                deadline = time.monotonic() + 60
                new: set[bytes] = set()
                while not new and time.monotonic() < deadline:
                    new = src.event_ids() - before[src.name]
                    if not new:
                        time.sleep(0.005)
                t = time.monotonic()
                proc.wait(timeout=60)
                (want,) = new
                left = [nd for nd in nodes if nd is not src]
                while left and time.monotonic() < deadline:
                    left = [nd for nd in left if want not in nd.event_ids()]
                    if left:
                        time.sleep(0.01)
                if left:
                    raise AssertionError(f"publish {k}: {len(left)} nodes never got it")
                lat.append(time.monotonic() - t)
                time.sleep(2 * HEARTBEAT_S)
            logs = "".join(nd.log_path.read_bytes()[offsets[nd.name]:].decode(errors="replace") for nd in nodes)
        finally:
            for nd in nodes:
                try:
                    if nd.proc is not None and nd.proc.poll() is None:
                        nd.stop()
                finally:
                    nd.kill()
    by_gossip = sum(int(m) for m in re.findall(r"gossip from .*?: (\d+) new events", logs))
    by_sync = sum(int(m) for m in re.findall(r"sync from .*?: (\d+) new events", logs))
    worst = max(lat)
    return {
        "nodes": n,
        "publishes": pubs,
        "latencies_s": lat,
        "latency_s": statistics.median(lat),
        "latency_max_s": worst,
        "heartbeat_s": HEARTBEAT_S,
        "heartbeats": statistics.median(lat) / HEARTBEAT_S,
        "heartbeats_max": worst / HEARTBEAT_S,
        "deliveries_by_gossip": by_gossip,
        "deliveries_by_sync": by_sync,
    }
