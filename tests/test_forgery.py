"""Forgery and replay: nothing an attacker can sign or replay changes a verdict,
and status says what it ignored and why.

The baseline is one vote short of passing round 1 (8 yes, 1 no, 1 abstain:
support 8/9 < 9/10), so any forged ``yes`` that counted would flip it.
Each attack adds its events to the baseline's and the verdicts must stay
those of the baseline.
"""

from __future__ import annotations

import msgpack
import pytest

from imier.store.intake import import_bundle
from imier.consensus import ProposalResult
from imier.protocol.bundle import write_bundle
from imier.protocol.errors import Rejected
from imier.protocol.events import Event, Vote, decode_event, sign_event
from imier.store.author import choose_prev
from imier.store.db import Store

from .test_consensus_world import R1, T0, World, key, pub


def verdicts(r: ProposalResult) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = [(r.state, r.version, r.decided_round)]
    for rr in r.rounds:
        v = rr.verdict
        out.append((rr.round, rr.passed, v.support.text() if v else None,
                    v.participation.text() if v else None))
    return out


def baseline() -> tuple[World, bytes]:
    w = World()
    w.body("north", 10)
    w.body("south", 4)
    pid = w.propose("north")
    w.votes("north", pid, R1[0] + 10, yes=8, no=1, abstain=1)
    return w, pid


AS_OF = (R1[0] + 1000, R1[1] + 1)  # during round 1, and just after it closed


def check_unchanged(w: World, pid: bytes, extra: list[Event]) -> list[ProposalResult]:
    """Tally baseline + extra events (through a fresh store's ingest) against the baseline."""
    base = w.events()
    s = Store.memory()
    s.ingest(base + extra)
    got = s.all_events()
    out = []
    for as_of in AS_OF:
        from imier.consensus import tally_proposal

        want = tally_proposal(base, pid, as_of)
        r = tally_proposal(got, pid, as_of)
        assert verdicts(r) == verdicts(want), f"as of {as_of}"
        out.append(r)
    assert out[1].state == "round2"  # the baseline really is one vote short
    return out


def _sign_into(w: World, who: str, body: bytes, data: object, ts: int, seq: int | None = None) -> Event:
    """Sign as ``who`` in ``body`` with a correct seq/prev, without ingesting."""
    s, prev, min_ts = choose_prev(w.store, body, pub(who))
    return sign_event(key(who), body=body, ts=max(ts, min_ts), seq=seq or s, prev=prev, data=data)  # type: ignore[arg-type]


def test_votes_signed_by_non_members_are_refused_and_ignored_and_listed() -> None:
    """docs/rules.md s.9.1: the store refuses them (``not_admitted``) and keeps nothing
    of them; handed to consensus directly, they are still ignored, with the reason."""
    w, pid = baseline()
    north = w.ids["north"]
    forged = [_sign_into(w, f"stranger{i}", north, Vote(target=pid, choice="yes"), R1[0] + 100 + i)
              for i in range(3)]
    # a member of another body is no member here either
    forged.append(_sign_into(w, "south1", north, Vote(target=pid, choice="yes"), R1[0] + 200))
    s = Store.memory()
    res = s.ingest(w.events() + forged)
    assert {r.id: r.code for r in res.refusals} == {ev.id: "not_admitted" for ev in forged}
    assert not any(s.has(ev.id) for ev in forged)
    check_unchanged(w, pid, forged)
    from imier.consensus import tally_proposal

    everything = sorted(w.events() + forged, key=lambda e: e.order_key)
    for as_of in AS_OF:
        listed = {i.id: i.reason for i in tally_proposal(everything, pid, as_of).ignored}
        for ev in forged:
            assert ev.id in listed and "not eligible" in listed[ev.id]


def test_an_event_moved_into_another_body_fails_its_signature() -> None:
    w, pid = baseline()
    vote = next(e for e in w.events() if e.kind == "vote")
    m = msgpack.unpackb(vote.raw, raw=False)
    m["body"] = w.ids["south"]
    with pytest.raises(Rejected) as e:
        decode_event(msgpack.packb(m, use_bin_type=True))
    assert e.value.code == "bad_signature"


# Found by this test: consensus once collected ballots by target alone, so a
# vote signed into *another* body's record counted for the proposal (skipping
# the causal checks of docs/rules.md s.8). Fixed in consensus/tally.py (rule 5:
# only the proposal's body record counts).
def test_votes_cast_in_another_body_do_not_count() -> None:
    """A member of both bodies votes on north's proposal from south's record."""
    w, pid = baseline()
    w.admit("south0", "south", "north9")  # north9 abstained in north
    south = w.ids["south"]
    cross = [
        _sign_into(w, "north9", south, Vote(target=pid, choice="yes"), R1[0] + 300),
        _sign_into(w, "south0", south, Vote(target=pid, choice="yes"), R1[0] + 301),
    ]
    r = check_unchanged(w, pid, cross)
    # They do not count, and status says so and why.
    for res in r:
        listed = {i.id: i.reason for i in res.ignored}
        for ev in cross:
            assert ev.id in listed and "another body" in listed[ev.id], listed


def test_replayed_and_duplicate_events_change_nothing() -> None:
    w, pid = baseline()
    evs = w.events()
    s = Store.memory()
    s.ingest(evs)
    again = s.ingest(evs + evs[::-1])  # the same bytes, twice, in another order
    assert not again.new and len(again.held) == len(evs)
    check_unchanged(w, pid, evs[5:] + evs[:3])


def test_conflicting_votes_count_once_and_forks_are_named() -> None:
    w, pid = baseline()
    north = w.ids["north"]
    # north8 (a 'no' voter) changes their vote to yes and back, many times:
    # one effective vote, the latest inside the window.
    w.vote("north8", pid, "yes", R1[0] + 500)
    w.vote("north8", pid, "no", R1[0] + 501, category="cost")
    # north9 (abstained) forks: two different events with the same seq.
    a = _sign_into(w, "north9", north, Vote(target=pid, choice="yes"), R1[0] + 600)
    b = sign_event(key("north9"), body=north, ts=a.ts + 1, seq=a.seq, prev=list(a.prev),
                   data=Vote(target=pid, choice="yes"))
    r = check_unchanged(w, pid, [a, b])
    for res in r:
        assert any(f[0] == pub("north9") and {f[1], f[2]} == {a.id, b.id} for f in res.forks), res.forks
        assert {a.id, b.id} <= {i.id for i in res.ignored}


def test_events_beyond_the_clock_skew_wait_and_never_change_a_verdict() -> None:
    w, pid = baseline()
    north = w.ids["north"]
    now = R1[0] + 1000
    ahead = [_sign_into(w, f"north{i}", north, Vote(target=pid, choice="yes"), now + 10 * 60_000 + i)
             for i in (8, 9)]
    s = Store.memory()
    s.ingest(w.events())
    data = write_bundle(e.raw for e in ahead)
    doc = import_bundle(s, data, now_ms=now, max_skew_ms=5 * 60_000)
    assert doc["new"] == 0 and {r["code"] for r in doc["rejected"]} == {"future"}
    assert all("future" in r["reason"] for r in doc["rejected"])
    assert not any(s.has(e.id) for e in ahead)
    # The skew is configurable: a node allowing 15 minutes takes them now.
    doc = import_bundle(s, data, now_ms=now, max_skew_ms=15 * 60_000)
    assert doc["new"] == 2 and not doc["rejected"]
    # ... and they are votes of members inside the window, counted by their
    # author timestamp: the delay never changed which window they fall in.
    from imier.consensus import tally_proposal

    r = tally_proposal(s.all_events(), pid, R1[1] + 1)
    assert r.rounds[0].passed  # 10 yes of 10: legitimately passes once they are in


def test_a_forged_signature_never_reaches_the_store() -> None:
    w, pid = baseline()
    ev = _sign_into(w, "north9", w.ids["north"], Vote(target=pid, choice="yes"), R1[0] + 700)
    m = msgpack.unpackb(ev.raw, raw=False)
    m["author"] = pub("north0")  # claim someone else signed it
    bad = msgpack.packb(m, use_bin_type=True)
    s = Store.memory()
    doc = import_bundle(s, write_bundle([bad, ev.raw[:-1]]), now_ms=T0 + 10**9, max_skew_ms=0)
    assert doc["new"] == 0 and len(doc["rejected"]) == 2 and s.count() == 0
