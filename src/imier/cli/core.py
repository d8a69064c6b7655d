"""Node, people, bodies, members and proposals: the commands that work offline.

Each command: parse, build one event (or read), hand it to the store, render.
Nothing here imports libp2p.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..protocol.charter import DEFAULT_CHARTER, parse_changes, parse_duration_ms
from ..protocol.errors import LocalError, Rejected
from ..protocol.events import (
    BODY_KINDS,
    FEDERATION_KINDS,
    PROPOSAL_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Payload,
    Propose,
    Recall,
    Stand,
    Vote,
    Withdraw,
)
from ..protocol.limits import MAX_TEXT
from ..protocol.peerid import peer_id
from ..store.author import author_event
from .context import Context, add_json, hexid, short

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="make this node's home (identity, store, config)",
                       description="Make the node's home: its libp2p identity (an Ed25519 key "
                       "sealed with your passphrase), an empty store and a config file. "
                       "Refuses to overwrite an existing home.")
    p.add_argument("--name", default="imier-node", help="a name for this node (shown to peers)")
    p.set_defaults(func=cmd_init)

    key = sub.add_parser("key", help="people's keys on this node").add_subparsers(
        dest="key_cmd", metavar="ACTION", required=True)
    p = key.add_parser("new", help="make a key for a person; prints the public key",
                       description="Make an Ed25519 key for a person, sealed with the passphrase. "
                       "Give the printed public key to a member of your assembly to be admitted.")
    p.add_argument("name", help="the person's name on this node (letters, digits, . _ -)")
    add_json(p)
    p.set_defaults(func=cmd_key_new)
    p = key.add_parser("list", help="the people on this node")
    add_json(p)
    p.set_defaults(func=cmd_key_list)

    body = sub.add_parser("body", help="found, list, show and follow bodies").add_subparsers(
        dest="body_cmd", metavar="ACTION", required=True)
    p = body.add_parser("found", help="found a body; prints its id",
                        description="Found a body. KIND is community, workplace or committee "
                        "(people are members) or municipality, region or collective (bodies "
                        "are members: name them with --part). The founder is the first member "
                        "of a base body.\n\nCharter values: ratios a/b, durations in seconds or "
                        "with a unit (90s, 10m, 3d), combine=verdicts|support|population.",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=BODY_KINDS, metavar="KIND", help=", ".join(BODY_KINDS))
    p.add_argument("name", help="the body's name, e.g. 'North'")
    p.add_argument("--charter", action="append", default=[], metavar="KEY=VALUE",
                   help="change a charter key from its default (repeatable)")
    p.add_argument("--part", action="append", default=[], metavar="BODY",
                   help="a member body of a federation (id, id prefix or name; repeatable)")
    p.add_argument("--parent", metavar="BODY", help="for a committee: the body that set it up")
    add_json(p)
    p.set_defaults(func=cmd_body_found)
    p = body.add_parser("list", help="the bodies this node holds")
    add_json(p)
    p.set_defaults(func=cmd_body_list)
    p = body.add_parser("show", help="a body: kind, charter, parts, members")
    p.add_argument("body", metavar="BODY", help="id, unique id prefix, or name")
    add_json(p)
    p.set_defaults(func=cmd_body_show)
    p = body.add_parser("follow", help="hold a body's record here without being a member",
                        description="Hold a body's record on this node without being a member "
                        "(a town's node following its municipality, an observer). The daemon "
                        "then syncs it from peers.")
    p.add_argument("body", metavar="BODY", help="full id (or a prefix/name if already held)")
    p.set_defaults(func=cmd_body_follow)

    mem = sub.add_parser("member", help="admit, leave and list members").add_subparsers(
        dest="member_cmd", metavar="ACTION", required=True)
    p = mem.add_parser("admit", help="vouch a new member in (you must be a member)",
                       description="An existing member vouches a new member into a base body "
                       "(PUBKEY is the person's public key, as printed by 'imier key new'), or a "
                       "body into a federation (PUBKEY is then the member body's id).")
    p.add_argument("body", metavar="BODY")
    p.add_argument("pubkey", metavar="PUBKEY", help="64 hex digits, the name of a person on this node, "
                   "or the code of a join request ('imier member requests')")
    add_json(p)
    p.set_defaults(func=cmd_member_admit)
    p = mem.add_parser("leave", help="leave a body (always allowed)")
    p.add_argument("body", metavar="BODY")
    add_json(p)
    p.set_defaults(func=cmd_member_leave)
    p = mem.add_parser("list", help="the members of a body")
    p.add_argument("body", metavar="BODY")
    add_json(p)
    p.set_defaults(func=cmd_member_list)

    p = sub.add_parser("propose", help="put a proposal to a body; prints its id",
                       description="Put a proposal to a body. It opens with a discussion period, "
                       "then the rounds of the charter (DECISIONS.md). Kinds: general (default); "
                       "charter (--set KEY=VALUE...); mandate (--holder --task --term); draw "
                       "(--candidate... --seats --task); renew (--committee).")
    p.add_argument("body", metavar="BODY")
    p.add_argument("--title", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--file", type=Path, help="read the text from a file")
    p.add_argument("--kind", default="general", choices=PROPOSAL_KINDS)
    p.add_argument("--set", dest="charter", action="append", default=[], metavar="KEY=VALUE",
                   help="charter proposals: the change (repeatable)")
    p.add_argument("--holder", metavar="PUBKEY", help="mandate: who receives it")
    p.add_argument("--task", help="mandate or draw: what the mandate is for")
    p.add_argument("--term", metavar="DURATION", help="mandate: how long (at most the charter's mandate_term)")
    p.add_argument("--scope", metavar="ID", help="mandate: the proposal or federation it serves")
    p.add_argument("--candidate", action="append", default=[], metavar="PUBKEY", help="draw: a candidate")
    p.add_argument("--seats", type=int, help="draw: how many are drawn")
    p.add_argument("--committee", metavar="BODY", help="renew: the committee to renew")
    add_json(p)
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("amend", help="propose an amendment (the full new text); prints its id",
                       description="Propose an amendment to a proposal during an amendment window "
                       "(before rounds 2 and 3). The amendment is the full new text; adopted "
                       "amendments apply in (timestamp, id) order.")
    p.add_argument("proposal", metavar="PROPOSAL")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--file", type=Path)
    add_json(p)
    p.set_defaults(func=cmd_amend)

    p = sub.add_parser("vote", help="vote on a proposal's open round, an amendment or a recall",
                       description="Vote yes, no or abstain. A 'no' is an objection: --minor (the "
                       "default: not a deal-breaker) or --blocking (a deal-breaker), with a "
                       "--category (e.g. cost) and optionally a --delegate to plead it. You may "
                       "change your vote while the window is open; the last one counts.")
    p.add_argument("target", metavar="ID", help="a proposal (its open round), an amendment or a recall")
    p.add_argument("choice", choices=("yes", "no", "abstain"))
    sev = p.add_mutually_exclusive_group()
    sev.add_argument("--minor", action="store_true", help="not a deal-breaker (default for no)")
    sev.add_argument("--blocking", action="store_true", help="a deal-breaker")
    p.add_argument("--category", help="what the objection is about (lowercase, e.g. cost)")
    p.add_argument("--delegate", metavar="PUBKEY", help="the member you want to plead your category")
    add_json(p)
    p.set_defaults(func=cmd_vote)

    p = sub.add_parser("stand", help="change your standing during contention")
    p.add_argument("proposal", metavar="PROPOSAL")
    p.add_argument("choice", choices=("yes", "no"))
    add_json(p)
    p.set_defaults(func=cmd_stand)

    p = sub.add_parser("withdraw", help="withdraw your proposal (before round 1 closes)")
    p.add_argument("proposal", metavar="PROPOSAL")
    add_json(p)
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser("recall", help="open a recall vote on a mandate",
                       description="Open a recall vote on a mandate (a carried mandate or draw "
                       "proposal): one round, quorum, and a strict majority recalls it.")
    p.add_argument("mandate", metavar="MANDATE", help="the proposal that gave the mandate")
    p.add_argument("--holder", required=True, metavar="PUBKEY", help="whose mandate")
    p.add_argument("--reason", required=True)
    add_json(p)
    p.set_defaults(func=cmd_recall)


# -- helpers --------------------------------------------------------------------------


def _pubkey(text: str, what: str, ctx: Context | None = None) -> bytes:
    """64 hex digits, or the name of a person on this node."""
    if ctx is not None and ctx.home.exists():
        for p in ctx.home.people():
            if p.name == text.strip():
                return p.public
    t = text.strip().lower()
    try:
        b = bytes.fromhex(t)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise LocalError(f"{what}: {text!r} is not a public key", hint="64 hex digits, as 'imier key new' prints")
    return b


def _kv(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise LocalError(f"{what}: {item!r} is not KEY=VALUE", hint="e.g. --charter quorum=1/3")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise LocalError(f"--file: cannot read {args.file}: {exc.strerror}") from None
    if len(data) > MAX_TEXT * 4:
        raise LocalError(f"--file: {args.file} is too large (limit {MAX_TEXT} characters)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalError(f"--file: {args.file} is not UTF-8 text") from None


def _make(ctx: Context, body: bytes | None, data_factory: Any) -> Event:
    """Build the payload (validation errors name the field), sign, ingest; nothing written on error."""
    try:
        data: Payload = data_factory()
    except Rejected as exc:
        raise LocalError(str(exc)) from None
    key = ctx.signer()
    try:
        return author_event(ctx.store, key, body=body, data=data, ts=ctx.now_ms())
    except Rejected as exc:
        raise LocalError(str(exc)) from None


def _created(ctx: Context, ev: Event, what: str) -> int:
    # A running daemon publishes the outbox within a quarter second anyway;
    # the nudge makes it now. No daemon: the event waits in the outbox.
    if ctx.home.socket_path.exists():
        from ..nodeapp.control import request

        request(ctx.home.socket_path, {"cmd": "nudge"}, timeout=0.5)
    ctx.emit({"id": hexid(ev.id), "kind": ev.kind, "body": hexid(ev.body_id), "ts": ev.ts},
             lambda: print(hexid(ev.id)))
    return 0


# -- node and people --------------------------------------------------------------------


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    if ctx.home.exists() or ctx.home.node_key_path.exists():
        raise LocalError(f"{ctx.home.path} already holds an Imier node; refusing to overwrite it",
                         hint="use another --home for a second node")
    key = ctx.home.create(args.name, ctx.passphrase(confirm=True))
    pid = peer_id(bytes(key.verify_key))
    print(f"Made node {args.name!r} at {ctx.home.path}")
    print(f"peer id: {pid}")
    print("Next: 'imier key new NAME' for each person who signs on this node.")
    return 0


def cmd_key_new(ctx: Context, args: argparse.Namespace) -> int:
    home = ctx.home.require()
    sealed = home.new_person(args.name, ctx.passphrase())
    ctx.emit({"name": sealed.name, "public_key": hexid(sealed.public)}, lambda: print(hexid(sealed.public)))
    return 0


def cmd_key_list(ctx: Context, args: argparse.Namespace) -> int:
    people = ctx.home.require().people()
    doc = [{"name": p.name, "public_key": hexid(p.public)} for p in people]

    def render() -> None:
        from rich.table import Table

        t = Table(title="People on this node")
        t.add_column("name")
        t.add_column("public key")
        for p in people:
            t.add_row(p.name, hexid(p.public))
        ctx.console.print(t if people else "No people yet: 'imier key new NAME'.")

    ctx.emit(doc, render)
    return 0


# -- bodies ------------------------------------------------------------------------------


def cmd_body_found(ctx: Context, args: argparse.Namespace) -> int:
    changes = _kv(args.charter, "--charter")
    try:
        DEFAULT_CHARTER.with_changes(changes)  # the whole charter must be coherent
    except Rejected as exc:
        raise LocalError(str(exc)) from None
    if args.part and args.kind not in FEDERATION_KINDS:
        raise LocalError(f"--part: a {args.kind} has people as members, not bodies",
                         hint="use municipality, region or collective for a federation")
    parts = sorted({ctx.resolve_body(p).id for p in args.part})
    parent = ctx.resolve_body(args.parent).id if args.parent else None
    if parent is not None and args.kind != "committee":
        raise LocalError("--parent: only a committee has a parent body")
    canon = {k: v for k, v in DEFAULT_CHARTER.with_changes(changes).to_wire().items() if k in changes}
    ev = _make(ctx, None, lambda: Found(body_kind=args.kind, name=args.name, charter=canon,
                                         parts=tuple(parts), parent=parent))
    return _created(ctx, ev, "body")


def _body_doc(ev: Event) -> dict[str, Any]:
    assert isinstance(ev.data, Found)
    return {
        "id": hexid(ev.id), "kind": ev.data.body_kind, "name": ev.data.name,
        "founded": ev.ts, "founder": hexid(ev.author),
        "charter": DEFAULT_CHARTER.with_changes(ev.data.charter).to_wire(),
        "parts": [hexid(p) for p in ev.data.parts],
        "parent": hexid(ev.data.parent) if ev.data.parent else None,
    }


def cmd_body_list(ctx: Context, args: argparse.Namespace) -> int:
    bodies = ctx.store.bodies()
    follows = set(ctx.store.follows())
    doc = [{**_body_doc(b), "followed": b.id in follows} for b in bodies]

    def render() -> None:
        from rich.table import Table

        t = Table(title="Bodies held on this node")
        for c in ("name", "kind", "id", "parts"):
            t.add_column(c)
        names = {b.id: b.data.name for b in bodies if isinstance(b.data, Found)}
        for b in bodies:
            assert isinstance(b.data, Found)
            parts = ", ".join(names.get(p, short(p)) for p in b.data.parts)
            t.add_row(b.data.name, b.data.body_kind, short(b.id), parts)
        ctx.console.print(t if bodies else "No bodies yet: 'imier body found KIND NAME', or sync/import.")

    ctx.emit(doc, render)
    return 0


def _members(ctx: Context, body: Event) -> list[bytes]:
    from ..consensus import members_at

    events = ctx.store.events_for_bodies([body.id])
    return sorted(members_at(events, body.id, ctx.now_ms()))


def cmd_body_show(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.resolve_body(args.body)
    doc = _body_doc(body)
    members = _members(ctx, body)
    doc["members"] = [hexid(m) for m in members]

    def render() -> None:
        from rich.table import Table

        t = Table(title=f"{doc['name']} ({doc['kind']})", show_header=False)
        t.add_column("key")
        t.add_column("value")
        t.add_row("id", doc["id"])
        t.add_row("members", str(len(members)))
        for k, v in doc["charter"].items():
            t.add_row(f"charter {k}", str(v))
        for p in doc["parts"]:
            t.add_row("part", p)
        ctx.console.print(t)

    ctx.emit(doc, render)
    return 0


def cmd_body_follow(ctx: Context, args: argparse.Namespace) -> int:
    t = args.body.strip().lower()
    if len(t) == 64:
        try:
            body_id = bytes.fromhex(t)
        except ValueError:
            raise LocalError(f"{args.body!r} is not a body id") from None
    else:
        body_id = ctx.resolve_body(args.body).id
    ctx.store.follow(body_id)
    print(f"Following {hexid(body_id)}; a running daemon syncs its record from peers.")
    return 0


# -- members -------------------------------------------------------------------------------


def cmd_member_admit(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.resolve_body(args.body)
    assert isinstance(body.data, Found)
    if body.data.body_kind in FEDERATION_KINDS:
        from ..protocol.events import Part

        part = ctx.resolve_body(args.pubkey).id
        ev = _make(ctx, body.id, lambda: Part(part=part, join=True))
        return _created(ctx, ev, "part")
    from ..store.requests import resolve_member  # a join request's code (imier member requests)

    member = resolve_member(ctx.home.path, body.id, args.pubkey, now_ms=ctx.now_ms()) or \
        _pubkey(args.pubkey, "PUBKEY", ctx)
    key = ctx.signer()
    me = bytes(key.verify_key)
    current = _members(ctx, body)
    if me not in current:
        raise LocalError(f"you are not a member of {body.data.name}, so you cannot vouch for anyone",
                         hint="ask an existing member to admit them")
    if member in current:
        raise LocalError(f"{args.pubkey[:12]}… is already a member of {body.data.name}")
    ev = author_event(ctx.store, key, body=body.id, data=Admit(member=member), ts=ctx.now_ms())
    return _created(ctx, ev, "admission")


def cmd_member_leave(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.resolve_body(args.body)
    ev = _make(ctx, body.id, Leave)
    return _created(ctx, ev, "leave")


def cmd_member_list(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.resolve_body(args.body)
    members = _members(ctx, body)
    names = ctx.names()
    doc = {"body": hexid(body.id), "members": [
        {"public_key": hexid(m), "name": names.get(m)} for m in members]}

    def render() -> None:
        from rich.table import Table

        assert isinstance(body.data, Found)
        t = Table(title=f"Members of {body.data.name}")
        t.add_column("public key")
        t.add_column("on this node as")
        for m in members:
            t.add_row(hexid(m), names.get(m, ""))
        ctx.console.print(t)

    ctx.emit(doc, render)
    return 0


# -- proposals -------------------------------------------------------------------------------


def cmd_propose(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.resolve_body(args.body)
    text = _text(args)
    kind = args.kind
    extra: dict[str, Any] = {}
    if kind == "charter":
        changes = _kv(args.charter, "--set")
        if not changes:
            raise LocalError("--set: a charter proposal names at least one KEY=VALUE")
        try:
            parse_changes(changes)
        except Rejected as exc:
            raise LocalError(str(exc)) from None
        extra["charter"] = changes
    if kind == "mandate":
        if not (args.holder and args.task and args.term):
            raise LocalError("a mandate proposal needs --holder, --task and --term")
        extra.update(holder=_pubkey(args.holder, "--holder", ctx), task=args.task,
                     term_ms=_duration(args.term, "--term"))
        if args.scope:
            extra["scope"] = bytes.fromhex(args.scope) if len(args.scope) == 64 else \
                ctx.resolve_body(args.scope).id
    if kind == "draw":
        if not (args.candidate and args.seats and args.task):
            raise LocalError("a draw proposal needs --candidate (one or more), --seats and --task")
        extra.update(candidates=tuple(sorted({_pubkey(c, "--candidate", ctx) for c in args.candidate})),
                     k=args.seats, task=args.task)
    if kind == "renew":
        if not args.committee:
            raise LocalError("a renew proposal needs --committee")
        extra["committee"] = ctx.resolve_body(args.committee).id
    ev = _make(ctx, body.id, lambda: Propose(title=args.title, text=text, proposal_kind=kind, **extra))
    return _created(ctx, ev, "proposal")


def _duration(text: str, what: str) -> int:
    try:
        return parse_duration_ms(text, field=what)
    except Rejected as exc:
        raise LocalError(str(exc)) from None


def _open(ctx: Context, proposal: Event, *, phases: tuple[str, ...], doing: str) -> Any:
    """Refuse, with the reason, unless the proposal has one of ``phases`` open now."""
    from ..consensus import tally_proposal

    store = ctx.store
    events = store.events_for_bodies(store.closure(proposal.body_id))
    result = tally_proposal(events, proposal.id, ctx.now_ms())
    if result.open_phase not in phases:
        now = result.open_phase or result.state
        raise LocalError(
            f"cannot {doing}: the proposal is in {now}, not open for that",
            hint="'imier status " + short(proposal.id) + "' shows its windows",
        )
    return result


def cmd_amend(ctx: Context, args: argparse.Namespace) -> int:
    prop = ctx.resolve_event(args.proposal, kinds=("propose",), what="proposal")
    text = _text(args)
    _open(ctx, prop, phases=("amend",), doing="amend")
    assert isinstance(prop.data, Propose)
    ev = _make(ctx, prop.body_id, lambda: Amend(proposal=prop.id, text=text))
    return _created(ctx, ev, "amendment")


def cmd_vote(ctx: Context, args: argparse.Namespace) -> int:
    target = ctx.resolve_event(args.target, kinds=("propose", "amend", "recall"), what="proposal, amendment or recall")
    if args.choice != "no" and (args.minor or args.blocking or args.category or args.delegate):
        raise LocalError("--minor, --blocking, --category and --delegate go with a 'no' vote only")
    if target.kind == "propose":
        _open(ctx, target, phases=("vote",), doing="vote")
    elif target.kind == "amend":
        assert isinstance(target.data, Amend)
        prop = ctx.store.get(target.data.proposal)
        if prop is None:
            raise LocalError("this node does not hold the proposal of that amendment", hint="sync first")
        _open(ctx, prop, phases=("amend",), doing="vote on the amendment")
    severity = category = delegate = None
    if args.choice == "no":
        severity = "blocking" if args.blocking else "minor"
        category = (args.category or "other").strip().lower()
        delegate = _pubkey(args.delegate, "--delegate", ctx) if args.delegate else None
    ev = _make(ctx, target.body_id, lambda: Vote(target=target.id, choice=args.choice, severity=severity,
                                                 category=category, delegate=delegate))
    return _created(ctx, ev, "vote")


def cmd_stand(ctx: Context, args: argparse.Namespace) -> int:
    prop = ctx.resolve_event(args.proposal, kinds=("propose",), what="proposal")
    _open(ctx, prop, phases=("contention",), doing="change your standing")
    ev = _make(ctx, prop.body_id, lambda: Stand(proposal=prop.id, choice=args.choice))
    return _created(ctx, ev, "standing")


def cmd_withdraw(ctx: Context, args: argparse.Namespace) -> int:
    prop = ctx.resolve_event(args.proposal, kinds=("propose",), what="proposal")
    key = ctx.signer()
    if prop.author != bytes(key.verify_key):
        raise LocalError("only the proposer may withdraw a proposal")
    result = _open(ctx, prop, phases=("discussion", "vote"), doing="withdraw")
    if result.open_phase == "vote" and result.round != 1:
        raise LocalError("cannot withdraw: round 1 has closed (DECISIONS.md s.3)")
    ev = author_event(ctx.store, key, body=prop.body_id, data=Withdraw(proposal=prop.id), ts=ctx.now_ms())
    return _created(ctx, ev, "withdrawal")


def cmd_recall(ctx: Context, args: argparse.Namespace) -> int:
    prop = ctx.resolve_event(args.mandate, kinds=("propose",), what="mandate proposal")
    holder = _pubkey(args.holder, "--holder", ctx)
    ev = _make(ctx, prop.body_id, lambda: Recall(mandate=prop.id, holder=holder, reason=args.reason))
    return _created(ctx, ev, "recall")

