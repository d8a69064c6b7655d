"""Node, people, bodies, members and proposals: the commands that work offline.

Each command: parse, one call of the library (:mod:`imier.api`), render.
The rules live in the library; errors are turned into words once, in
:mod:`imier.cli.main`. Nothing here imports libp2p.
"""

from __future__ import annotations

import argparse
import time
import sys
from pathlib import Path
from typing import Any

from ..protocol.charter import DEFAULT_CHARTER
from ..protocol.errors import LocalError, Rejected
from ..protocol.events import BODY_KINDS, FEDERATION_KINDS, PROPOSAL_KINDS, Event, Found
from ..protocol.limits import MAX_TEXT
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
    p = key.add_parser("list", help="the people on this node",
                       description="The people whose keys this node holds: their names here and "
                       "their public keys (what others admit). '--as NAME' picks who signs.")
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
    p = body.add_parser("list", help="the bodies this node holds",
                        description="The bodies whose records this node holds (as a member, or "
                        "followed): name, kind, short id and member bodies.")
    add_json(p)
    p.set_defaults(func=cmd_body_list)
    p = body.add_parser("invitations", help="admissions of your people learnt from peers",
                        description="Bodies that admitted one of this node's people, learnt from a "
                        "peer, that this node does not hold: an admission alone is not a reason to "
                        "store a body (anyone can found one and admit you). 'imier body follow NAME' "
                        "accepts one. At most 64 are kept, each for a lunar month.")
    add_json(p)
    p.set_defaults(func=cmd_body_invitations)
    p = body.add_parser("show", help="a body: kind, charter, parts, members",
                        description="One body: its id, kind, every charter value in force at its "
                        "founding (defaults included), its member bodies and how many members it has.")
    p.add_argument("body", metavar="BODY", help="id, unique id prefix, or name")
    add_json(p)
    p.set_defaults(func=cmd_body_show)
    p = body.add_parser("follow", help="hold a body's record here without being a member",
                        description="Hold a body's record on this node without being a member "
                        "(a town's node following its municipality, an observer). The daemon "
                        "then syncs it from peers.")
    p.add_argument("body", metavar="BODY", help="full id, or a prefix/name of a body held here or "
                   "of an invitation ('imier body invitations')")
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
    p = mem.add_parser("leave", help="leave a body (always allowed)",
                       description="The signer leaves the body from now on. Always allowed; a member "
                       "vouches them in again to return.")
    p.add_argument("body", metavar="BODY")
    add_json(p)
    p.set_defaults(func=cmd_member_leave)
    p = mem.add_parser("list", help="the members of a body",
                       description="The members of a body now, by its record on this node, with "
                       "the names of those who sign on this node.")
    p.add_argument("body", metavar="BODY")
    add_json(p)
    p.set_defaults(func=cmd_member_list)

    p = sub.add_parser("propose", help="put a proposal to a body; prints its id",
                       description="Put a proposal to a body. It opens with a discussion period, "
                       "then the rounds of the charter (the procedure: docs/rules.md). Kinds: general "
                       "(default); charter (--set KEY=VALUE...); mandate (--holder --task --term "
                       "[--scope]); draw (--candidate... or --all-members, --seats --task); renew "
                       "(--committee); federate (--federation [--leave]); recover (--person "
                       "--new-key). An option of another kind is refused, not dropped.")
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
    p.add_argument("--all-members", action="store_true",
                   help="draw: over every member eligible when it is proposed")
    p.add_argument("--committee", metavar="BODY", help="renew: the committee to renew")
    p.add_argument("--federation", metavar="BODY", help="federate: the federation to join (or leave)")
    p.add_argument("--leave", action="store_true", help="federate: leave the federation instead")
    p.add_argument("--person", metavar="PUBKEY", help="recover: the person's first key")
    p.add_argument("--new-key", metavar="PUBKEY", help="recover: the key that replaces it")
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

    p = sub.add_parser("stand", help="change your standing during contention",
                       description="After a round passes, its contention phase is open: a member "
                       "may change their standing to no (or back to yes). If support falls below the "
                       "charter's contention_floor, the proposal is tabled (docs/rules.md).")
    p.add_argument("proposal", metavar="PROPOSAL")
    p.add_argument("choice", choices=("yes", "no"))
    add_json(p)
    p.set_defaults(func=cmd_stand)

    p = sub.add_parser("withdraw", help="withdraw your proposal (before round 1 closes)",
                       description="The proposer withdraws their proposal, at any time before round "
                       "1 closes. Nobody else can.")
    p.add_argument("proposal", metavar="PROPOSAL")
    add_json(p)
    p.set_defaults(func=cmd_withdraw)

    person = sub.add_parser("person", help="how you are shown, and your devices' keys",
                            description="A person is their first key, the one admitted. These "
                            "post in every body you belong to: a name, and the keys of devices "
                            "(a phone) that act for you (docs/rules.md).").add_subparsers(
        dest="person_cmd", metavar="ACTION", required=True)
    p = person.add_parser("name", help="how you are shown (in every body you belong to)",
                          description="Set the name people see beside your key, e.g. 'Ana (3f9c)', "
                          "in every body you belong to. The latest one counts.")
    p.add_argument("name", help="at most 64 characters")
    add_json(p)
    p.set_defaults(func=cmd_person_name)
    p = person.add_parser("link", help="a device key acting for you from now",
                          description="From now, the key PUBKEY (a device's, e.g. made in your "
                          "phone's browser) acts for you: its votes are yours, counted once.")
    p.add_argument("device", metavar="PUBKEY", help="64 hex digits")
    add_json(p)
    p.set_defaults(func=cmd_person_link)
    p = person.add_parser("unlink", help="a device key no longer acting for you",
                          description="From now, the key PUBKEY no longer acts for you (a lost or "
                          "replaced device).")
    p.add_argument("device", metavar="PUBKEY", help="64 hex digits")
    add_json(p)
    p.set_defaults(func=cmd_person_unlink)

    p = sub.add_parser("recall", help="open a recall vote on a mandate",
                       description="Open a recall vote on a mandate (a carried mandate or draw "
                       "proposal): one round, quorum, and a strict majority recalls it.")
    p.add_argument("mandate", metavar="MANDATE", help="the carried mandate or draw proposal")
    p.add_argument("--holder", required=True, metavar="PUBKEY", help="whose mandate")
    p.add_argument("--reason", required=True)
    add_json(p)
    p.set_defaults(func=cmd_recall)


# -- helpers --------------------------------------------------------------------------


def _kv(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise Rejected("bad_field", f"{item!r} is not KEY=VALUE", field=what,
                           hint=f"e.g. {what} quorum=1/3")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"--file: cannot read {args.file}: {exc.strerror}") from None
    if len(data) > MAX_TEXT * 4:
        raise LocalError(f"--file: {args.file} is too large (limit {MAX_TEXT} characters)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalError(f"--file: {args.file} is not UTF-8 text") from None


# -- node and people --------------------------------------------------------------------


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import init

    if ctx.home.exists() or ctx.home.node_key_path.exists():
        raise LocalError(f"{ctx.home.path} already holds an Imier node; refusing to overwrite it",
                         hint="use another --home for a second node")
    made = init(ctx.home, args.name, ctx.passphrase(confirm=True))
    print(f"Made node {made.name!r} at {made.path}")
    print(f"peer id: {made.peer_id}")
    print("Next: 'imier key new NAME' for each person who signs on this node.")
    return 0


def cmd_key_new(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import new_key

    ctx.home.require()
    sealed = new_key(ctx.home, args.name, ctx.passphrase())
    doc = {"name": sealed.name, "public_key": hexid(sealed.public)}
    if not ctx.json:
        sys.stderr.write(f"Made a key for {sealed.name}; give this public key to a member to be admitted:\n")
    ctx.emit(doc, lambda: print(hexid(sealed.public)))
    return 0


def cmd_key_list(ctx: Context, args: argparse.Namespace) -> int:
    from ..api import people as list_people

    people = list_people(ctx.home)
    warned = dict(ctx.home.key_warnings())  # readable by others: listed, and said on stderr
    doc: list[dict[str, Any]] = []
    for p in people:
        entry: dict[str, Any] = {"name": p.name, "public_key": hexid(p.public)}
        path = ctx.home.keys_dir / f"{p.name}.key"
        if path in warned:
            entry["warning"] = warned[path]
        doc.append(entry)
    problems = ctx.home.key_problems()  # damaged or odd files: listed with what is wrong
    for path, _ in problems:
        warned.pop(path, None)
    for path, problem in problems:
        doc.append({"name": path.stem, "public_key": None, "file": str(path), "problem": problem})
    for warning in warned.values():
        sys.stderr.write(f"warning: {warning}\n")

    def render() -> None:
        from rich.table import Table

        t = Table(title="People on this node")
        t.add_column("name")
        t.add_column("public key")
        for p in people:
            t.add_row(p.name, hexid(p.public))
        for path, problem in problems:
            t.add_row(path.stem, f"damaged: {problem}")
        ctx.console.print(t if doc else "No people yet: 'imier key new NAME'.")

    ctx.emit(doc, render)
    return 0


# -- bodies ------------------------------------------------------------------------------


def cmd_body_found(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.found(args.kind, args.name, charter=_kv(args.charter, "--charter"),
                                     parts=args.part, parent=args.parent))


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
    clerk = ctx.clerk
    bodies = clerk.bodies()
    follows = set(clerk.follows())
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
        n = len(clerk.invitations())
        if n:
            ctx.console.print(f"{n} invitation{'s' if n != 1 else ''} to bodies not held here: "
                              "'imier body invitations'")

    ctx.emit(doc, render)
    return 0


def cmd_body_invitations(ctx: Context, args: argparse.Namespace) -> int:
    invs = ctx.clerk.invitations()
    doc = [i.to_json() for i in invs]

    def render() -> None:
        from rich.table import Table

        if not invs:
            ctx.console.print("No invitations: no peer has told this node of an admission of its "
                              "people in a body it does not hold.")
            return
        t = Table(title="Invitations (admissions learnt from peers; not held)")
        for c in ("name", "kind", "id", "for", "admitted by", "expires"):
            t.add_column(c)
        for i in invs:
            t.add_row(i.name, i.kind, short(i.body), ctx.clerk.who(i.member), short(i.admitted_by),
                      time.strftime("%Y-%m-%d", time.gmtime(i.expires_ms() / 1000)))
        ctx.console.print(t)
        ctx.console.print("'imier body follow NAME' holds one here (its record is then synced from peers).")

    ctx.emit(doc, render)
    return 0


def cmd_body_show(ctx: Context, args: argparse.Namespace) -> int:
    body = ctx.clerk.resolve_body(args.body)
    doc = _body_doc(body)
    members = ctx.clerk.members(body.id)
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
    body_id = ctx.clerk.follow(args.body)
    print(f"Following {hexid(body_id)}; a running daemon syncs its record from peers.")
    return 0


# -- members -------------------------------------------------------------------------------


def cmd_member_admit(ctx: Context, args: argparse.Namespace) -> int:
    member: str = args.pubkey
    body = ctx.resolve_body(args.body)
    assert isinstance(body.data, Found)
    if body.data.body_kind not in FEDERATION_KINDS:
        from ..store.requests import resolve_member  # a join request's code (imier member requests)

        found = resolve_member(ctx.home.path, body.id, args.pubkey, now_ms=ctx.now_ms())
        if found is not None:
            from ..web.source import inside  # members and their linked devices

            if found in inside(ctx.store, body.id, ctx.now_ms()):
                raise LocalError(f"the phone with code {args.pubkey.strip()} is already in {body.data.name} "
                                 "(a member, or a device linked to one): nothing to admit")
            member = found.hex()
    return ctx.wrote(ctx.clerk.admit(args.body, member))


def cmd_member_leave(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.leave(args.body))


def cmd_member_list(ctx: Context, args: argparse.Namespace) -> int:
    clerk = ctx.clerk
    body = clerk.resolve_body(args.body)
    members = clerk.members(body.id)
    names = clerk.names()
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
    text = _text(args)
    return ctx.wrote(ctx.clerk.propose(
        args.body, title=args.title, text=text, kind=args.kind,
        charter=_kv(args.charter, "--set") or None, holder=args.holder, task=args.task,
        term=args.term, scope=args.scope, candidates=args.candidate, seats=args.seats,
        committee=args.committee, federation=args.federation,
        join=False if args.leave else None, person=args.person, new_key=args.new_key,
        all_members=args.all_members))


def cmd_amend(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.amend(args.proposal, _text(args)))


def cmd_vote(ctx: Context, args: argparse.Namespace) -> int:
    severity = "blocking" if args.blocking else ("minor" if args.minor else None)
    return ctx.wrote(ctx.clerk.vote(args.target, args.choice, severity=severity,
                                    category=args.category, delegate=args.delegate))


def cmd_stand(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.stand(args.proposal, args.choice))


def cmd_withdraw(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.withdraw(args.proposal))


def cmd_recall(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.recall(args.mandate, args.holder, args.reason))


def cmd_person_name(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.person_name(args.name))


def cmd_person_link(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.person_link(args.device))


def cmd_person_unlink(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.wrote(ctx.clerk.person_unlink(args.device))
