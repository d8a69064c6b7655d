"""Carrying events by hand: `imier export` and `imier import` (bundles on a USB stick)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..api.carry import MAX_BUNDLE_BYTES
from .context import Context, add_json

__all__ = ["register", "MAX_BUNDLE_BYTES"]


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write a bundle of signed events to a file",
                       description="Write the signed events this node holds (all, or those of "
                       "the named bodies and the bodies under them) to a bundle file, to carry "
                       "to another node: 'imier import FILE' there.")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--body", action="append", default=[], metavar="BODY",
                   help="only this body and the bodies under it (repeatable)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_json(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="verify and import a bundle of signed events",
                       description="Verify every event of a bundle and import the good ones. "
                       "Prints how many were new, already held, and rejected (with reasons). "
                       "A file that is not a bundle, or is damaged, is refused whole and "
                       "nothing is written.")
    p.add_argument("file", type=Path, metavar="FILE")
    add_json(p)
    p.set_defaults(func=cmd_import)


def cmd_export(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import export_file

    bodies = [ctx.resolve_body(b).id for b in args.body] if args.body else None
    done = export_file(ctx.store, args.file, bodies, force=args.force)
    ctx.emit(done.to_json(), lambda: print(f"Wrote {done.events} events ({done.bytes} bytes) to {args.file}"))
    return 0


def cmd_import(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import import_file

    cfg = ctx.home.config()
    doc = import_file(ctx.store, args.file, now_ms=ctx.now_ms(), max_skew_ms=cfg.max_skew_ms,
                      limits=cfg.intake_limits())

    def render() -> None:
        print(f"{doc['new']} new, {doc['held']} already held, {len(doc['rejected'])} rejected"
              + (f" ({doc['pending']} waiting for earlier events)" if doc["pending"] else ""))
        for r in doc["rejected"][:20]:
            print(f"  rejected {r['id'][:12]}: {r['reason']}")
        if len(doc["rejected"]) > 20:
            print(f"  ... and {len(doc['rejected']) - 20} more (--json lists all)")

    ctx.emit(doc, render)
    return 0
