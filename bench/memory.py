"""memory.rss_mb_per_million and the store's size on disk per event.

A child process imports ``IMIER_BENCH_MEMORY_N`` events (default 1,000,000)
through the real import path, in bundles of 50,000 (one transaction each),
into a fresh on-disk store. Then a *fresh* process, the node, opens that
store and is measured twice from ``/proc/self/status``:

* ``idle``: store open, counts and heads read (what a node holds at rest);
* ``sync``: plus the ``(ts, id)`` snapshot of the body that a sync session
  reconciles over (protocol/reconcile.py keeps it in memory).

Without a daemon measurement the headline ``rss_mb_per_million`` is the
larger (``sync``), scaled to 1M events. Then (``IMIER_BENCH_MEMORY_DAEMON``, default on) a real daemon
is started on a copy of that store and measured at rest and after serving
one sync session to a peer holding the same set (``daemon`` in the JSON);
at N = 1M its RSS at rest is the headline and its peak serving the sync
``rss_mb_per_million_sync_peak``. If N < 1M the figure is extrapolated linearly from the measured
one above a baseline (an empty node), and ``extrapolated`` says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import env_int

__all__ = ["run"]

CHUNK = 50_000


def _status() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024  # MiB
    return out


def _child_import(path: str, n: int) -> dict[str, Any]:
    from imier.store.intake import import_bundle
    from imier.protocol.bundle import write_bundle
    from imier.store.db import Store
    from imier.store.maintenance import checkpoint

    from .common import T0, community_history, load_or_build

    raws = load_or_build(f"community-{n}", lambda: community_history(n))
    store = Store.open(path)
    for i in range(0, len(raws), CHUNK):
        doc = import_bundle(store, write_bundle(raws[i : i + CHUNK]), now_ms=T0 + 10**12,
                            max_skew_ms=300_000)
        assert not doc["rejected"] and not doc["pending"], doc["rejected"][:3]
    checkpoint(store)
    count = store.count(state=1)
    store.close()
    return {"count": count, "mean_event_bytes": sum(map(len, raws)) / len(raws)}


def _child_node(path: str | None) -> dict[str, Any]:
    base = _status()
    from imier.store.db import Store

    if path is None:  # an empty node: the baseline of the interpreter and modules
        tmp = tempfile.mkdtemp(prefix="imier-bench-")
        path = str(Path(tmp) / "empty.sqlite3")
    store = Store.open(path)
    count = store.count()
    bodies = [b.id for b in store.bodies()]
    for b in bodies:
        store.heads(b)
    idle = _status()
    items = store.items(bodies)
    sync = _status()
    assert len(items) == count
    store.close()
    return {"count": count, "start": base, "idle": idle, "sync": sync}


def _daemon(store_path: str, root: Path) -> dict[str, Any]:
    """A real daemon whose store holds the N events: RSS at rest, then during and
    after one sync session with a peer holding the same set (both sides build
    their full ``(ts, id)`` snapshot; the sets are equal, so little is sent)."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.integration.nodes import Node

    from imier.store.db import Store

    st = Store.open(store_path)
    body = st.bodies()[0].id.hex()
    st.close()
    a, b = Node(root, "a"), Node(root, "b")
    for node in (a, b):
        node.init(node.name)
        for suffix in ("", "-wal", "-shm"):
            (node.home / f"store.sqlite3{suffix}").unlink(missing_ok=True)
        shutil.copyfile(store_path, node.home / "store.sqlite3")
        os.chmod(node.home / "store.sqlite3", 0o600)
        node.run("body", "follow", body)
    try:
        a.start("--sync-interval", "3600s", timeout=120)
        assert a.proc is not None
        time.sleep(5)
        idle = _proc_status(a.proc.pid)
        try:
            stats = b.json("sync", a.addr(), "--timeout", "600")
        except AssertionError as exc:  # the serving daemon's side of it, for the report
            raise AssertionError(f"{exc}\n--- a's log (end) ---\n{a.log()[-1500:]}") from None
        time.sleep(1)
        after = _proc_status(a.proc.pid)
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.stop(timeout=30)
        a.kill()
    return {"idle": idle, "after_sync": after, "sync": {k: stats.get(k) for k in
            ("items", "have", "need", "reconcile_bytes", "rounds", "ms")}}


def _proc_status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out


def _spawn(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", *args], check=True, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> dict[str, Any]:
    n = env_int("IMIER_BENCH_MEMORY_N", 1_000_000)
    with tempfile.TemporaryDirectory(prefix="imier-bench-") as tmp:
        path = str(Path(tmp) / "node.sqlite3")
        imp = _spawn("import", path, str(n))
        disk = sum(p.stat().st_size for p in Path(tmp).iterdir())
        node = _spawn("node", path)
        empty = _spawn("node", "-")
        daemon: dict[str, Any] | None = None
        if env_int("IMIER_BENCH_MEMORY_DAEMON", 1):
            try:
                daemon = _daemon(path, Path(tmp) / "daemon")
            except Exception as exc:  # reported, not fatal to the store figures
                daemon = {"error": f"{type(exc).__name__}: {exc}"}
    base = empty["sync"]["VmRSS"]
    scale = 1_000_000 / n
    per_m = {k: base + (node[k]["VmRSS"] - base) * scale for k in ("idle", "sync")}
    out = {
        "n": n,
        "extrapolated": n != 1_000_000,
        "rss_mb_empty_node": base,
        "rss_mb_idle": node["idle"]["VmRSS"],
        "rss_mb_sync_snapshot": node["sync"]["VmRSS"],
        "rss_mb_per_million_idle": per_m["idle"],
        "rss_mb_per_million": per_m["sync"],
        "disk_bytes": disk,
        "disk_bytes_per_event": disk / n,
        "mean_event_bytes": imp["mean_event_bytes"],
        "daemon": daemon,
    }
    # The headline: the daemon itself at rest when it was measured on 1M events
    # (its peak while serving a sync is reported beside it), else the store process.
    out["rss_mb_per_million_store_process"] = per_m["sync"]
    if daemon and "error" not in daemon and n == 1_000_000:
        out["rss_mb_per_million"] = daemon["idle"]["VmRSS"]
        out["rss_mb_per_million_sync_peak"] = daemon["after_sync"]["VmHWM"]
        out["headline"] = "daemon at rest"
    else:
        out["headline"] = "store process with a sync snapshot"
    return out


if __name__ == "__main__":
    if sys.argv[1] == "import":
        print(json.dumps(_child_import(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(_child_node(None if sys.argv[2] == "-" else sys.argv[2])))
