"""`imier status` for people at a meeting: plain words, names, and what to do now.

Rules:

1. A person is shown as ``Name (3f9c)``: the latest ``profile`` name in the
   body's record, else the name of the key on this node, always with the
   first four hex digits of the key (two people may pick one name). Unnamed
   people are shown by eight hex digits.
2. Every share is shown as a percentage with its exact fraction beside it
   (``86% (12/14)``); a percentage is exact or cut (never rounded up) to one
   decimal, so a share below a threshold never reads as meeting it.
3. Nothing is laid out in fixed-width columns: lines wrap between words, so
   no number is ever cut, whatever the terminal's width.
4. An open round says "so far" and never "passed": whether it passes is
   known when it closes (as in ``--json``, where an open round has
   ``"passed": false`` and ``"open": true``).
"""

from __future__ import annotations

import difflib
import heapq
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from rich.markup import escape

from .resolve import short

if TYPE_CHECKING:
    from ..api.read import Turnout
    from ..consensus import ProposalResult, RoundResult
    from ..consensus.result import SealInfo
    from ..consensus.share import Share
    from .late import Late, LateGroup

__all__ = ["Namer", "pct", "share", "at", "until", "render_detail", "render_short",
           "ROUND_NAMES", "short_line", "facts", "render_result", "late_lines"]

ROUND_NAMES = {1: "temperature check", 2: "minor grievances", 3: "deal-breakers"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LIST_AT_MOST = 12  # names listed per body and group before "and N more"


class Namer:
    """Keys to ``Name (3f9c)`` (rule 1)."""

    def __init__(self, profiles: Mapping[bytes, str], local: Mapping[bytes, str]) -> None:
        self.profiles, self.local = profiles, local

    def __call__(self, key: bytes | None) -> str:
        if key is None:
            return "nobody"
        name = self.profiles.get(key) or self.local.get(key)
        return f"{name} ({key.hex()[:4]})" if name else key.hex()[:8]


def pct(num: int, den: int) -> str:
    """``86%``, ``66.6%``: exact, or cut to one decimal (rule 2)."""
    if den == 0:
        return "-"
    whole, rest = divmod(100 * num, den)
    if rest == 0:
        return f"{whole}%"
    tenth = (1000 * num // den) % 10
    return f"{whole}.{tenth}%"


def share(s: "Share") -> str:
    return "no votes" if s.den == 0 else f"{pct(s.num, s.den)} ({s.num}/{s.den})"


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def at(ms: int, now: int) -> str:
    """``14:03 UTC`` today, ``Fri 27 Nov 18:00 UTC`` another day, with the year if not this one."""
    t, n = _dt(ms), _dt(now)
    clock = t.strftime("%H:%M") + (f":{t.second:02d}" if t.second else "") + " UTC"
    if t.date() == n.date():
        return clock
    day = t.strftime("%a %d %b") + ("" if t.year == n.year else t.strftime(" %Y"))
    return f"{day} {clock}"


def _span(ms: int) -> str:
    s = ms // 1000
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if s >= size:
            k = s // size
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return "a moment"


def until(ms: int, now: int) -> str:
    """``14:03 UTC (in 4 minutes)`` or ``(2 days ago)``."""
    rel = f"in {_span(ms - now)}" if ms >= now else f"{_span(now - ms)} ago"
    return f"{at(ms, now)} ({rel})"


def _names(keys: Sequence[bytes], who: Namer) -> str:
    if len(keys) > LIST_AT_MOST:  # the first few in order, without sorting them all
        first = heapq.nsmallest(LIST_AT_MOST, ((who(k).lower(), k) for k in keys))
        return ", ".join(who(k) for _, k in first) + f" and {len(keys) - LIST_AT_MOST} more"
    return ", ".join(who(k) for k in sorted(keys, key=lambda k: (who(k).lower(), k)))


def _round_head(r: "RoundResult", res: "ProposalResult") -> str:
    name = ROUND_NAMES.get(r.round, "")
    v = r.verdict
    head = f"Round {r.round} of 3, {name}"
    if v is None:
        return head
    return f"{head}: needs {share(v.threshold)} yes"


def _count_line(v: Any) -> str:
    took = v.yes + v.no + v.abstain
    parts = [f"{v.yes} yes"]
    if v.yes + v.no:
        parts[0] += f" ({pct(v.yes, v.yes + v.no)}, {v.yes}/{v.yes + v.no})"
    parts.append(f"{v.no} no")
    if v.abstain:
        parts.append(f"{v.abstain} abstain")
    if v.base or v.combine == "population":
        return f"{took} of {v.eligible} voted; " + ", ".join(parts)
    return (f"{v.participation.num} of {v.eligible} member bodies reached quorum; "
            f"{v.yes} passed, {v.no} did not")


def _verdict_word(v: Any, is_open: bool) -> str:
    if is_open:
        return "so far it would pass" if v.passed else (
            "so far it lacks quorum" if not v.quorum else "so far it would not pass")
    if not v.quorum:
        return f"failed: no quorum ({share(v.participation)} took part, {share(v.quorum_needed)} needed)"
    return "passed" if v.passed else "failed"


def seal_line(s: "SealInfo") -> str:
    """A closed window's seal in plain words (docs/rules.md s.10.4): ``sealed k/n`` and what
    that means, or ``unsealed ...`` and what that means."""
    if s.sealed:
        return f"{s.text()}: an event that reached the tellers after the close does not count"
    return s.text()


def _walk(v: Any, depth: int = 0) -> list[tuple[int, Any]]:
    out = [(depth, v)]
    for p in v.parts:
        out.extend(_walk(p, depth + 1))
    return out


def _word_diff(old: str, new: str) -> str:
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            seg = a[i1:i2]
            out.append(" ".join(seg) if len(seg) <= 6 else " ".join(seg[:3]) + " ... " + " ".join(seg[-3:]))
        else:
            if i2 > i1:
                out.append("[-" + " ".join(a[i1:i2]) + "-]")
            if j2 > j1:
                out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def _can_do(res: "ProposalResult", now: int) -> list[str]:
    pid = res.id.hex()[:8]
    if res.window is None:
        if res.state == "carried" and any(m.active(now) for m in res.mandates):
            return [f"the mandate is in force; a member can call a recall: `imier recall {pid} --holder KEY`"]
        return [f"nothing more to do: the proposal is {res.state}"]
    end = until(res.window[1], now)
    if res.open_phase == "discussion":
        return [f"discussion until {end}; round 1 opens then",
                f"the proposer can still withdraw it: `imier withdraw {pid}`"]
    if res.open_phase == "vote":
        out = [f"you can vote, or change your vote, until {end}: `imier vote {pid} yes|no|abstain`"]
        if res.round == 1:
            out.append(f"the proposer can still withdraw it: `imier withdraw {pid}`")
        return out
    if res.open_phase == "amend":
        return [f"amendments are open until {end}: `imier amend {pid} --text ...`, "
                "and `imier vote AMENDMENT yes|no` on each"]
    return [f"contention is open until {end}: `imier stand {pid} no` (or `yes`) "
            "to change your standing"]


def facts(res: "ProposalResult", now: int) -> dict[str, Any]:
    """The plain-words facts of ``--json`` (fields added beside the existing ones)."""
    rounds = []
    for r in res.rounds:
        v = r.verdict
        doc: dict[str, Any] = {"round": r.round, "name": ROUND_NAMES.get(r.round), "open": r.open,
                               "closes": r.vote_window[1]}
        if v is not None:
            doc.update({
                "needs": v.threshold.text(), "needs_percent": pct(v.threshold.num, v.threshold.den),
                "support_percent": pct(v.support.num, v.support.den) if v.support.den else None,
                "participation_percent": pct(v.participation.num, v.participation.den)
                if v.participation.den else None,
                "so_far": ("would pass" if v.passed else "would not pass") if r.open else None,
            })
        rounds.append(doc)
    return {"summary": short_line(res, now, plain=True), "can_do": _can_do(res, now),
            "rounds_plain": rounds}


# -- the views ---------------------------------------------------------------------------------------


def short_line(res: "ProposalResult", now: int, *, plain: bool = False, body: str = "") -> str:
    """One line per proposal, like ``git log --oneline``."""
    where = ""
    last = next((r for r in reversed(res.rounds) if r.verdict is not None), None)
    if res.window is not None:
        what = {"discussion": "discussion", "vote": f"round {res.round} vote",
                "amend": f"round {res.round} amendments", "contention": "contention"}[res.open_phase or ""]
        where = f"{what} until {at(res.window[1], now)}"
        if res.open_phase == "vote" and last is not None and last.verdict is not None:
            v = last.verdict
            where += f", {v.yes + v.no + v.abstain} of {v.eligible} voted" if v.base or \
                v.combine == "population" else f", {v.participation.num} of {v.eligible} bodies quorate"
    else:
        where = res.state
        if res.decided_round and res.state in ("carried", "tabled", "contention"):
            where += f" (round {res.decided_round})"
    title = res.title if plain else escape(res.title)
    state = res.state if plain else f"[bold]{res.state}[/bold]"
    line = f"{res.id.hex()[:8]} {state} {title}"
    if body:
        line += f" in {body if plain else escape(body)}"
    return line + f": {where}" if where != res.state else line


def render_short(console: Any, results: Sequence["ProposalResult"], body_names: Mapping[bytes, str],
                 now: int) -> None:
    for r in results:
        console.print(short_line(r, now, body=body_names.get(r.body, r.body.hex()[:8])))


def render_detail(console: Any, res: "ProposalResult", body_names: Mapping[bytes, str], who: Namer,
                  now: int, turnout: Sequence["Turnout"] = (), *, full: bool = True,
                  original: str | None = None, late_events: "Sequence[Late] | Sequence[LateGroup]" = ()) -> None:
    """One proposal as a meeting reads it; ``late_events``: this node's warnings about events
    that count in a closed unsealed window but reached it after the close (imier.api.late)."""
    lines: list[str] = []  # printed at once: one console.print a line cost 5 ms a proposal

    def say(line: str = "") -> None:
        lines.append(line)

    bname = body_names.get(res.body) or res.body.hex()[:8]
    say(f"[bold]{escape(res.title)}[/bold]  {res.id.hex()[:12]}")
    say(f"A {res.kind} proposal in {escape(bname)} by {escape(who(res.proposer))}, "
        f"made {at(res.calendar.t0, now)}.")
    say(f"State: [bold]{res.state}[/bold]. Why: {escape(res.explain())}")
    if full:
        label = "Text under decision" if res.window is not None else "Text"
        say(f"{label} (version {res.version}):")
        say("  " + escape(res.text))
    for r in res.rounds:
        say()
        say(f"[bold]{escape(_round_head(r, res))}[/bold]")
        if r.amend_window is not None:
            a0, a1 = r.amend_window
            say(f"  amendments {at(a0, now)} to {at(a1, now)}")
        for a in r.amendments:
            av = a.verdict
            outcome = "open" if a.open else ("adopted" if a.adopted else "not adopted")
            say(f"  amendment {a.id.hex()[:8]} by {escape(who(a.author))}: {outcome}; "
                f"support {share(av.support)}, needs more than {share(av.threshold)}; "
                f"{av.yes + av.no + av.abstain} of {av.eligible} voted" if av.base else
                f"  amendment {a.id.hex()[:8]} by {escape(who(a.author))}: {outcome}; "
                f"support {share(av.support)}, needs more than {share(av.threshold)}")
            if a.adopted:
                say("    changed: " + escape(_word_diff(_before(res, original, a.id), a.text)))
            elif full:
                say("    text: " + escape(a.text if len(a.text) <= 200 else a.text[:197] + "..."))
        if r.amend_seal is not None:
            say("  amendment window " + escape(seal_line(r.amend_seal)))
        v = r.verdict
        if v is None:
            say(f"  its vote opens {until(r.vote_window[0], now)}")
            continue
        closes = "Closes" if r.open else "Closed"
        say(f"  {_count_line(v)}. {closes} {until(r.vote_window[1], now)}: "
            f"{_verdict_word(v, r.open)}.")
        if r.seal is not None:
            say("  " + escape(seal_line(r.seal)))
        for depth, x in _walk(v)[1:] if not v.base else []:
            if not full and depth > 1:
                continue
            name = escape(body_names.get(x.body) or x.body.hex()[:8])
            say("  " + "  " * depth + f"{name}: {_count_line(x)}; support {share(x.support)}, "
                f"needs {share(x.threshold)}: {_verdict_word(x, r.open)}")
        if v.combine and v.combine != "verdicts":
            say(f"  combined by {v.combine}")
        if full:
            for t in turnout:
                if t.round != r.round:
                    continue
                voted = dict(t.choices)
                name = escape(body_names.get(t.body) or t.body.hex()[:8])
                yes = [k for k, c in voted.items() if c == "yes"]
                no = [k for k, c in voted.items() if c == "no"]
                ab = [k for k, c in voted.items() if c == "abstain"]
                not_yet = [k for k in t.eligible if k not in voted]
                say(f"  in {name}:")
                for label, keys in (("yes", yes), ("no", no), ("abstain", ab),
                                    ("not yet" if r.open else "did not vote", not_yet)):
                    if keys:
                        say(f"    {label} ({len(keys)}): " + escape(_names(keys, who)))
        if r.grievances:
            say("  grievances: " + escape("; ".join(
                f"{g.category} ({g.severity}, {g.count}), delegate {who(g.delegate)}"
                for g in r.grievances)))
    ct = res.contention
    if ct is not None:
        say()
        say(f"[bold]Contention[/bold] (planning): support {share(ct.start)} at the pass, "
            f"{share(ct.now)} now, lowest {share(ct.lowest)}; tabled below "
            f"{share(ct.floor)}. {ct.changes} standing change(s).")
        if res.contention_seal is not None:
            say("  contention " + escape(seal_line(res.contention_seal)))
    if res.draw is not None:
        d = res.draw
        say(f"Draw: seed {d.seed.hex()}, {d.k} of {len(d.candidates)}: "
            + escape(", ".join(who(k) for k in d.chosen)))
    for m in res.mandates:
        state = "active" if m.active(res.as_of) else ("recalled" if m.ended else "expired")
        say(f"Mandate: {escape(who(m.holder))}: {escape(m.task)} ({state}; "
            f"{at(m.start, now)} to {at(m.expires, now)})")
    for rc in res.recalls:
        outcome = "open" if rc.open else ("recalled" if rc.passed else "not recalled")
        say(f"Recall {rc.id.hex()[:8]} of {escape(who(rc.holder))}: {outcome} "
            f"(support {share(rc.verdict.support)}, {share(rc.verdict.participation)} took part)")
        if rc.seal is not None:
            say("  recall vote " + escape(seal_line(rc.seal)))
    for line in late_lines(late_events, who):
        say("[yellow]Late:[/yellow] " + escape(line))
    if full:
        for author, first, second in res.forks:
            say(f"[red]Fork:[/red] {escape(who(author))} signed two events with one "
                f"sequence number ({first.hex()[:8]}, {second.hex()[:8]}); their votes from "
                "then on are not counted")
        if res.ignored:
            say(f"Not counted ({len(res.ignored)}):")
            for i in res.ignored[: 50]:
                say(f"  {i.kind} {i.id.hex()[:8]} by {escape(who(i.author))}: {escape(i.reason)}")
            if len(res.ignored) > 50:
                say(f"  and {len(res.ignored) - 50} more (--json lists them all)")
    say()
    say("[bold]Now:[/bold] " + escape("; ".join(_can_do(res, now))) + ".")
    say()
    console.print("\n".join(lines))


LATE_EACH_AT_MOST = 3  # late events of one kind in one window told one by one; more are summed up


def late_lines(late_events: "Sequence[Late] | Sequence[LateGroup]", who: Namer) -> list[str]:
    """The warnings about late arrivals, bounded: one line per event when a window has a
    few, else one line per window and kind with the count, the longest delay and the first
    names (a record imported long after its windows closed has every vote late; `--json`
    lists each one). Takes the events, in order, or :func:`imier.api.late.late_groups`."""
    from .late import Late, span, window_words

    rows: list[tuple[str, str, int, int, set[bytes], list[Late]]] = []
    if late_events and isinstance(late_events[0], Late):
        groups: dict[tuple[str, str], list[Late]] = {}
        for x in late_events:
            assert isinstance(x, Late)
            groups.setdefault((x.window, x.kind), []).append(x)
        for (window, kind), xs in groups.items():
            few = xs if len(xs) <= LATE_EACH_AT_MOST else []
            rows.append((window, kind, len(xs), max(x.arrived - x.close for x in xs),
                         {x.author for x in xs} if not few else set(), few))
    else:
        for g in late_events:
            assert not isinstance(g, Late)
            few = g.events() if g.count <= LATE_EACH_AT_MOST else []
            rows.append((g.window, g.kind, g.count, g.longest, g.authors, few))
    out: list[str] = []
    for window, kind, count, longest, authors, few in rows:
        if count <= LATE_EACH_AT_MOST:
            out.extend(x.text(who) for x in few)
            continue
        what = {"amendment vote": "votes on amendments", "recall vote": "votes on the recall",
                "stand": "standings", "amend": "amendments"}.get(kind, kind + "s")
        out.append(f"{count} {what} reached this node after {window_words(window)} closed "
                   f"(up to {span(longest)} after); they count because the window is unsealed: "
                   + _names(list(authors), who))
    return out


def _before(res: "ProposalResult", original: str | None, aid: bytes) -> str:
    """The text an adopted amendment changed (the version before it)."""
    text = original if original is not None else (res.text if res.version == 1 else "")
    for r in res.rounds:
        for a in r.amendments:
            if a.id == aid:
                return text
            if a.adopted:
                text = a.text
    return text


# -- tables: `imier simulate` (no person is named in a scenario) --------------------------------


def _key(key: bytes | None) -> str:
    return "none" if key is None else short(key)


def _round_table(r: "RoundResult", names: Mapping[bytes, str]) -> Any:
    from rich import box
    from rich.table import Table

    v = r.verdict
    title = f"Round {r.round}" + (" (open)" if r.open else "")
    if v is None:  # an amendment window is open; the round's vote has not begun
        return f"{title}: its vote opens after the amendment window"
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for c in ("body", "eligible", "voted", "yes", "no", "abstain", "support", "needs", "passed"):
        t.add_column(c, justify="left" if c == "body" else "right", no_wrap=True)
    for depth, x in _walk(v):
        name = ("  " * depth) + escape(names.get(x.body) or short(x.body))
        verdict = "yes" if x.passed else ("no quorum" if not x.quorum else "no")
        t.add_row(name, str(x.eligible), str(x.participation), str(x.yes), str(x.no),
                  str(x.abstain), str(x.support), f"{x.threshold}", verdict)
    return t


def render_result(console: Any, r: "ProposalResult", names: Mapping[bytes, str]) -> None:
    """A scenario's result as tables (`imier simulate`): each round's verdict body by
    body (``names``: body id -> name), its grievances and amendments, and the
    contention. A scenario's proposal is a general one with no person named: draws,
    mandates, recalls, forks and what was not counted are :func:`render_detail`'s."""
    from rich import box
    from rich.table import Table

    console.print(f"[bold]{escape(r.title)}[/bold]")
    console.print(f"State: [bold]{r.state}[/bold], text version {r.version}")
    console.print(f"Why: {escape(r.explain())}")
    for rr in r.rounds:
        console.print(_round_table(rr, names))
        if rr.verdict is not None:
            modes = [f"{names.get(x.body) or short(x.body)} by {x.combine}"
                     for _, x in _walk(rr.verdict) if x.combine and x.combine != "verdicts"]
            if modes:
                console.print("  combined: " + escape(", ".join(modes)))
        if rr.grievances:
            console.print("  grievances: " + "; ".join(
                f"{g.category} ({g.severity}, {g.count}), delegate {_key(g.delegate)}"
                for g in rr.grievances))
        if rr.amendments:
            t = Table(title=f"Round {rr.round} amendments", title_justify="left", box=box.SIMPLE_HEAD)
            for c in ("amendment", "text", "voted", "support", "needs", "adopted"):
                t.add_column(c)
            for a in rr.amendments:
                text = escape(a.text if len(a.text) <= 60 else a.text[:57] + "...")
                outcome = "open" if a.open else ("yes" if a.adopted else "no")
                t.add_row(short(a.id), text, str(a.verdict.participation), str(a.verdict.support),
                          f"> {a.verdict.threshold}", outcome)
            console.print(t)
    if r.contention is not None:
        ct = r.contention
        console.print(f"Contention: support {ct.start} at the pass, {ct.now} now "
                      f"(lowest {ct.lowest}, floor {ct.floor}), {ct.changes} standing change(s)")
    console.print()

