"""Crash safety: SIGKILL a real ``imier import`` at random moments, repeatedly.

After every kill the store must pass ``PRAGMA integrity_check``, hold only
events that verify (and whose columns match their signed bytes), keep rule 2
of store/db.py (an accepted event's prevs are all held and accepted), and
still hold everything an earlier import acknowledged (exit status 0). At the
end, importing every bundle again completes with the full set accepted.

Rounds: ``IMIER_CRASH_ROUNDS`` (default 6). The kill moments are drawn from a
seeded generator over the measured length of one import, so some land in
start-up, some in decoding, some in the transaction or its commit.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.common import T0, community_history
from imier.protocol.bundle import write_bundle
from imier.protocol.events import decode_event
from imier.store.db import ACCEPTED, Store

ROUNDS = int(os.environ.get("IMIER_CRASH_ROUNDS", "6"))
PER_BUNDLE = 2500


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(IMIER_HOME=str(home), IMIER_PASSPHRASE="crash-test", IMIER_NOW=str(T0 + 10**12))
    env.pop("IMIER_AS", None)
    return env


def _imier(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imier", *args], env=_env(home),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _check(home: Path, acknowledged: set[bytes]) -> set[bytes]:
    """The store's invariants after a crash; returns the ids held."""
    store = Store.open(home / "store.sqlite3")
    try:
        assert store.integrity_ok()
        rows = store.conn.execute("SELECT id, body, author, ts, seq, state, raw FROM events").fetchall()
        held: dict[bytes, int] = {}
        for eid, body, author, ts, seq, state, raw in rows:
            ev = decode_event(raw)  # verifies the signature again
            assert eid == hashlib.sha256(raw).digest() == ev.id
            assert (body, author, ts, seq) == (ev.body_id, ev.author, ev.ts, ev.seq)
            held[eid] = state
        for eid, state in held.items():
            if state == ACCEPTED:
                ev = decode_event(store.conn.execute("SELECT raw FROM events WHERE id = ?", (eid,)).fetchone()[0],
                                  verify=False)
                assert all(held.get(p) == ACCEPTED for p in ev.prev), "accepted event with an unaccepted prev"
        missing = acknowledged - held.keys()
        assert not missing, f"{len(missing)} acknowledged events lost"
        return set(held)
    finally:
        store.close()


def test_sigkill_during_import_loses_nothing_acknowledged(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init = subprocess.run([sys.executable, "-m", "imier", "init", "--name", "crash"], env=_env(home),
                          capture_output=True)
    assert init.returncode == 0, init.stderr
    evs = list(community_history(PER_BUNDLE * (ROUNDS + 1), members=150, salt=9))
    paths = []
    for i in range(0, len(evs), PER_BUNDLE):
        p = tmp_path / f"part{i // PER_BUNDLE}.bundle"
        p.write_bytes(write_bundle(e.raw for e in evs[i : i + PER_BUNDLE]))
        paths.append(p)
    rnd = random.Random(20261123)

    # The first bundle is imported to the end: it is acknowledged.
    t = time.monotonic()
    first = _imier(home, "import", str(paths[0]))
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else b""
    span = time.monotonic() - t
    acknowledged = {e.id for e in evs[:PER_BUNDLE]}
    _check(home, acknowledged)

    killed = completed = 0
    scale = 1.2  # shrinks after an import finishes first (the machine got faster than measured)
    for i, path in enumerate(paths[1:], start=1):
        proc = _imier(home, "import", str(path))
        time.sleep(rnd.uniform(0.2 * span, scale * span))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=120)
        if proc.stderr:
            proc.stderr.close()
        if code == 0:  # it finished before the kill: acknowledged
            completed += 1
            scale = max(0.4, scale * 0.7)
            acknowledged |= {e.id for e in evs[i * PER_BUNDLE : (i + 1) * PER_BUNDLE]}
        else:
            assert code == -signal.SIGKILL
            killed += 1
        _check(home, acknowledged)
    print(f"{killed} imports killed, {completed} completed before the kill; one import ~{span:.2f} s")
    assert killed >= 1, "no import was interrupted; the kill window is wrong"

    # Re-import everything, in order: the full set, every event accepted.
    for path in paths:
        again = subprocess.run([sys.executable, "-m", "imier", "import", str(path)], env=_env(home),
                               capture_output=True)
        assert again.returncode == 0, again.stderr
    held = _check(home, {e.id for e in evs})
    assert held == {e.id for e in evs}
    with Store.open(home / "store.sqlite3") as store:
        assert store.count(state=ACCEPTED) == len(evs)
