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
from typing import TYPE_CHECKING, Any, Callable

from ..api.resolve import short
from ..protocol.errors import LocalError
from ..protocol.events import Event
from ..store.db import Store
from ..store.home import Home, default_home

if TYPE_CHECKING:  # the library (and consensus under it) loads when a command needs it
    from ..api import Clerk, Written

__all__ = ["Context", "parse_time", "hexid", "short", "add_json"]


def hexid(b: bytes) -> str:
    return b.hex()


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")


def parse_time(text: str, now_ms: int) -> int:
    """ISO 8601 (``2026-11-23T18:00``, UTC if no zone) or ``+DURATION`` from now, to ms."""
    from ..protocol.charter import parse_duration_ms

    text = text.strip()
    if text.startswith("+"):
        return now_ms + parse_duration_ms(text[1:], field="--as-of")
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
        self._clerk: "Clerk | None" = None

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

    def names(self) -> dict[bytes, str]:
        """Public key -> name for the people on this node."""
        return {p.public: p.name for p in self.home.people()}

    @property
    def clerk(self) -> "Clerk":
        """The library's handle on this home (opened once per command)."""
        if self._clerk is None:
            from ..api import open_clerk

            self._clerk = open_clerk(self.home, clock=self.now_ms, as_name=self.as_name,
                                     passphrase=self.passphrase)
        return self._clerk

    # -- ids people type (the library resolves; kept for the status and carry commands) --

    def resolve_body(self, text: str) -> Event:
        """A body by full id, unique id prefix or name; its founding event."""
        from ..api import resolve

        return resolve.body(self.store, text)

    def resolve_event(self, text: str, *, kinds: tuple[str, ...], what: str) -> Event:
        from ..api import resolve

        return resolve.event(self.store, text, kinds=kinds, what=what)

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


    def wrote(self, w: "Written") -> int:
        """Confirm a write: the sentence on stderr and the bare id on stdout (for
        ``$(imier propose ...)``), or with ``--json`` the id and the facts on stdout."""
        self.nudge()
        if self.json:
            self.emit(w.to_json())
        else:
            sys.stderr.write(w.sentence + "\n")
            sys.stderr.flush()
            sys.stdout.write("".join(hexid(e.id) + "\n" for e in w.events))
        return 0

    def nudge(self) -> None:
        # A running daemon publishes the outbox within a quarter second anyway;
        # the nudge makes it now. No daemon: the event waits in the outbox.
        if self.home.socket_path.exists():
            from ..nodeapp.control import request

            request(self.home.socket_path, {"cmd": "nudge"}, timeout=0.5)
