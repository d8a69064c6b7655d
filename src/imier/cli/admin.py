"""Looking after a node's store: `imier backup FILE` and `imier verify`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..store.db import DamagedStore
from ..store.maintenance import backup, verify, verify_file
from .context import Context, add_json

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backup", help="copy the store to a file (safe while the daemon runs)",
        description="Copy this node's store to FILE with SQLite's online backup: a consistent "
        "snapshot, safe while the daemon runs. To restore, stop the daemon and put the file in "
        "place of HOME/store.sqlite3 (keep the keys and node.key: they are not in the store).",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_json(p)
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "verify", help="check the store: database integrity and every event's signature",
        description="Run SQLite's integrity check and verify every stored event again "
        "(signature, id, shape). Prints the counts; exits 1 if anything is wrong.",
    )
    add_json(p)
    p.set_defaults(func=cmd_verify)


def cmd_backup(ctx: Context, args: argparse.Namespace) -> int:
    doc = backup(ctx.store, args.file, force=args.force)
    ctx.emit(doc, lambda: print(f"Backed up {doc['events']} events ({doc['bytes']} bytes) to {doc['file']}"))
    return 0


def cmd_verify(ctx: Context, args: argparse.Namespace) -> int:
    try:
        rep = verify(ctx.store)
    except DamagedStore as exc:  # cannot be opened as a store: report what SQLite finds
        rep = verify_file(ctx.home.store_path)
        rep.integrity.insert(0, exc.message.replace("; nothing was written", ""))
    doc = rep.to_json()

    def render() -> None:
        print(f"integrity: {'ok' if not rep.integrity else '; '.join(rep.integrity[:5])}")
        print(f"events: {rep.events} ({rep.accepted} accepted, {rep.pending} pending), "
              f"{len(rep.bad)} failing verification")
        for b in rep.bad[:20]:
            print(f"  {b['id'][:12]}: {b['code']}: {b['reason']}")
        if len(rep.bad) > 20:
            print(f"  ... and {len(rep.bad) - 20} more (--json lists them)")

    ctx.emit(doc, render)
    return 0 if rep.ok else 1
