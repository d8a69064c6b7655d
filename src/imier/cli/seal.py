"""`imier seal PROPOSAL [--window W]`: a teller closes the count (docs/rules.md s.10)."""

from __future__ import annotations

import argparse
from typing import Any

from ..protocol.errors import LocalError
from ..protocol.events import SEAL_WINDOWS
from .context import Context, add_json, short

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "seal", help="as a teller, seal the closed windows of a proposal",
        description="As a teller of the proposal's body (the holder of an in-force 'teller' "
        "mandate), seal every closed window of PROPOSAL (or of a recall) that you have not "
        "sealed yet: the seal names the events this node holds, and once more than half of "
        "the tellers have sealed a window, nothing that reached them after the close counts "
        "in it (docs/rules.md section 10). A running daemon seals by itself, seal_delay "
        "after each close (docs/operations.md).",
    )
    p.add_argument("proposal", metavar="PROPOSAL", help="a proposal or recall id (or unique prefix)")
    p.add_argument("--window", choices=SEAL_WINDOWS, help="only this window (r1, a2, r2, a3, r3, c, recall)")
    add_json(p)
    p.set_defaults(func=cmd_seal)


def cmd_seal(ctx: Context, args: argparse.Namespace) -> int:
    from ..nodeapp.autoseal import due_seals, seal_payloads

    target = ctx.resolve_event(args.proposal, kinds=("propose", "recall"), what="proposal or recall")
    clerk = ctx.clerk
    me = clerk.signer.public
    now = ctx.now_ms()
    due = [d for d in due_seals(ctx.store, [me], now, seal_delay=0, bodies=[target.body_id])
           if d.proposal == target.id and (args.window is None or d.window == args.window)]
    if not due:
        from ..nodeapp.autoseal import nothing_due

        raise LocalError(
            f"nothing to seal for {short(target.id)}: {nothing_due(ctx.store, me, target, now, args.window)}",
            hint=f"'imier status {short(target.id)}' shows its windows and whether they are sealed")
    sealed: list[dict[str, Any]] = []
    for d in due:
        for payload in seal_payloads(ctx.store, d, now):
            ev = clerk._sign(d.body, payload, now)  # seals need no rule check beyond due_seals
            sealed.append({"id": ev.id.hex(), "window": d.window, "proposal": d.proposal.hex(),
                           "heads": len(payload.heads)})
    ctx.nudge()
    doc = {"sealed": sealed}

    def render() -> None:
        for s in sealed:
            print(f"sealed {s['window']} of {s['proposal'][:12]} ({s['heads']} heads named)")

    ctx.emit(doc, render)
    return 0
