"""Hostile sync peers against real daemons on 127.0.0.1 (issue 10's attacks).

The attackers are raw py-libp2p hosts in their own processes
(hostile_peer.py); the victim and the good peer are `imier` daemons and
commands. Each test says what must hold while the attack runs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from imier.protocol.events import Admit, Found, Propose, Vote
from imier.store.author import author_event
from imier.store.db import Store
from imier.store.home import Home

from .nodes import PASSPHRASE, Node, free_port, same_sets, wait_until
from .test_sync_wire import _fill, _history

pytestmark = pytest.mark.integration

ATTACKER = Path(__file__).with_name("hostile_peer.py")
DAY = 86_400_000


def attack(node: Node, mode: str, *args: str, timeout: float = 120) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ATTACKER), mode, node.addr(), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=node.env())


def result(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def stored(node: Node) -> tuple[int, int]:
    """(events, bytes of events) in the node's store, read directly."""
    con = sqlite3.connect(f"file:{node.home / 'store.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        n, size = con.execute("SELECT count(*), coalesce(sum(length(raw)), 0) FROM events").fetchone()
        return int(n), int(size)
    finally:
        con.close()


def peer_doc(node: Node, peer_id: str | None = None, *, not_in: set[str] = frozenset()) -> list[dict]:  # type: ignore[type-arg,assignment]
    peers = node.json("peers")["peers"]
    return [p for p in peers if (peer_id is None or p["peer_id"] == peer_id) and p["peer_id"] not in not_in]


def _stop(*nodes: Node) -> None:
    for n in nodes:
        if n.proc is not None and n.proc.poll() is None:
            n.stop()
        n.kill()


def _person(node: Node, name: str) -> Any:
    home = Home(node.home)
    return home.unlock(home.person(name), PASSPHRASE)


def test_unrequested_bodies_leave_nothing_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    body, shared, _, _ = _history(60, 0, 0)
    _fill(a, body, shared)
    _fill(b, body, shared[:20])
    try:
        a.start("--sync-interval", "3600s")
        before = stored(a)
        r = result(attack(a, "junk", "--seconds", "8", "--bodies", "10", "--per-body", "20"))
        assert r["sent_events"] > 0 or r["refused"] > 0, r
        assert stored(a) == before, (before, stored(a), r)
        strangers = [p for p in a.json("peers")["peers"] if p["offences"]]
        codes = {o["code"] for p in strangers for o in p["recent_offences"]}
        assert "unheld_body" in codes, strangers
        # the good peer still syncs
        stats = b.json("sync", a.addr())
        assert stats["new"] == 41 and same_sets([a, b])
        print(f"junk attacker: {r}; victim store {before} -> {stored(a)}")
    finally:
        _stop(a)


def test_an_outsider_federation_is_not_held_until_our_community_carries_federate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, o = Node(tmp_path, "a"), Node(tmp_path, "o")
    a.init("ana")
    o.init("oz")
    now = int(time.time() * 1000)
    ana, oz = _person(a, "ana"), _person(o, "oz")
    st = Store.open(a.home / "store.sqlite3")
    try:
        ours = author_event(st, ana, body=None, ts=now - 40 * DAY, data=Found(body_kind="community", name="V"))
    finally:
        st.close()
    st = Store.open(o.home / "store.sqlite3")
    try:
        muni = author_event(st, oz, body=None, ts=now - 39 * DAY, data=Found(
            body_kind="municipality", name="Capture", parts=(ours.id,)))
    finally:
        st.close()
    try:
        a.start("--sync-interval", "3600s")
        o.start("--sync-interval", "3600s")
        a.json("sync", o.addr())
        o.json("sync", a.addr())
        time.sleep(1)
        assert muni.id not in a.event_ids()
        listed = json.dumps(a.json("body", "list"))
        assert muni.id.hex() not in listed and ours.id.hex() in listed
        # our community carries federate(Capture): now a holds it and stores its record
        st = Store.open(a.home / "store.sqlite3")
        try:
            p = author_event(st, ana, body=ours.id, ts=now - 38 * DAY, data=Propose(
                title="join Capture", text="we choose to", proposal_kind="federate", federation=muni.id,
                join=True))
            author_event(st, ana, body=ours.id, ts=now - 35 * DAY + 3_600_000, data=Vote(target=p.id, choice="yes"))
        finally:
            st.close()
        a.run("peers")  # any command; the daemon sees the store changed on its next look

        def synced() -> bool:
            a.json("sync", o.addr())
            return muni.id in a.event_ids()

        wait_until(synced, 30, "a to hold the federation its community joined")
        assert muni.id.hex() in json.dumps(a.json("body", "list"))
    finally:
        _stop(a, o)


def test_a_strangers_body_admitting_our_person_is_held_only_once_followed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Anyone can found a body and admit our person: until one of our people follows it,
    our node holds nothing of it (an invitation), whatever the stranger writes there."""
    a, o = Node(tmp_path, "a"), Node(tmp_path, "o")
    ana = a.init("ana")
    o.init("oz")
    oz = _person(o, "oz")
    now = int(time.time() * 1000)
    st = Store.open(o.home / "store.sqlite3")
    try:
        s = author_event(st, oz, body=None, ts=now - 9 * DAY, data=Found(body_kind="community", name="Lure"))
        author_event(st, oz, body=s.id, ts=now - 9 * DAY + 1, data=Admit(member=bytes.fromhex(ana)))
        for i in range(40):
            author_event(st, oz, body=s.id, ts=now - 8 * DAY + i, data=Propose(title=f"p{i}", text="x" * 20_000))
    finally:
        st.close()
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        o.start("--sync-interval", "3600s", "--no-gossip")
        before = stored(a)
        a.json("sync", o.addr())
        o.json("sync", a.addr())
        assert stored(a) == before == (0, 0)
        invs = a.json("body", "invitations")
        assert [(i["body"], i["name"], i["member"]) for i in invs] == [(s.id.hex(), "Lure", ana)], invs
        assert s.id.hex() not in json.dumps(a.json("body", "list"))
        assert "1 invitation" in a.run("body", "list").stdout
        assert all(p["offences"] == 0 for p in a.json("peers")["peers"])  # an invitation is no offence
        # ana accepts: a holds Lure and stores its record
        a.run("body", "follow", "Lure")
        assert a.json("body", "invitations") == []

        def synced() -> bool:
            a.json("sync", o.addr())
            return stored(a)[0] == 42

        wait_until(synced, 30, "a to hold the body it followed")
        assert s.id.hex() in json.dumps(a.json("body", "list"))
    finally:
        _stop(a, o)


def test_a_slowloris_with_many_streams_does_not_stop_a_good_peers_sync(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    body, evs, _, _ = _history(200, 0, 0)
    _fill(a, body, evs)
    _fill(b, body, evs[:20])
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        slow = attack(a, "slowloris", "--seconds", "40", "--streams", "3", "--identities", "16")
        time.sleep(4)  # the streams are open and dripping
        results = []
        for _ in range(3):
            r = b.run("sync", a.addr(), "--json", ok=False, timeout=60)
            results.append(r.returncode)
            if r.returncode == 0:
                assert json.loads(r.stdout)["new"] in (181, 0)
        assert results == [0, 0, 0], results
        assert same_sets([a, b])

        def counted() -> bool:  # the handshake deadline (10 s) ends the dripping streams
            peers = a.json("peers")["peers"]
            return any(o["code"] in ("too_many_streams", "slow_handshake")
                       for p in peers for o in p.get("recent_offences", []))

        wait_until(counted, 30, "the slowloris to be counted")
        slow.kill()
        out, _ = slow.communicate(timeout=10)
        strangers = [p for p in a.json("peers")["peers"] if p["offences"]]
        codes = {o["code"] for p in strangers for o in p["recent_offences"]}
        assert codes & {"too_many_streams", "slow_handshake"}, strangers
    finally:
        _stop(a)


def test_peers_holding_slots_with_slow_rounds_do_not_keep_a_neighbour_out_after_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The audit's attack on issue 10: peers that complete the handshake and then send
    one cheap round every 6 s, new peer ids as sessions end, started right after the
    victim restarts. The good peer, a neighbour before the restart, still syncs
    (neighbours.json keeps its standing; a stranger's rounds must come within 8 s;
    one source address holds one strangers' slot)."""
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    body, evs, _, _ = _history(200, 0, 0)
    _fill(a, body, evs)
    _fill(b, body, evs[:150])
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        b.run("sync", a.addr(), "--json", timeout=60)
        b.run("sync", a.addr(), "--json", timeout=60)  # the same sets: now a known neighbour
        assert any(p["proven"] for p in a.json("peers")["peers"])
        a.stop()
        a.start("--sync-interval", "3600s", "--no-gossip")
        slow = attack(a, "slowrec", "--seconds", "30", "--body", body.hex(), "--identities", "3", "--every", "6")
        time.sleep(4)  # the slow peers hold their slots
        codes = [b.run("sync", a.addr(), "--json", ok=False, timeout=60).returncode for _ in range(3)]
        assert codes == [0, 0, 0], codes
        got = result(slow, timeout=90)
        assert got["sessions"] >= 3 and got["rounds"] >= 3, got  # the attack ran
        assert same_sets([a, b])
    finally:
        _stop(a)


def test_a_new_members_node_syncs_the_first_time_while_slow_peers_hold_the_slots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A node that has never synced with the victim, whose person is a member of the
    victim's community (its record came by bundle), syncs 3 of 3 times while peers
    holding slots with slow rounds are connected: its hello carries its person's
    vouch, so the victim serves it as a neighbour from the first session."""
    a, c = Node(tmp_path, "a"), Node(tmp_path, "c")
    a.init("ana")
    cid = c.init("cid")
    body = a.run("body", "found", "community", "North").stdout.strip()
    a.run("member", "admit", "North", cid)
    for i in range(5):
        a.run("propose", "North", "--title", f"P{i}", "--text", "x")
    bundle = tmp_path / "north.imier"
    a.run("export", str(bundle))
    c.run("body", "follow", body)
    c.run("import", str(bundle))
    a.run("propose", "North", "--title", "after the bundle", "--text", "y")  # c lacks this one
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        slow = attack(a, "slowrec", "--seconds", "30", "--body", body, "--identities", "3", "--every", "6")
        time.sleep(4)
        runs = [c.run("sync", a.addr(), "--json", ok=False, timeout=60) for _ in range(3)]
        assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr[-300:] for r in runs]
        assert json.loads(runs[0].stdout)["new"] == 1
        got = result(slow, timeout=90)
        assert got["sessions"] >= 3, got
        c_peer = c.json("id")["peer_id"]
        assert [p["proven"] for p in peer_doc(a, c_peer)] == [True]
    finally:
        _stop(a)


def test_replayed_sketches_stay_within_a_work_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imier.nodeapp.bounds import WORK_BURST, WORK_RATE, round_work

    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    n = 5000
    body, evs, _, _ = _history(n, 0, 0)
    _fill(a, body, evs)
    _fill(b, body, evs[: n - 50])
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        seconds = 15.0
        t0 = time.monotonic()
        rep = attack(a, "replay", "--seconds", str(seconds), "--body", body.hex())
        time.sleep(3)
        stats = b.json("sync", a.addr())  # a good peer, during the attack
        assert stats["new"] == 51
        r = result(rep)
        elapsed = time.monotonic() - t0
        me = b.json("id").get("peer_id") if isinstance(b.json("id"), dict) else None
        attackers = [p for p in a.json("peers")["peers"] if p["peer_id"] != me and p["work"] > 0
                     and p["node"] == "replay"]
        assert attackers, a.json("peers")
        work = sum(p["work"] for p in attackers)
        budget = WORK_BURST + WORK_RATE * elapsed + round_work(n + 1)
        print(f"replay attacker: {r}; work counted {work} units, budget {budget:.0f}")
        assert r["rounds"] > 0
        assert work <= budget, (work, budget)
        codes = {o["code"] for p in attackers for o in p["recent_offences"]}
        assert "work_budget" in codes, attackers
        assert same_sets([a, b])
    finally:
        _stop(a)


def _set_limits(node: Node, **limits: int) -> None:
    from imier.store.home import Config

    path = node.home / "config.toml"
    cfg = Config.load(path)
    for k, v in limits.items():
        setattr(cfg, k, v)
    path.write_text(cfg.to_toml(), encoding="utf-8")


def test_a_deferred_flood_stays_within_its_byte_bound(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Future-dated 58 KB events pushed by sync, a fresh peer id every session: the
    daemon's deferred queue (read from its control socket) stays within its bound."""
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    bound, per_peer = 2 * 1024 * 1024, 512 * 1024
    _set_limits(a, deferred_max_bytes=bound, deferred_peer_bytes=per_peer)
    body, evs, _, _ = _history(60, 0, 0)
    _fill(a, body, evs)
    _fill(b, body, evs[:20])
    try:
        a.start("--sync-interval", "3600s", "--no-gossip")
        before = stored(a)
        flood = attack(a, "future", "--body", body.hex(), "--mb", "12", "--per-session", "20",
                       "--seconds", "90")
        seen: list[tuple[int, int]] = []
        for _ in range(400):  # sample while it runs (bounded)
            doc = a.json("peers")
            seen.append((doc["deferred"], doc["deferred_bytes"]))
            if flood.poll() is not None:
                break
        r = result(flood)
        doc = a.json("peers")
        seen.append((doc["deferred"], doc["deferred_bytes"]))
        print(f"future flood: {r}; deferred (count, bytes) samples {seen[:3]} ... {seen[-3:]}")
        assert r["sent_bytes"] >= 5 * bound, r  # the flood was several times the bound
        assert all(size <= bound for _, size in seen), seen
        # counted as raw bytes + overhead: the count agrees with the bytes
        assert all(n * 58_000 <= size for n, size in seen), seen
        assert doc["deferred"] > 0 and doc["deferred_bytes"] > per_peer, doc  # kept, from several peer ids
        assert stored(a) == before  # nothing future-dated was written
        stats = b.json("sync", a.addr())  # a good peer still syncs
        assert stats["new"] == 41 and same_sets([a, b])
    finally:
        _stop(a)


def test_a_listen_port_in_use_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    port = free_port()
    try:
        a.start("--listen", f"/ip4/127.0.0.1/tcp/{port}")
        assert any(line.startswith("ready /ip4/127.0.0.1/tcp/") for line in a.log().splitlines()), a.log()
        r = subprocess.run([sys.executable, "-m", "imier.cli.main", "daemon", "--no-mdns",
                            "--listen", f"/ip4/127.0.0.1/tcp/{port}"],
                           env=b.env(), capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert len(errors) == 1 and "already in use" in errors[0] and str(port) in errors[0], r.stderr
        assert "Traceback" not in r.stderr and "ready" not in r.stdout
    finally:
        _stop(a)
