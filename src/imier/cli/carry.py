"""Carrying events by hand: `imier export` and `imier import` (bundles on a USB stick)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..protocol.bundle import write_bundle
from ..protocol.errors import LocalError, RemoteError
from ..store.intake import import_bundle
from .context import Context, add_json

__all__ = ["register", "MAX_BUNDLE_BYTES"]

MAX_BUNDLE_BYTES = 2 * 1024**3


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write a bundle of signed events to a file",
                       description="Write the signed events this node holds (all, or those of "
                       "the named bodies and the bodies under them) to a bundle file, to carry "
                       "to another node: 'imier import FILE' there.")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--body", action="append", default=[], metavar="BODY",
                   help="only this body and the bodies under it (repeatable)")
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
    store = ctx.store
    bodies: set[bytes] | None = None
    if args.body:
        bodies = set()
        for b in args.body:
            bodies |= store.closure(ctx.resolve_body(b).id)
    raws = list(store.raw_for_bodies(bodies))
    data = write_bundle(raws)
    tmp = args.file.with_name(args.file.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.file)
    except OSError as exc:
        raise LocalError(f"cannot write {args.file}: {exc.strerror}") from None
    doc = {"file": str(args.file), "events": len(raws), "bytes": len(data)}
    ctx.emit(doc, lambda: print(f"Wrote {len(raws)} events ({len(data)} bytes) to {args.file}"))
    return 0


def cmd_import(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    try:
        size = args.file.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise LocalError(f"{args.file} is {size} bytes; bundles are at most {MAX_BUNDLE_BYTES}")
        data = args.file.read_bytes()
    except OSError as exc:
        raise LocalError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        cfg = ctx.home.config()
        doc = import_bundle(store, data, now_ms=ctx.now_ms(), max_skew_ms=cfg.max_skew_ms,
                            source=f"bundle:{args.file.name}", limits=cfg.intake_limits())
    except RemoteError as exc:
        raise LocalError(f"{args.file}: {exc}; nothing was imported") from None

    def render() -> None:
        print(f"{doc['new']} new, {doc['held']} already held, {len(doc['rejected'])} rejected"
              + (f" ({doc['pending']} waiting for earlier events)" if doc["pending"] else ""))
        for r in doc["rejected"][:20]:
            print(f"  rejected {r['id'][:12]}: {r['reason']}")
        if len(doc["rejected"]) > 20:
            print(f"  ... and {len(doc['rejected']) - 20} more (--json lists all)")

    ctx.emit(doc, render)
    return 0
