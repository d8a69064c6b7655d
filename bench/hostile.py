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
  median of 5) while 16 peer ids hold 3 streams each (48, each peer id
  within its limit of 4), sending hellos a byte every 2 s, over the same sync with no attacker. Target <= 2.
* ``hostile.replay_ratio``: the same while 3 peers replay a 30 KB sketch every
  round, session after session, each taking a new peer id whenever refused.
  Target <= 2.
* ``*_victim_cores``: the victim daemon's CPU (from /proc/PID/stat, in cores)
  while the good peer synced under that attack; ``*_trials_ms`` every trial.
  The attackers print their counters when stopped (SIGTERM).

* ``hostile.deferred_rss``: a second victim daemon (a small community, the
  deferred bound ``IMIER_BENCH_HOSTILE_DEFERRED_MIB``, default the node's 64
  MiB) while a peer pushes ``IMIER_BENCH_HOSTILE_FLOOD_MB`` (320) MB of events
  of its body dated an hour ahead, 400 of ~58 KB a session, a fresh peer id
  each: its RSS growth (peak ``VmHWM`` from /proc/PID/status, reset before
  the flood, less ``VmRSS`` before) against the bound. Target: growth <= bound + 16 MiB
  (``RSS_ALLOWANCE``: decoding buffers, the libp2p connection, the allocator).
  ``deferred_rss_quiet`` is the same daemon's growth over good syncs alone.

A sync that fails under attack counts as the attack's deadline (60 s) so the
ratio shows it.
"""

from __future__ import annotations

import json
import os
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

TRIALS = 5
FAILED_MS = 60_000
MIB = 1024 * 1024
RSS_ALLOWANCE = 16 * MIB


def _proc_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a process, from /proc/PID/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its VmRSS (Linux: ``echo 5 > clear_refs``), so the
    peak read later is this measurement's, not the daemon's start-up."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


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
            out["baseline_trials_ms"] = base

            before = _stored_bytes(a.home)
            t0 = time.monotonic()
            junk = finish(attack("junk", "--seconds", str(seconds), "--bodies", "10", "--per-body", "20"))
            took = time.monotonic() - t0
            added = _stored_bytes(a.home) - before
            out["stranger_bytes_per_min"] = added * 60 / took
            out["stranger_sent_bytes_per_min"] = junk.get("sent_bytes", 0) * 60 / took
            out["junk"] = junk

            assert a.proc is not None
            pid = a.proc.pid
            for name, args in (("slowloris", ("--streams", "3", "--identities", "16")),
                               ("replay", ("--body", body.hex(), "--rotate", "--identities", "3"))):
                p = attack(name, "--seconds", str(seconds + 30), *args)
                time.sleep(3)
                c0, t0 = _cpu_s(pid), time.monotonic()
                under = [good_sync() for _ in range(TRIALS)]
                # the victim's CPU while the good peer synced under attack, in cores
                out[f"{name}_victim_cores"] = (_cpu_s(pid) - c0) / (time.monotonic() - t0)
                out[f"{name}_trials_ms"] = under
                p.terminate()  # hostile_peer.py prints its counters on SIGTERM
                out[name] = finish(p)
                out[f"{name}_ms"] = statistics.median(under)
                out[f"{name}_ratio"] = out[f"{name}_ms"] / max(1, out["baseline_ms"])
            peers = a.json("peers")
            out["victim_offences"] = sorted({o["code"] for p in peers["peers"] for o in p["recent_offences"]})
        finally:
            if a.proc is not None and a.proc.poll() is None:
                a.stop()
            a.kill()
    out.update(_deferred_flood(root_dir, attacker, Node, _fill, _history))
    out["met"] = (out["stranger_bytes_per_min"] == 0 and out["slowloris_ratio"] <= 2
                  and out["replay_ratio"] <= 2 and out["deferred_rss_met"])
    return out


def _deferred_flood(root_dir: Path, attacker: Path, Node: Any, _fill: Any, _history: Any) -> dict[str, Any]:
    """hostile.deferred_rss: a victim daemon's RSS growth under a flood of future-dated events."""
    from imier.store.home import Config

    flood_mb = env_int("IMIER_BENCH_HOSTILE_FLOOD_MB", 320)
    # getattr: the same bench runs against the code before issue 10 (a count bound only)
    bound_mib = env_int("IMIER_BENCH_HOSTILE_DEFERRED_MIB", getattr(Config, "deferred_max_bytes", 64 * MIB) // MIB)
    out: dict[str, Any] = {"flood_mb": flood_mb, "deferred_bound": bound_mib * MIB}
    with tempfile.TemporaryDirectory(prefix="imier-bench-deferred-") as tmp:
        root = Path(tmp)
        v, g = Node(root, "flooded"), Node(root, "good")
        v.init("ana")
        g.init("ben")
        cfg_path = v.home / "config.toml"
        cfg = Config.load(cfg_path)
        if hasattr(cfg, "deferred_max_bytes"):
            cfg.deferred_max_bytes = bound_mib * MIB
            cfg.deferred_peer_bytes = min(cfg.deferred_peer_bytes, cfg.deferred_max_bytes)
            cfg_path.write_text(cfg.to_toml(), encoding="utf-8")
        body, evs, _, _ = _history(200, 0, 0)
        _fill(v, body, evs)
        _fill(g, body, evs[:150])
        template = root / "good-store.sqlite3"
        shutil.copyfile(g.home / "store.sqlite3", template)

        def good_sync() -> None:
            for suffix in ("-wal", "-shm"):
                p = g.home / f"store.sqlite3{suffix}"
                if p.exists():
                    p.unlink()
            shutil.copyfile(template, g.home / "store.sqlite3")
            g.run("sync", v.addr(), "--json", timeout=90)

        try:
            v.start("--sync-interval", "3600s", "--no-gossip")
            assert v.proc is not None
            pid = v.proc.pid
            good_sync()  # warm: the same work a peer's session costs, before measuring
            _reset_peak(pid)
            base = _proc_kib(pid)
            for _ in range(TRIALS):
                good_sync()
            quiet = _proc_kib(pid)
            out["deferred_rss_quiet"] = (quiet["VmHWM"] - base["VmRSS"]) * 1024
            _reset_peak(pid)
            start = _proc_kib(pid)
            t0 = time.monotonic()
            p = subprocess.Popen([sys.executable, str(attacker), "future", v.addr(), "--body", body.hex(),
                                  "--mb", str(flood_mb), "--per-session", "400", "--seconds", "600"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=v.env())
            peak_deferred = 0
            for _ in range(3000):  # bounded: the attacker's own deadline is 600 s
                if p.poll() is not None:
                    break
                time.sleep(0.5)
                try:
                    doc = v.json("peers")
                    peak_deferred = max(peak_deferred, int(doc.get("deferred_bytes", -1)))
                except Exception:
                    pass
            so, _ = p.communicate(timeout=60)
            out["deferred_flood_s"] = time.monotonic() - t0
            try:
                out["deferred_attack"] = json.loads(so.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                out["deferred_attack"] = {"error": "no report"}
            end = _proc_kib(pid)
            doc = v.json("peers")
            out["deferred_bytes"] = int(doc.get("deferred_bytes", -1))
            out["deferred_count"] = int(doc["deferred"])
            out["deferred_bytes_peak"] = max(peak_deferred, out["deferred_bytes"])
            out["deferred_rss_before_mib"] = start["VmRSS"] / 1024
            out["deferred_rss_after_mib"] = end["VmRSS"] / 1024
            out["deferred_rss_peak_mib"] = end["VmHWM"] / 1024
            out["deferred_rss"] = (end["VmHWM"] - start["VmRSS"]) * 1024
            out["deferred_rss_met"] = out["deferred_rss"] <= out["deferred_bound"] + RSS_ALLOWANCE
            good_sync()  # and a good peer still syncs
        finally:
            if v.proc is not None and v.proc.poll() is None:
                v.stop()
            v.kill()
    return out
