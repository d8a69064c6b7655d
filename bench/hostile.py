"""hostile.*: what attackers on the wire cost a node, each against the same work without them.

One victim daemon on 127.0.0.1 holds a community of ``IMIER_BENCH_HOSTILE_EVENTS``
(30,000) events; a good peer (its own home, no daemon) holds all but
``IMIER_BENCH_HOSTILE_DIFF`` (200) of them and runs ``imier sync VICTIM`` from a
copy of the same store each time. The attackers are raw py-libp2p hosts in
their own processes (tests/integration/hostile_peer.py).

* ``hostile.stranger_bytes_per_min``: bytes added to the victim's store per
  minute while a stranger offers bodies the victim does not hold and sends
  their events (30 KB each, fresh peer ids every session), for
  ``IMIER_BENCH_HOSTILE_SECONDS`` (8) seconds. Target 0.
* ``hostile.slowloris_ratio``: the good peer's session time (its ``ms``,
  median of 3) while 16 peer ids hold 3 streams each (48, each peer id
  within its limit of 4), sending hellos a byte every 2 s, over the same sync with no attacker. Target <= 2.
* ``hostile.replay_ratio``: the same while 3 peers replay a 30 KB sketch every
  round, session after session, each taking a new peer id whenever refused.
  Target <= 2.

A sync that fails under attack counts as the attack's deadline (60 s) so the
ratio shows it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import env_int

__all__ = ["run"]

TRIALS = 3
FAILED_MS = 60_000


def _stored_bytes(home: Path) -> int:
    con = sqlite3.connect(f"file:{home / 'store.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return int(con.execute("SELECT coalesce(sum(length(raw)), 0) FROM events").fetchone()[0])
    finally:
        con.close()


def run() -> dict[str, Any]:
    root_dir = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root_dir))
    from tests.integration.nodes import Node
    from tests.integration.test_sync_wire import _fill, _history

    attacker = root_dir / "tests" / "integration" / "hostile_peer.py"
    n = env_int("IMIER_BENCH_HOSTILE_EVENTS", 30_000)  # _history: more would reach into the future
    d = env_int("IMIER_BENCH_HOSTILE_DIFF", 200)
    seconds = env_int("IMIER_BENCH_HOSTILE_SECONDS", 8)
    out: dict[str, Any] = {"events": n, "diff": d, "attack_s": seconds}
    with tempfile.TemporaryDirectory(prefix="imier-bench-hostile-") as tmp:
        root = Path(tmp)
        a, b = Node(root, "victim"), Node(root, "good")
        a.init("ana")
        b.init("ben")
        body, evs, _, _ = _history(n, 0, 0)
        _fill(a, body, evs)
        _fill(b, body, evs[: n + 1 - d])
        template = root / "good-store.sqlite3"
        shutil.copyfile(b.home / "store.sqlite3", template)

        def good_sync() -> int:
            for suffix in ("-wal", "-shm"):
                p = b.home / f"store.sqlite3{suffix}"
                if p.exists():
                    p.unlink()
            shutil.copyfile(template, b.home / "store.sqlite3")
            r = b.run("sync", a.addr(), "--json", ok=False, timeout=90)
            if r.returncode != 0:
                return FAILED_MS
            stats = json.loads(r.stdout)
            assert stats["new"] == d, stats
            return int(stats["ms"])

        def attack(mode: str, *args: str) -> subprocess.Popen[str]:
            return subprocess.Popen([sys.executable, str(attacker), mode, a.addr(), *args],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=a.env())

        def finish(p: subprocess.Popen[str]) -> dict[str, Any]:
            try:
                so, _ = p.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                so, _ = p.communicate(timeout=10)
            try:
                return json.loads(so.strip().splitlines()[-1])  # type: ignore[no-any-return]
            except (IndexError, json.JSONDecodeError):
                return {"error": "no report"}

        try:
            a.start("--sync-interval", "3600s", "--no-gossip")
            good_sync()  # the good peer is a known neighbour (and warms the caches)
            base = [good_sync() for _ in range(TRIALS)]
            out["baseline_ms"] = statistics.median(base)

            before = _stored_bytes(a.home)
            t0 = time.monotonic()
            junk = finish(attack("junk", "--seconds", str(seconds), "--bodies", "10", "--per-body", "20"))
            took = time.monotonic() - t0
            added = _stored_bytes(a.home) - before
            out["stranger_bytes_per_min"] = added * 60 / took
            out["stranger_sent_bytes_per_min"] = junk.get("sent_bytes", 0) * 60 / took
            out["junk"] = junk

            slow = attack("slowloris", "--seconds", str(seconds + 30), "--streams", "3", "--identities", "16")
            time.sleep(3)
            under = [good_sync() for _ in range(TRIALS)]
            slow.kill()
            out["slowloris"] = finish(slow)
            out["slowloris_ms"] = statistics.median(under)
            out["slowloris_ratio"] = out["slowloris_ms"] / max(1, out["baseline_ms"])

            rep = attack("replay", "--seconds", str(seconds + 30), "--body", body.hex(), "--rotate",
                         "--identities", "3")
            time.sleep(3)
            under = [good_sync() for _ in range(TRIALS)]
            rep.kill()
            out["replay"] = finish(rep)
            out["replay_ms"] = statistics.median(under)
            out["replay_ratio"] = out["replay_ms"] / max(1, out["baseline_ms"])
            peers = a.json("peers")
            out["victim_offences"] = sorted({o["code"] for p in peers["peers"] for o in p["recent_offences"]})
        finally:
            if a.proc is not None and a.proc.poll() is None:
                a.stop()
            a.kill()
    out["met"] = (out["stranger_bytes_per_min"] == 0 and out["slowloris_ratio"] <= 2
                  and out["replay_ratio"] <= 2)
    return out
