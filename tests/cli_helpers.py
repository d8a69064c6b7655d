"""Run the real `imier` command in-process (fast) or as a subprocess (exact)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imier.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Imier:
    """One node's home, driven through the CLI."""

    def __init__(self, home: Path, capsys: Any, monkeypatch: Any, passphrase: str = "pw") -> None:
        self.home = home
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.passphrase = passphrase
        self.now: int | None = None

    def __call__(self, *args: str, as_: str | None = None, ok: bool = True) -> Result:
        mp = self.monkeypatch
        mp.setenv("IMIER_HOME", str(self.home))
        mp.setenv("IMIER_PASSPHRASE", self.passphrase)
        if as_:
            mp.setenv("IMIER_AS", as_)
        else:
            mp.delenv("IMIER_AS", raising=False)
        if self.now is not None:
            mp.setenv("IMIER_NOW", str(self.now))
        else:
            mp.delenv("IMIER_NOW", raising=False)
        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        cap = self.capsys.readouterr()
        res = Result(code, cap.out, cap.err)
        if ok and code != 0:
            raise AssertionError(f"imier {' '.join(args)} failed ({code}): {cap.err}")
        return res

    def store_digest(self) -> str:
        h = hashlib.sha256()
        for suffix in ("", "-wal"):
            p = Path(str(self.home / "store.sqlite3") + suffix)
            if p.exists():
                h.update(p.read_bytes())
        return h.hexdigest()


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "imier", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)
