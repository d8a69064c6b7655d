"""Real `imier` nodes on 127.0.0.1 for integration tests: homes, daemons, bounded waits.

Every daemon is a separate process (`python -m imier.cli.main daemon`), every
wait polls with a deadline, every process is stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

PASSPHRASE = "integration"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``pred`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Node:
    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.home = root / name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{name}.log"
        self._log: Any = None

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"IMIER_HOME": str(self.home), "IMIER_PASSPHRASE": PASSPHRASE})
        env.pop("IMIER_AS", None)
        env.pop("IMIER_NOW", None)
        env.update(extra)
        return env

    def run(self, *args: str, ok: bool = True, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "imier.cli.main", *args],
            env=self.env(**env), capture_output=True, text=True, timeout=timeout,
        )
        if ok and r.returncode != 0:
            tail = self.log()[-1500:]
            raise AssertionError(f"{self.name}: imier {' '.join(args)} failed: {r.stderr}"
                                 + (f"\n--- {self.name}'s daemon log (end) ---\n{tail}" if tail else ""))
        return r

    def json(self, *args: str, **env: str) -> Any:
        return json.loads(self.run(*args, "--json", **env).stdout)

    def init(self, person: str) -> str:
        self.run("init", "--name", self.name)
        return self.run("key", "new", person).stdout.strip()

    # -- the daemon --------------------------------------------------------------

    def start(self, *args: str, timeout: float = 30) -> dict[str, Any]:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        info = self.home / "daemon.json"
        if info.exists():
            info.unlink()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imier.cli.main", "daemon", "--no-mdns", "--log-level", "info", *args],
            env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
        )

        def ready() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name}: daemon exited early:\n{self.log()}")
            try:
                return json.loads(info.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                return None

        return wait_until(ready, timeout, f"{self.name}'s daemon to start")  # type: ignore[no-any-return]

    def addr(self) -> str:
        return str(json.loads((self.home / "daemon.json").read_text())["addresses"][0])

    def stop(self, timeout: float = 10, sig: int = signal.SIGTERM) -> float:
        """Signal the daemon (SIGTERM or SIGINT); return how long it took to exit."""
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"{self.name}: daemon did not stop within {timeout} s") from None
        took = time.monotonic() - t0
        if self._log:
            self._log.close()
            self._log = None
        return took

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    # -- the store, read directly ----------------------------------------------------

    def event_ids(self) -> set[bytes]:
        con = sqlite3.connect(f"file:{self.home / 'store.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            return {r[0] for r in con.execute("SELECT id FROM events")}
        finally:
            con.close()


def same_sets(nodes: list[Node]) -> bool:
    sets = [n.event_ids() for n in nodes]
    return all(s == sets[0] for s in sets[1:]) and bool(sets[0])


def shared(doc: Any) -> Any:
    """A status document without what is each node's own: ``late``, the events that
    count in a closed unsealed window but reached *this* node after its close
    (docs/rules.md s.10). Every node must agree on the rest."""
    if isinstance(doc, dict):
        return {k: shared(v) for k, v in doc.items() if k != "late"}
    if isinstance(doc, list):
        return [shared(v) for v in doc]
    return doc
