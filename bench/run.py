"""``make bench``: every benchmark, one table, bench/results.json.

Each figure is printed beside its ceiling measured in the same run, the
ratio, the target and whether it is met. Select benchmarks with
``IMIER_BENCH=ingest,memory`` (default: all); sizes come from the
``IMIER_BENCH_*`` variables each module documents. A benchmark that cannot
run (a missing module, a failure) is reported as such in the table and in
the JSON, never silently dropped.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

__all__ = ["main", "BENCHES"]

BENCHES = ("ingest", "tally", "sync", "gossip", "memory", "hostile", "status", "autoseal")
RESULTS = Path(__file__).resolve().parent / "results.json"


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, (int, float)):
        return format(v, spec)
    return str(v)


def _rows(name: str, r: dict[str, Any]) -> list[tuple[str, ...]]:
    """(benchmark, figure, ceiling, ratio, target, met) rows for one result."""
    if "error" in r:
        return [(name, "not run", "-", "-", "-", r["error"][:60])]
    if name == "ingest":
        return [("ingest", f"{r['events_per_s']:,.0f} ev/s", f"{r['ceiling_events_per_s']:,.0f} ev/s",
                 _fmt(r["ratio"]), ">= 0.7", _fmt(r["met"]))]
    if name == "tally":
        rows = [("tally", f"{r['tally_s']:.3f} s", f"read {r['read_s']:.3f} s", _fmt(r["ratio"]),
                 "<= 3", _fmt(r["met"]))]
        g = r.get("growth", [])
        if g:
            rows.append(("tally growth", " ".join(f"{x['votes'] // 1000}k:{x['tally_s']:.3f}s" for x in g),
                         "per-vote cost", _fmt(r.get("growth_ratio")), "linear", _fmt(r.get("linear"))))
        gs = r.get("growth_scaled", [])
        if gs:
            rows.append(("tally scaled", " ".join(f"{x['votes'] // 1000}k:{x['tally_s']:.2f}s" for x in gs),
                         " ".join(f"{x['us_per_event']:.1f}" for x in gs) + " us/event",
                         _fmt(r.get("scaled_ratio")), "linear", _fmt(r.get("scaled_linear"))))
        if "cached_s" in r:
            rows.append(("tally (cached)", f"{r['cached_s'] * 1000:.2f} ms", f"read {r['read_s']:.3f} s",
                         _fmt(r["cached_s"] / r["read_s"]), "-", "-"))
        return rows
    if name == "sync":
        rows = []
        for x in r["by_d"]:
            rows.append((f"sync d={x['d']}", f"{x['bytes']:,} B, {x['round_trips']} rt",
                         f"{x['ideal_bytes']:,.0f} B (d x event)", _fmt(x["ratio"]),
                         "<= 2" if x["d"] > 1 else "const", _fmt(x.get("met"))))
        rows.append(("sync ratio_max", f"worst d={r['worst_d']}", f"N={r['n']:,}", _fmt(r["ratio_max"]),
                     "<= 2", _fmt(r["met"])))
        return rows
    if name == "gossip":
        return [("gossip", f"{r['heartbeats']:.2f} heartbeats", f"{r['latency_s']:.3f} s, hb {r['heartbeat_s']} s",
                 "-", "-", f"{r['nodes']} nodes")]
    if name == "memory":
        how = "extrapolated" if r["extrapolated"] else "measured"
        return [
            ("memory", f"{r['rss_mb_per_million']:.0f} MiB RSS / 1M", r.get("headline", "-"),
             "-", "-", f"{how} (N={r['n']:,})"),
            ("memory store", f"{r['rss_mb_per_million_store_process']:.0f} MiB RSS / 1M",
             f"store + sync snapshot (empty {r['rss_mb_empty_node']:.0f} MiB)", "-", "-", how),
            ("memory idle", f"{r['rss_mb_per_million_idle']:.0f} MiB RSS / 1M", "store open, no snapshot",
             "-", "-", how),
            ("disk", f"{r['disk_bytes_per_event']:.0f} B/event", f"event {r['mean_event_bytes']:.0f} B",
             _fmt(r["disk_bytes_per_event"] / r["mean_event_bytes"]), "-", "-"),
        ] + _daemon_rows(r)
    if name == "hostile":
        return [
            ("hostile.stranger_bytes_per_min", f"{r['stranger_bytes_per_min']:,.0f} B/min stored",
             f"{r['stranger_sent_bytes_per_min']:,.0f} B/min sent", "-", "0",
             _fmt(r["stranger_bytes_per_min"] == 0)),
            ("hostile.slowloris_ratio", f"{r['slowloris_ms']:.0f} ms sync (victim "
             f"{r.get('slowloris_victim_cores', 0):.2f} cores)", f"{r['baseline_ms']:.0f} ms alone",
             _fmt(r["slowloris_ratio"]), "<= 2", _fmt(r["slowloris_ratio"] <= 2)),
            ("hostile.replay_ratio", f"{r['replay_ms']:.0f} ms sync (victim "
             f"{r.get('replay_victim_cores', 0):.2f} cores)", f"{r['baseline_ms']:.0f} ms alone",
             _fmt(r["replay_ratio"]), "<= 2", _fmt(r["replay_ratio"] <= 2)),
            ("hostile.deferred_rss", f"{r['deferred_rss'] / 2**20:.0f} MiB RSS growth",
             f"bound {r['deferred_bound'] / 2**20:.0f} MiB (+16), {r['flood_mb']} MB sent",
             _fmt(r["deferred_rss"] / r["deferred_bound"]), "<= bound + 16 MiB", _fmt(r["deferred_rss_met"])),
        ]
    if name == "status":
        floor = f"--version {r['floor_s']:.3f} s"
        return [
            ("status P", f"{r['status_s']:.3f} s (cold {r['status_cold_s']:.2f})", floor,
             _fmt(r["status_ratio"]), "<= 2", _fmt(r["status_met"])),
            ("status P (open)", f"{r['status_open_s']:.3f} s", floor, _fmt(r["status_open_ratio"]), "-", "-"),
            ("vote P", f"{r['vote_s']:.3f} s", floor, _fmt(r["vote_ratio"]), "<= 3", _fmt(r["vote_met"])),
            ("status (100x1000)", f"{r['all_s']:.3f} s (cold {r['all_cold_s']:.1f})", floor,
             _fmt(r["all_ratio"]), "<= 5", _fmt(r["all_met"])),
            ("status RSS", f"{r['all_rss_mb']:.0f} MB", "-", "-", "<= 100 MB", _fmt(r["all_rss_met"])),
        ]
    if name == "autoseal":
        return [("autoseal pass", f"{r['pass_s']:.3f} s (cold {r['first_s']:.1f})",
                 f"status P {r['status_s']:.3f} s", _fmt(r["ratio"]), "<= 3", _fmt(r["met"]))]
    return [(name, json.dumps(r)[:60], "-", "-", "-", "-")]


def _daemon_rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    d = r.get("daemon")
    if not d:
        return []
    if "error" in d:
        return [("memory daemon", "not run", "-", "-", "-", d["error"][:60])]
    return [("memory daemon", f"{d['idle']['VmRSS']:.0f} MiB at rest",
             f"peak {d['after_sync']['VmHWM']:.0f} MiB serving a sync", "-", "-",
             f"{d['sync']['items']:,} items")]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    chosen = [b for b in os.environ.get("IMIER_BENCH", ",".join(BENCHES)).split(",") if b]
    console = Console(highlight=False)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in chosen:
        console.print(f"[bold]bench {name}[/bold] ...")
        t = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            fn: Callable[[], dict[str, Any]] = mod.run
            results[name] = fn()
        except Exception as exc:  # report it and go on with the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results[name]["wall_s"] = time.perf_counter() - t
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = Table(title="Imier benchmarks (figure beside its ceiling, same run)")
    for col in ("benchmark", "figure", "ceiling / reference", "ratio", "target", "met?"):
        table.add_column(col)
    for name in chosen:
        for row in _rows(name, results[name]):
            table.add_row(*row)
    console.print(table)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
