"""The `imier` command: parse, call one function, render (sqlite-utils style).

Command modules each expose ``register(sub)`` adding their parsers with
``set_defaults(func=...)``; a command function takes a :class:`Context` and
the parsed args and returns an exit code. Modules import heavy things
(consensus, libp2p) inside their functions, so `imier vote` stays quick.

Errors: any :class:`~imier.protocol.errors.ImierError` becomes one line on
stderr ("error: ...") and exit code 1; usage errors exit 2. Never a traceback
for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ..protocol.errors import ImierError
from . import carry, core
from .context import Context

__all__ = ["main", "build_parser"]

MODULES = [core, carry]


def _optional_modules() -> list[object]:
    mods: list[object] = []
    try:
        from . import decide  # consensus: status, simulate
    except ImportError:  # pragma: no cover - only while the module is being written
        decide = None  # type: ignore[assignment]
    if decide is not None:
        mods.append(decide)
    try:
        from . import net  # daemon, peers, sync, id
    except ImportError:  # pragma: no cover
        net = None  # type: ignore[assignment]
    if net is not None:
        mods.append(net)
    from . import web  # web, member requests (the web stack is imported when run)

    mods.append(web)
    return mods


DESCRIPTION = """\
Imier: signed proposals, votes and verdicts for neighbourhood assemblies.

A node keeps the record of the bodies its people belong to. People sign
proposals, amendments and votes with their own keys; nodes replicate the
signed events, and every node computes the same verdict.

Start here:
  imier init --name north-node          make this node's home
  imier key new ana                     a key for a person
  imier body found community North      found an assembly (prints its id)
  imier propose North --title T --text X
  imier vote PROPOSAL yes
  imier status                          where every proposal stands
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="imier",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--home",
        metavar="DIR",
        default=os.environ.get("IMIER_HOME"),
        help="the node's home (store, keys, config); default $IMIER_HOME or the user data dir",
    )
    p.add_argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        default=os.environ.get("IMIER_AS"),
        help="which person on this node signs (default $IMIER_AS; optional with one person)",
    )
    from .. import __version__

    p.add_argument("--version", action="version", version=f"imier {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in [*MODULES, *_optional_modules()]:
        mod.register(sub)  # type: ignore[attr-defined]
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    ctx = Context.from_args(args)
    try:
        return int(args.func(ctx, args) or 0)
    except ImierError as exc:
        ctx.error(str(exc))
        return 1
    except KeyboardInterrupt:
        ctx.error("interrupted; nothing was written")
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
