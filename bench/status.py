"""status.ratio and vote.ratio: `imier status P` and `imier vote P` against the process floor.

Everything is measured in one run against one floor: the process time of
`imier --version` (Python, the CLI's imports, argument parsing), best of
``IMIER_BENCH_RUNS`` runs like every other figure.

Data (signed once, cached as bundles like the other benchmarks, then
ingested straight into each home's store):

* **community**: one community of ``IMIER_BENCH_STATUS_MEMBERS`` members
  (2,000) with ``IMIER_BENCH_STATUS_PROPOSALS`` proposals (100), each voted
  by every member inside its round 1 (19 in 20 yes): about 202,000 events.
  The clock (``IMIER_NOW``) stands while the last proposal's round 1 is open
  and the middle one is in contention.

  - ``status.ratio``: `imier status P` of the middle proposal (closed round,
    kept result) ÷ floor. Target <= 2.
  - ``status_open.ratio``: `imier status P` of the last proposal while its
    round is open and every vote is in (counted from the index). Reported.
  - ``vote.ratio``: `imier vote P yes` on the last proposal by a member
    (key unlock included) ÷ floor. Target <= 3.
* **municipality** (bench/tally.py's data): 100 communities of 1,000
  members, one proposal voted by all 100,000 (200,100 events).

  - ``all.ratio``: `imier status` (every proposal) ÷ floor. Target <= 5.
  - ``all.rss_mb``: the peak RSS of that process. Target <= 100 MB.

The first `imier status` after the data arrives builds the indexes and the
kept results; it is reported as ``cold_s`` beside the figures (the figures
are the runs after it, what a node answers every day).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from .common import T0, cache_dir, env_int, key, load_or_build

__all__ = ["run", "community"]

DAY = 86_400_000
HOUR = 3_600_000
PASS = "bench"


def community(members: int, proposals: int, salt: int = 7) -> Iterator[Any]:
    """One community: founding, admissions, then ``proposals`` an hour apart, each voted by
    every member in its round 1 (one vote a second), in time order, causally linked."""
    from imier.protocol.events import Admit, Found, Propose, Vote, sign_event

    keys = [key(i, salt) for i in range(members)]
    pubs = [bytes(k.verify_key) for k in keys]
    plan: list[tuple[int, int, Any]] = []  # (ts, author index, payload or a proposal index)
    for i in range(1, members):
        plan.append((T0 + i * 1000, 0, ("admit", i)))
    for p in range(proposals):
        tp = T0 + (p + 1) * HOUR + 500
        plan.append((tp, p % members, ("propose", p)))
        for i in range(members):
            plan.append((tp + 3 * DAY + 500 + i * 1000, i, ("vote", p)))
    plan.sort(key=lambda x: x[0])
    found = sign_event(keys[0], body=None, ts=T0, seq=1, prev=[], data=Found(body_kind="community", name="Bench"))
    yield found
    body = found.id
    head = found.id
    last: dict[int, tuple[int, bytes]] = {0: (1, found.id)}
    pids: dict[int, bytes] = {}
    for ts, who, (what, x) in plan:
        if what == "admit":
            data: Any = Admit(member=pubs[x])
        elif what == "propose":
            data = Propose(title=f"Proposal {x}", text="Rates are set street by street. " * 3)
        else:
            data = (Vote(target=pids[x], choice="no", severity="minor", category="cost")
                    if who % 20 == 19 else Vote(target=pids[x], choice="yes"))
        seq, own = last.get(who, (0, None))
        prev = sorted({head} if own is None else {head, own})
        ev = sign_event(keys[who], body=body, ts=ts, seq=seq + 1, prev=prev, data=data)
        last[who] = (seq + 1, ev.id)
        head = ev.id
        if what == "propose":
            pids[x] = ev.id
        yield ev


def _home(path: Path, raws: list[bytes], person: Any = None) -> None:
    """A home holding these events (straight into the store) and, if given, a person's key."""
    from imier.protocol.events import decode_event
    from imier.protocol.keys import seal
    from imier.store.home import Home

    h = Home(path)
    h.create("bench", PASS)
    store = h.store()
    for i in range(0, len(raws), 50_000):
        r = store.ingest([decode_event(x, verify=False) for x in raws[i : i + 50_000]])
        assert not r.rejected
    if person is not None:
        sealed = seal(person, "voter", PASS)
        p = h.keys_dir / "voter.key"
        p.write_bytes(sealed.blob)
        os.chmod(p, 0o600)
    h.close()


FLOOR: list[float] = []  # every --version time of this run: the floor is their minimum


def _floor(env: dict[str, str]) -> None:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imier", "--version"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    FLOOR.append(time.perf_counter() - t)


def _timed(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float, str]:
    """Best wall time over ``runs`` processes (rss unused: see :func:`_rss`), and the output.
    A floor process runs before each, so a busy spell of the shared machine weighs on both."""
    best, rss, out = float("inf"), 0.0, ""
    for _ in range(runs):
        _floor(env)
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "imier", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o, e = p.communicate(timeout=900)
        best = min(best, time.perf_counter() - t)
        if p.returncode != 0:
            raise RuntimeError(f"imier {' '.join(args)} failed: {e.decode()[-300:]}")
        out = o.decode()
    return best, rss, out


_HWM = """
import atexit, runpy, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(OUT, "w").write(line.split()[1])
OUT = sys.argv[1]
del sys.argv[1]
atexit.register(_hwm)
sys.argv[0] = "imier"
runpy.run_module("imier", run_name="__main__", alter_sys=True)
"""


def _rss(args: list[str], env: dict[str, str]) -> float:
    """Peak RSS (MB) of one `imier` process: its own ``VmHWM`` (/proc/self/status), read as
    it exits. Not the kernel's ``ru_maxrss`` of the child: on Linux that starts from the
    parent's size at fork (this benchmark holds the data sets: about 300 MB), so it
    reported the bench, not `imier`."""
    with tempfile.NamedTemporaryFile(prefix="imier-hwm-", delete=False) as f:
        out = f.name
    try:
        p = subprocess.run([sys.executable, "-c", _HWM, out, *args], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f"imier {' '.join(args)} failed ({p.returncode})")
        return float(Path(out).read_text()) / 1024.0  # kB
    finally:
        os.unlink(out)


def run() -> dict[str, Any]:
    from imier.protocol.events import decode_event

    from .tally import municipality

    members = env_int("IMIER_BENCH_STATUS_MEMBERS", 2000)
    proposals = env_int("IMIER_BENCH_STATUS_PROPOSALS", 100)
    communities = env_int("IMIER_BENCH_TALLY_COMMUNITIES", 100)
    per = env_int("IMIER_BENCH_TALLY_MEMBERS", 1000)
    runs = env_int("IMIER_BENCH_RUNS", 3)
    raws = load_or_build(f"status-community-{members}x{proposals}",
                         lambda: community(members, proposals))
    muni = load_or_build(f"municipality-{communities}x{per}", lambda: municipality(communities, per))
    props = [e for e in (decode_event(r, verify=False) for r in raws) if e.kind == "propose"]
    last, middle = props[-1], props[len(props) // 2]
    now = last.ts + 3 * DAY + members * 1000 + 60_000  # every vote on the last one is in
    env = {**os.environ, "IMIER_PASSPHRASE": PASS, "IMIER_NOW": str(now)}
    # Compiled modules, as an installed package has them (a shell with
    # PYTHONDONTWRITEBYTECODE would recompile every module on every process,
    # the floor's and the status's alike); kept out of the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir() / "pycache")
    # Data homes are kept between runs (building them is not what is measured).
    root = Path(os.environ.get("IMIER_BENCH_STATUS_HOMES") or cache_dir() / "status-homes")
    root.mkdir(parents=True, exist_ok=True)
    src = os.environ.get("PYTHONPATH", "")
    tag = f"{members}x{proposals}"
    tpl = root / f"template-{tag}-{communities}x{per}"
    t = time.perf_counter()
    if not (tpl / "ok").exists():  # built once; each run works on a fresh copy
        shutil.rmtree(tpl, ignore_errors=True)
        _home(tpl / "community", raws, key(len(props) % members + 3, 7))  # a member
        _home(tpl / "municipality", muni)
        (tpl / "ok").write_text("built\n")
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="imier-bench-status-", dir=root) as tmp:
        c_home, m_home = Path(tmp) / "community", Path(tmp) / "municipality"
        shutil.copytree(tpl / "community", c_home)
        shutil.copytree(tpl / "municipality", m_home)
        cenv = {**env, "IMIER_HOME": str(c_home), "IMIER_AS": "voter"}
        menv = {**env, "IMIER_HOME": str(m_home), "IMIER_NOW": str(int(time.time() * 1000))}
        FLOOR.clear()
        _timed(["--version"], cenv, 2)  # compiles the modules once (see PYTHONPYCACHEPREFIX)
        _timed(["status", "--help"], cenv, 1)
        cold_s, _, _ = _timed(["status", middle.id.hex()], cenv, 1)
        status_s, _, out = _timed(["status", middle.id.hex()], cenv, runs)
        open_cold_s, _, _ = _timed(["status", last.id.hex()], cenv, 1)
        open_s, _, _ = _timed(["status", last.id.hex()], cenv, runs)
        vote_s, _, vout = _timed(["vote", last.id.hex(), "yes"], cenv, runs)
        m_cold_s, _, _ = _timed(["status"], menv, 1)
        all_s, _, _ = _timed(["status"], menv, runs)
        rss = _rss(["status"], menv)
        try:
            verify_s, _, vfy = _timed(["status", middle.id.hex(), "--verify"], cenv, 1)
        except RuntimeError:  # a release without --verify (the "before" run)
            verify_s, vfy = None, ""
    floor_s = min(FLOOR)
    return {
        "python_path": src, "community": tag, "events": len(raws), "municipality_events": len(muni),
        "build_homes_s": build_s, "floor_s": floor_s,
        "status_cold_s": cold_s, "status_s": status_s, "status_ratio": status_s / floor_s,
        "status_target": 2, "status_met": status_s / floor_s <= 2,
        "status_open_cold_s": open_cold_s, "status_open_s": open_s, "status_open_ratio": open_s / floor_s,
        "vote_s": vote_s, "vote_ratio": vote_s / floor_s, "vote_target": 3, "vote_met": vote_s / floor_s <= 3,
        "all_cold_s": m_cold_s, "all_s": all_s, "all_ratio": all_s / floor_s, "all_target": 5,
        "all_met": all_s / floor_s <= 5, "all_rss_mb": rss, "all_rss_target_mb": 100,
        "all_rss_met": rss <= 100, "verify_s": verify_s,
        "verified": "match" in vfy, "status_lines": len(out.splitlines()), "vote_out": vout.strip()[:200],
    }


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(json.dumps(run(), indent=2))
