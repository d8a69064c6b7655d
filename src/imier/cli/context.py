"""What every command needs: the home, the store, who signs, the clock, output."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from nacl.signing import SigningKey

from ..protocol.errors import LocalError
from ..protocol.events import Event, Found
from ..store.db import Store
from ..store.home import Home, default_home

__all__ = ["Context", "parse_time", "hexid", "short", "add_json"]


def hexid(b: bytes) -> str:
    return b.hex()


def short(b: bytes) -> str:
    return b.hex()[:12]


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")


def parse_time(text: str, now_ms: int) -> int:
    """ISO 8601 (``2026-11-23T18:00``, UTC if no zone) or ``+DURATION`` from now, to ms."""
    from ..protocol.charter import parse_duration_ms
    from ..protocol.errors import Rejected

    text = text.strip()
    if text.startswith("+"):
        try:
            return now_ms + parse_duration_ms(text[1:], field="--as-of")
        except Rejected as exc:
            raise LocalError(str(exc)) from None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise LocalError(
            f"--as-of: {text!r} is not a time", hint="use ISO 8601 (2026-11-23T18:00Z) or +3d"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


class Context:
    def __init__(self, home_path: Path, as_name: str | None, json_out: bool) -> None:
        self.home = Home(home_path)
        self.as_name = as_name
        self.json = json_out
        self._console: Any = None
        self._err: Any = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Context":
        home = Path(args.home) if args.home else default_home()
        return cls(home, args.as_name, bool(getattr(args, "json", False)))

    # -- resources ---------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.home.require().store()

    def close(self) -> None:
        self.home.close()

    def now_ms(self) -> int:
        """The wall clock, or ``IMIER_NOW`` (ms since the epoch or ISO 8601) for tests and rehearsals."""
        fixed = os.environ.get("IMIER_NOW")
        if fixed:
            if fixed.isdigit():
                return int(fixed)
            return parse_time(fixed, int(time.time() * 1000))
        return int(time.time() * 1000)

    def passphrase(self, *, confirm: bool = False) -> str:
        env = os.environ.get("IMIER_PASSPHRASE")
        if env is not None:
            return env
        if not sys.stdin.isatty():
            raise LocalError(
                "a passphrase is needed to unlock the keys", hint="set IMIER_PASSPHRASE or run in a terminal"
            )
        first = getpass.getpass("Passphrase: ")
        if confirm and getpass.getpass("Passphrase again: ") != first:
            raise LocalError("the two passphrases differ; nothing was written")
        return first

    def signer(self) -> SigningKey:
        person = self.home.require().person(self.as_name)
        return self.home.unlock(person, self.passphrase())

    def names(self) -> dict[bytes, str]:
        """Public key -> name for the people on this node."""
        return {p.public: p.name for p in self.home.people()}

    # -- ids people type -------------------------------------------------------------

    def resolve_body(self, text: str) -> Event:
        """A body by full id, unique id prefix or name; its founding event."""
        store = self.store
        bodies = store.bodies()
        t = text.strip().lower()
        by_id = [b for b in bodies if b.id.hex().startswith(t)] if _is_hex(t) else []
        if len(by_id) == 1:
            return by_id[0]
        by_name = [b for b in bodies if isinstance(b.data, Found) and b.data.name.lower() == t]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_id) > 1 or len(by_name) > 1:
            raise LocalError(f"{text!r} names several bodies", hint="use more of the id ('imier body list')")
        raise LocalError(
            f"no body {text!r} on this node",
            hint="'imier body list' shows the bodies held here; sync or import to get others",
        )

    def resolve_event(self, text: str, *, kinds: tuple[str, ...], what: str) -> Event:
        t = text.strip().lower()
        if not _is_hex(t) or len(t) < 4:
            raise LocalError(f"{text!r} is not an id", hint=f"give the {what}'s id or at least 4 hex digits of it")
        ids = self.store.find_prefix(bytes.fromhex(t if len(t) % 2 == 0 else t[:-1]))
        evs = [e for e in (self.store.get(i) for i in ids) if e is not None and e.kind in kinds]
        evs = [e for e in evs if e.id.hex().startswith(t)]
        if len(evs) == 1:
            return evs[0]
        if len(evs) > 1:
            raise LocalError(f"{text!r} matches several events", hint="give more of the id")
        raise LocalError(f"no {what} {text!r} on this node", hint="'imier status' lists the proposals held here")

    # -- output ----------------------------------------------------------------------

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=False)
        return self._console

    def error(self, message: str) -> None:
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()

    def emit(self, doc: Any, render: Callable[[], None] | None = None) -> None:
        """``--json``: the document on stdout; otherwise ``render()`` for a person."""
        if self.json or render is None:
            sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        else:
            render()


def _is_hex(t: str) -> bool:
    return bool(t) and all(c in "0123456789abcdef" for c in t)
