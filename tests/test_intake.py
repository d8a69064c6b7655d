"""store/intake.py: the one way in, its report, and the bounds on what waits (docs/rules.md s.9.3)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import trio

from imier.nodeapp.bounds import TokenBucket
from imier.nodeapp.node import Node, Options
from imier.protocol.bundle import write_bundle
from imier.protocol.events import Admit, Found, Propose, Vote, sign_event
from imier.store.author import author
from imier.store.db import PendingLimits, Store
from imier.store.home import Config, Home
from imier.store.intake import ENTRY_OVERHEAD, DeferredQueue, IntakeLimits, import_bundle, take

from .strategies import KEYS

NOW = 1_700_000_000_000


def _body(s: Store) -> bytes:
    f = author(s, KEYS[0], None, Found(body_kind="community", name="N"), NOW - 10_000)
    author(s, KEYS[0], f.id, Admit(member=bytes(KEYS[1].verify_key)), NOW - 9_000)
    return f.id


def _text(n: int) -> str:
    return "x" * n


def test_one_report_names_every_outcome() -> None:
    src = Store.memory()
    body = _body(src)
    p = author(src, KEYS[1], body, Propose(title="t", text="x"), NOW - 8_000)
    held = src.all_events()
    dst = Store.memory()
    dst.ingest(held[:2])
    stranger = sign_event(KEYS[5], body=body, ts=NOW - 7_000, seq=1, prev=[p.id], data=Vote(target=p.id, choice="yes"))
    early = sign_event(KEYS[0], body=body, ts=NOW - 99_000, seq=3, prev=[p.id, held[1].id],
                       data=Vote(target=p.id, choice="yes"))
    waiting = sign_event(KEYS[0], body=body, ts=NOW - 1_000, seq=3, prev=[b"\x07" * 32, held[1].id],
                         data=Vote(target=p.id, choice="yes"))
    ahead = sign_event(KEYS[1], body=body, ts=NOW + 3_600_000, seq=2, prev=[p.id], data=Vote(target=p.id, choice="no",
                       severity="minor", category="cost"))
    junk = b"\x93not an event"
    rep = take(dst, [held[0].raw, p.raw, stranger.raw, early.raw, waiting.raw, ahead.raw, junk],
               source="peer1", now_ms=NOW)
    assert rep.received == 7
    assert rep.held == [held[0].id]
    assert set(rep.new) == {p.id, waiting.id} and rep.pending == [waiting.id]
    assert rep.accepted == [p.id] and rep.deferred == [ahead.id]
    got = {r.id: (r.code, r.field) for r in rep.refused}
    bad = got.pop(hashlib.sha256(junk).digest())
    assert got == {stranger.id: ("not_admitted", "author"), early.id: ("causality", "ts")}
    assert bad[0] not in ("not_admitted", "causality")  # the decoder's own code
    assert [r.index for r in rep.refused if r.index is not None] == [6]
    assert not dst.has(stranger.id) and not dst.has(early.id) and not dst.has(ahead.id)
    assert dst.arrived_ms(p.id) == NOW and dst.pending_bytes("peer1") == len(waiting.raw)
    # expect and bodies: what an exchange did not ask for is refused with its own code
    rep = take(dst, [stranger.raw], source="peer1", now_ms=NOW, expect=set())
    assert [r.code for r in rep.refused] == ["unrequested"]
    rep = take(dst, [stranger.raw], source="peer1", now_ms=NOW, bodies={b"\x00" * 32})
    assert [r.code for r in rep.refused] == ["wrong_body"]


def test_admission_arriving_later_lets_a_refused_event_in_when_offered_again() -> None:
    src = Store.memory()
    body = _body(src)
    admit = author(src, KEYS[0], body, Admit(member=bytes(KEYS[2].verify_key)), NOW - 5_000)
    evs = src.all_events()
    # signed by a node that held only what dst holds: its prevs are all there
    v = sign_event(KEYS[2], body=body, ts=NOW - 4_000, seq=1, prev=[evs[1].id], data=Vote(target=body, choice="yes"))
    dst = Store.memory()
    dst.ingest(evs[:2])
    assert [r.code for r in take(dst, [v.raw], source="p", now_ms=NOW).refused] == ["not_admitted"]
    assert not dst.has(v.id)
    rep = take(dst, [admit.raw, v.raw], source="p", now_ms=NOW)  # sync brings it again, with the admission
    assert set(rep.accepted) == {admit.id, v.id} and not rep.refused


def test_pending_events_stay_within_their_byte_bounds_oldest_first() -> None:
    src = Store.memory()
    body = _body(src)
    hidden = author(src, KEYS[1], body, Propose(title="t", text="x"), NOW - 8_000)
    flood = [author(src, KEYS[1], body, Propose(title=f"p{i}", text=_text(2000)), NOW - 7_000 + i)
             for i in range(40)]
    dst = Store.memory()
    dst.ingest(src.all_events()[:2])
    limits = PendingLimits(total_bytes=30_000, per_source_bytes=20_000)
    for i, ev in enumerate(flood):  # one by one: each waits on the hidden proposal
        res = dst.ingest([ev], source="a" if i % 2 else "b", pending_limits=limits, now_ms=NOW + i)
    assert dst.pending_bytes("a") <= 20_000 and dst.pending_bytes("b") <= 20_000
    assert dst.pending_bytes() <= 30_000
    kept = {e.id for e in flood if dst.has(e.id)}
    assert kept and flood[-1].id in kept and flood[0].id not in kept  # the oldest went first
    assert res.dropped or len(kept) < len(flood)
    # dropping lost nothing: once the missing event is there, sync brings the rest again
    dst.ingest([hidden])
    dst.ingest(flood)
    assert all(dst.state(e.id) == 1 for e in flood) and dst.pending_bytes() == 0


def test_the_deferred_queue_is_bounded_in_bytes_and_keeps_no_decoded_events() -> None:
    q = DeferredQueue(max_bytes=60_000, per_source_bytes=40_000)
    src = Store.memory()
    body = _body(src)
    evs = [author(src, KEYS[1], body, Propose(title=f"f{i}", text=_text(5000)), NOW + 3_600_000 + i)
           for i in range(30)]
    for i, ev in enumerate(evs):
        q.add(ev, "a" if i < 20 else "b")
        assert q.source_bytes("a") <= 40_000 and q.bytes <= 60_000
    assert evs[0].id not in q and evs[-1].id in q  # oldest first
    assert q.dropped > 0 and all(isinstance(i.raw, bytes) for i in q._items.values())
    assert q.due(NOW) == {}  # nothing due: nothing decoded, nothing removed
    kept = q.ids()
    due = q.due(NOW + 3_600_000 + 29)
    assert len(q) == 0 and q.bytes == 0
    assert [e.id for src in sorted(due) for e in due[src]] == kept  # decoded once, in time order


def test_a_deferred_flood_through_a_node_stays_within_its_byte_bound(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, attack 2, scaled down: a peer pushes far more future-dated bytes than the
    bound; the node keeps at most its bound, per peer and in total, and takes what it
    kept when the time comes."""
    home = Home(tmp_path / "n")
    home.create("n", "pw")
    limits = IntakeLimits(deferred_max_bytes=16_000, deferred_peer_bytes=10_000)
    node = Node(home, Options(name="n", limits=limits), node_key=None)
    now = int(time.time() * 1000)
    ahead = now + 3_600_000
    # Foundings (admissible by anyone), an hour ahead, from three peers: 5x the bound.
    floods = [[sign_event(KEYS[k], body=None, ts=ahead + i, seq=1, prev=[],
                          data=Found(body_kind="community", name=f"{k}-{i}-" + _text(50)))
               for i in range(60)] for k in range(3)]
    assert sum(len(e.raw) + ENTRY_OVERHEAD for fl in floods for e in fl) > 5 * limits.deferred_max_bytes
    peers = [node.peer(f"peer{k}") for k in range(3)]
    for p in peers:
        p.bucket = TokenBucket(10**9, 10**9)

    async def push() -> None:
        for p, fl in zip(peers, floods, strict=True):
            for i in range(0, len(fl), 10):
                await node.take_remote([e.raw for e in fl[i : i + 10]], p, source="sync")
                assert node.deferred.bytes <= limits.deferred_max_bytes
                assert node.deferred.source_bytes(p.peer_id) <= limits.deferred_peer_bytes

    trio.run(push)
    assert node.store.count() == 0 and 0 < len(node.deferred)
    kept = set(node.deferred.ids())
    assert floods[-1][-1].id in kept and floods[0][0].id not in kept  # the oldest went first
    assert node.take_due(now_ms=now) == 0 and set(node.deferred.ids()) == kept  # not yet
    assert node.take_due(now_ms=ahead + 60) == len(kept)  # their time: through the intake
    assert len(node.deferred) == 0 and all(node.store.has(i) for i in kept)
    node.home.close()


def test_bundle_import_reports_and_config_sets_the_bounds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Store.memory()
    body = _body(src)
    doc = import_bundle(Store.memory(), write_bundle(e.raw for e in src.all_events()), now_ms=NOW)
    assert doc == {"new": 2, "held": 0, "pending": 0, "rejected": []} and body
    cfg = Config.from_dict({"node": {"pending_max_bytes": "1MiB", "deferred_peer_bytes": 5000}})
    lim = cfg.intake_limits()
    assert lim.pending_max_bytes == 1024**2 and lim.deferred_peer_bytes == 5000
    assert "pending_max_bytes = 1048576" in cfg.to_toml()
    assert Config.from_dict(_toml(cfg.to_toml())).intake_limits() == lim


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def _page_post(store: Store, ev: Any) -> str:
    """The page's path (web/source.intake, as POST /api/events): 'ok' or the refusal's code."""
    from imier.protocol.errors import Rejected
    from imier.web.source import intake

    try:
        intake(store, ev.raw, now=NOW, max_skew_ms=300_000)
    except Rejected as exc:
        return exc.code
    return "ok"


def test_the_page_takes_a_founding_only_from_a_member_of_a_body_here() -> None:
    """Anyone who reaches the page could post foundings of new bodies (and then anything in
    them, as their founder): a disk filled by strangers. A found through the page is taken
    only from a key admitted (or linked) in a body this node has, or a founder here, and
    at most MAX_PAGE_FOUNDINGS from one key."""
    from imier.store.intake import MAX_PAGE_FOUNDINGS

    s = Store.memory()
    _body(s)  # KEYS[0] founded N and admitted KEYS[1]
    before = s.count()
    for n in range(50):  # a stranger's flood
        f = sign_event(KEYS[5], body=None, ts=NOW - 5_000 + n, seq=1, prev=[],
                       data=Found(body_kind="community", name=f"junk{n}", parts=()))
        assert _page_post(s, f) == "not_admitted"
    assert s.count() == before
    # a member of N founds a committee-like body of their own: taken
    mine = sign_event(KEYS[1], body=None, ts=NOW - 4_000, seq=1, prev=[],
                      data=Found(body_kind="community", name="Garden"))
    assert _page_post(s, mine) == "ok" and s.has(mine.id)
    # and the founder of N (a key of this node) too
    assert _page_post(s, sign_event(KEYS[0], body=None, ts=NOW - 3_900, seq=1, prev=[],
                                    data=Found(body_kind="community", name="Market"))) == "ok"
    # a member's foundings are bounded too
    codes = [_page_post(s, sign_event(KEYS[1], body=None, ts=NOW - 3_000 + n, seq=1, prev=[],
                                      data=Found(body_kind="community", name=f"g{n}")))
             for n in range(MAX_PAGE_FOUNDINGS + 3)]
    assert codes.count("ok") == MAX_PAGE_FOUNDINGS - 1 and codes[-1] == "too_many_bodies"
    # sync, gossip and bundles are not the page: their own rules apply (holding.py)
    stranger = sign_event(KEYS[5], body=None, ts=NOW - 2_000, seq=1, prev=[],
                          data=Found(body_kind="community", name="elsewhere"))
    assert take(s, [stranger.raw], source="peer", now_ms=NOW).new == [stranger.id]
