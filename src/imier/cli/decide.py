"""`imier status` and `imier simulate`: where proposals stand, and why.

Thin: parse, one library call (imier.api.read, imier.simulate), render with
imier.api.render (plain words for status, tables for simulate). Both judge with
the same tally; `simulate` only builds its events first. No libp2p here:
status answers at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol.errors import LocalError
from ..protocol.events import Event
from .context import Context, add_json, parse_time, short

if TYPE_CHECKING:
    from ..consensus import ProposalResult
    from ..store.db import Store

__all__ = ["register", "cmd_status", "cmd_simulate", "proposal_events"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status", help="where every proposal stands, round by round, and why",
        description="Show proposals of the bodies this node holds: their state in plain words, "
        "the text under decision, each round per body (who voted and who has not yet, yes/no/"
        "abstain with exact fractions, what it needs), grievances with their delegates, "
        "amendments and what they changed, what you can do now, and one sentence saying why. "
        "Votes that were not counted are listed with the reason. Results of closed windows are "
        "kept and reused until an event that can change them arrives; --verify recomputes.")
    p.add_argument("proposal", nargs="?", metavar="PROPOSAL", help="a proposal id (or 4+ hex digits)")
    p.add_argument("--as-of", metavar="TIME", help="ISO 8601 time or +DURATION from now (default: now)")
    p.add_argument("--open", action="store_true", help="only proposals with a window open now")
    p.add_argument("--body", metavar="BODY", help="only proposals of this body (name or id)")
    p.add_argument("--short", action="store_true", help="one line per proposal")
    p.add_argument("--verify", action="store_true",
                   help="recompute every result from scratch and say whether it matches the kept one")
    add_json(p)
    p.set_defaults(func=cmd_status)
    p = sub.add_parser(
        "simulate", help="replay an assembly from a scenario file (docs/scenarios.md)",
        description="Turn a scenario (bodies, a proposal, votes per round, contention) into real "
        "signed events in a throw-away store and judge them with the same tally as 'status'. "
        "Needs no home. A malformed scenario exits non-zero naming the field.")
    p.add_argument("file", type=Path, metavar="FILE")
    add_json(p)
    p.set_defaults(func=cmd_simulate)


# -- reading the store ------------------------------------------------------------------


def proposal_events(store: "Store", body: bytes) -> list[Event]:
    """The events a tally of a proposal in ``body`` needs from scratch: the body's closure
    (which includes the parents of committees, where renewals are decided)."""
    return store.events_for_bodies(store.closure(body))


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import read
    from .render import Namer, render_detail, render_short

    store = ctx.store
    store.small_cache()  # it reads (and keeps a few results): no import's page cache
    now = ctx.now_ms()
    as_of = parse_time(args.as_of, now) if args.as_of else now
    names = read.body_names(store)
    local = ctx.names()
    details: dict[bytes, read.Detail] = {}
    results: list[ProposalResult] = []
    if args.proposal:
        prop = ctx.resolve_event(args.proposal, kinds=("propose",), what="proposal")
        try:
            one = read.detail(store, prop.id, as_of)
        except read.Void as exc:
            raise LocalError(f"{short(prop.id)} is not a valid proposal: {exc}") from None
        details[prop.id] = one
        results.append(one.result)
    else:
        bodies = None
        if args.body:
            f = ctx.resolve_body(args.body)
            bodies = [f.id]
        results = read.statuses(store, as_of, bodies)
    if args.open:
        results = [r for r in results if r.window is not None]
    bad: list[bytes] = []
    if args.verify:
        checks = read.verify(store, [r.id for r in results], as_of)
        bad = [pid for pid, ok in checks if not ok]
    if ctx.json:
        docs = []
        for r in results:
            docs.append(read.document(store, r, as_of, names, details.get(r.id)))
        if args.proposal:
            out = docs[0]
        else:
            out = {"as_of": as_of, "proposals": docs}
        if args.verify:
            out["verified"] = {"checked": len(results), "mismatch": [b.hex() for b in bad]}
        ctx.emit(out)
        return 1 if bad else 0
    if not results:
        what = "open proposals" if args.open else "proposals"
        ctx.console.print(f"No {what} yet: 'imier propose BODY --title T --text X'.")
    if args.short:
        render_short(ctx.console, results, names, as_of)
    else:
        for r in results:
            d = details.get(r.id)
            profiles = d.names if d is not None else read.names_in(store, r.body)
            original = None
            if d is not None:
                p = store.get(r.id)
                original = getattr(p.data, "text", None) if p is not None else None
            from ..api.late import late_groups

            render_detail(ctx.console, r, names, Namer(profiles, local), as_of,
                          d.turnout if d is not None else (), full=d is not None, original=original,
                          late_events=late_groups(store, r))
    if args.verify:
        if bad:
            ctx.console.print(f"[red]Verify: {len(bad)} of {len(results)} kept result(s) differ from "
                              "the tally from scratch:[/red] " + ", ".join(short(b) for b in bad))
        else:
            ctx.console.print(f"Verify: all {len(results)} result(s) match the tally from scratch.")
    return 1 if bad else 0


def cmd_simulate(ctx: Context, args: argparse.Namespace) -> int:
    from ..simulate import load_file, simulate

    sim = simulate(load_file(args.file))
    if ctx.json:
        ctx.emit(sim.json())
    else:
        from ..api.render import render_result

        render_result(ctx.console, sim.result, sim.names)
    return 0
