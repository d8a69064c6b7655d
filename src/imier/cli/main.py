"""The `imier` command: parse, call one function, render (sqlite-utils style).

Command modules each expose ``register(sub)`` adding their parsers with
``set_defaults(func=...)``; a command function takes a :class:`Context` and
the parsed args and returns an exit code. Modules import heavy things
(consensus, libp2p) inside their functions, so `imier vote` stays quick.

Errors are turned into words here and only here (:func:`say_error`): any
:class:`~imier.protocol.errors.ImierError` becomes one line on stderr
("error: ...") and exit code 1; a :class:`Rejected` keeps its code and names
the option the person typed (``data.k`` is ``--seats``). Any other error is
the store's to explain (:meth:`~imier.store.home.Home.explain`: a full disk, a
busy or damaged store) in one line saying what to do; what it cannot explain
is a bug and keeps its traceback. Usage errors exit 2,
with "did you mean" for a mistyped command. Never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import textwrap
from typing import Sequence

from ..protocol.errors import ImierError, RemoteError
from . import admin, carry, core, seal
from .context import Context

__all__ = ["main", "build_parser", "say_error", "EXAMPLES", "OPTION_OF"]

MODULES = [core, carry, admin, seal]


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


#: The option a person typed, for each field the library or the protocol names.
OPTION_OF = {
    "body": "BODY", "parts": "--part", "parent": "--parent", "charter": "--set",
    "holder": "--holder", "task": "--task", "term": "--term", "scope": "--scope",
    "candidates": "--candidate", "seats": "--seats", "committee": "--committee",
    "federation": "--federation", "join": "--leave", "person": "--person", "new_key": "--new-key",
    "all_members": "--all-members", "kind": "--kind", "member": "PUBKEY", "choice": "CHOICE",
    "severity": "--minor/--blocking", "category": "--category", "delegate": "--delegate",
    "proposal": "PROPOSAL", "mandate": "MANDATE", "id": "ID", "file": "FILE",
    "data.title": "--title", "data.text": "--text", "data.k": "--seats", "data.task": "--task",
    "data.term_ms": "--term", "data.name": "NAME", "data.category": "--category",
    "data.reason": "--reason", "data.candidates": "--candidate", "device": "PUBKEY",
}


def say_error(exc: ImierError) -> str:
    """The one line a person reads for a refused command."""
    if isinstance(exc, RemoteError) and exc.field:
        option = OPTION_OF.get(exc.field, exc.field)
        prefix = f"{exc.field}: "
        message = exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message
        line = f"{option}: {message}"
        return f"{line} ({exc.hint})" if exc.hint else line
    return str(exc)


_CHOICE_RE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        m = _CHOICE_RE.search(message)
        if m:
            typed, options = m.group(1), re.findall(r"'([^']*)'", m.group(2))
            near = difflib.get_close_matches(typed, options, n=1, cutoff=0.6)
            if near:
                message = f"{self.prog}: no command {typed!r}; did you mean '{near[0]}'?"
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


class _Help(argparse.HelpFormatter):
    """Wraps each paragraph of a description; keeps indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n\n".join(out)


#: Examples shown at the foot of each command's --help.
EXAMPLES: dict[str, list[str]] = {
    "init": ["imier init --name north-laptop"],
    "key new": ["imier key new ana"],
    "key list": ["imier key list --json"],
    "body found": ["imier body found community North --charter quorum=1/3",
                   "imier body found municipality Riverside --part North --part East"],
    "body list": ["imier body list"],
    "body show": ["imier body show North"],
    "body follow": ["imier body follow 3f9c...  (the full 64-hex id of a body a peer holds)",
                    "imier body follow North  (accept an invitation: 'imier body invitations')"],
    "body invitations": ["imier body invitations", "imier body invitations --json"],
    "member admit": ["imier --as ana member admit North ben",
                     "imier member admit North 5be1...  (the new member's public key)"],
    "member leave": ["imier --as ben member leave North"],
    "member list": ["imier member list North"],
    "propose": ['P=$(imier propose North --title "Tool library" --text "We open a tool library.")',
                "imier propose North --kind charter --title Quorum --text 'A third' --set quorum=1/3",
                "imier propose North --kind draw --title Tellers --text T --task teller --seats 2 "
                "--all-members"],
    "amend": ['imier amend $P --text "We open a tool library, paid from the repair budget."'],
    "vote": ["imier vote $P yes", "imier vote $P no --blocking --category cost",
             "imier vote $AMENDMENT yes"],
    "stand": ["imier stand $P no"],
    "withdraw": ["imier withdraw $P"],
    "recall": ["imier recall $MANDATE --holder ben --reason 'never reported back'"],
    "status": ["imier status", "imier status $P --as-of +3d --json"],
    "backup": ["imier backup /var/backups/imier-$(date +%F).sqlite3   (safe while the daemon runs)",
               "imier backup copy.sqlite3 --force"],
    "verify": ["imier verify", "imier verify --json"],
    "seal": ["imier seal 3f9c2a1b   (every closed window you have not sealed)",
             "imier seal 3f9c2a1b --window r1 --json"],
    "simulate": ["imier simulate tests/scenarios/01_simulate_md_example.json  (format: docs/scenarios.md)"],
    "export": ["imier export north.bundle --body North", "imier export north.bundle --force"],
    "import": ["imier import north.bundle --json"],
    "daemon": ["imier daemon --listen /ip4/0.0.0.0/tcp/4001 --no-mdns"],
    "peers": ["imier peers --json"],
    "sync": ["imier sync /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW..."],
    "id": ["imier id"],
    "person name": ['imier --as ana person name "Ana Lima"'],
    "person link": ["imier --as ana person link 7d2e...  (the phone's public key)"],
    "person unlink": ["imier --as ana person unlink 7d2e..."],
}


def _decorate(p: argparse.ArgumentParser, path: str) -> None:
    """Give every command page the wrapping formatter and its examples."""
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                full = f"{path} {name}".strip()
                sp.formatter_class = _Help
                if full in EXAMPLES and not sp.epilog:
                    sp.epilog = "Examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[full])
                _decorate(sp, full)


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
    _decorate(p, "")
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
        ctx.error(say_error(exc))
        return 1
    except Exception as exc:  # the store says whether the world or a damaged store caused it
        err = ctx.home.explain(exc)
        if err is None:
            raise  # a bug: keep its traceback
        ctx.error(say_error(err))
        return 1
    except KeyboardInterrupt:
        ctx.error("interrupted; nothing was written")
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
