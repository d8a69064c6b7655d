"""Real daemons on 127.0.0.1 converge: three nodes, a late joiner, a partition, no gossip.

The people's clock is fixed in the past with IMIER_NOW, so every vote falls in
its window without sleeping; the daemons use the real clock (past events are
fine, only future ones are deferred).
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timezone

import pytest

from .nodes import Node, free_port, same_sets, shared, wait_until

pytestmark = pytest.mark.integration

S = 1000
CHARTER = ["--charter", "discussion=5s", "--charter", "vote_window=60s",
           "--charter", "amendment_window=60s", "--charter", "contention_window=60s"]


def _t0() -> int:
    return (int(time.time() * 1000) // S) * S - 3600 * S


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _holds(node: Node, body: str) -> bool:
    return any(b["id"] == body for b in node.json("body", "list"))


def _accept(node: Node, body: str, name: str) -> None:
    """Wait for the invitation to ``body`` (an admission learnt from a peer), follow it by
    name, and wait for the node to hold the body's record."""
    wait_until(lambda: any(i["body"] == body for i in node.json("body", "invitations")), 30,
               f"{node.name} to learn of its admission to {name}")
    assert not _holds(node, body)  # an invitation stores nothing
    node.run("body", "follow", name)
    assert node.json("body", "invitations") == []
    wait_until(lambda: _holds(node, body), 30, f"{node.name} to hold {name}")


def test_three_nodes_late_joiner_and_partition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t0 = _t0()
    a, b, c = Node(tmp_path, "a"), Node(tmp_path, "b"), Node(tmp_path, "c")
    ana, ben, cid = a.init("ana"), b.init("ben"), c.init("cid")
    north = a.run("body", "found", "community", "North", *CHARTER, IMIER_NOW=str(t0)).stdout.strip()
    a.run("member", "admit", "North", ben, IMIER_NOW=str(t0 + S))
    a.run("member", "admit", "North", cid, IMIER_NOW=str(t0 + S))
    try:
        a.start("--sync-interval", "2s")
        b.start("--bootstrap", a.addr(), "--sync-interval", "2s")
        # b learns of its admission from a in the handshake: an invitation (holding.py);
        # ben accepts it by name, and from then on b holds North
        _accept(b, north, "North")
        prop = b.run("propose", "North", "--title", "Benches", "--text", "Benches in the square.",
                     IMIER_NOW=str(t0 + 2 * S)).stdout.strip()
        wait_until(lambda: prop.encode() and bytes.fromhex(prop) in a.event_ids(), 20, "a to get the proposal")
        a.run("vote", prop, "yes", IMIER_NOW=str(t0 + 8 * S))
        b.run("vote", prop, "yes", IMIER_NOW=str(t0 + 9 * S))
        wait_until(lambda: same_sets([a, b]), 20, "a and b to converge")
        assert len(a.event_ids()) == 6

        # c starts after the votes: nothing to gossip, it catches up through sync alone
        c.run("body", "follow", north)  # cid knows North's id: following it by id needs no invitation
        c.start("--bootstrap", a.addr(), "--sync-interval", "2s")
        wait_until(lambda: same_sets([a, b, c]), 30, "c to catch up")

        # partition: b is stopped while c votes; b heals on restart
        took = b.stop()
        assert took < 2.0, f"b took {took:.2f} s to stop"
        c.run("vote", prop, "yes", IMIER_NOW=str(t0 + 10 * S))
        a.run("vote", prop, "no", "--category", "cost", IMIER_NOW=str(t0 + 11 * S))
        wait_until(lambda: same_sets([a, c]) and len(a.event_ids()) == 8, 20, "a and c to converge")
        assert len(b.event_ids()) == 6
        b.start("--bootstrap", a.addr(), "--sync-interval", "2s")
        wait_until(lambda: same_sets([a, b, c]), 30, "b to heal after the partition")

        as_of = _iso(t0 + 10 * 60 * S)
        docs = [shared(n.json("status", prop, "--as-of", as_of)) for n in (a, b, c)]
        assert docs[0] == docs[1] == docs[2]
        assert docs[0]["id"] == prop
        everything = [shared(n.json("status", "--as-of", as_of)) for n in (a, b, c)]
        assert everything[0] == everything[1] == everything[2]

        via_daemon = b.json("sync", a.addr())  # one-shot, through b's running daemon
        assert via_daemon["via"] == "daemon" and via_daemon["have"] == via_daemon["need"] == 0
        assert via_daemon["existing_connection"] is True  # b bootstrapped from a

        ident = a.json("id")
        assert ident["peer_id"] and ident["addresses"]
        assert all(x.endswith("/p2p/" + ident["peer_id"]) and x.startswith("/ip4/127.0.0.1/tcp/")
                   for x in ident["addresses"])
        peers = a.json("peers")
        names = {p["node"] for p in peers["peers"] if p["connected"]}
        assert {"b", "c"} <= names
        assert all(p["offences"] == 0 for p in peers["peers"])
        assert "gossip from" in a.log() + b.log() + c.log()  # the hint path was used too
        assert ana and north
    finally:
        for n in (a, b, c):
            if n.proc is not None and n.proc.poll() is None:
                took = n.stop(sig=signal.SIGINT if n is c else signal.SIGTERM)
                assert took < 2.0, f"{n.name} took {took:.2f} s to stop"
                assert n.proc.returncode == 0 and "stopped cleanly" in n.log(), n.log()
            n.kill()


def test_without_gossip_sync_alone_converges(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t0 = _t0()
    a, b, d = Node(tmp_path, "a"), Node(tmp_path, "b"), Node(tmp_path, "d")
    a.init("ana")
    ben = b.init("ben")
    d.init("dan")  # an observer: follows North without being a member
    north = a.run("body", "found", "community", "North", *CHARTER, IMIER_NOW=str(t0)).stdout.strip()
    a.run("member", "admit", "North", ben, IMIER_NOW=str(t0 + S))
    listen = f"/ip4/127.0.0.1/tcp/{free_port()}"
    try:
        a.start("--no-gossip", "--sync-interval", "1s", "--listen", listen)
        b.start("--no-gossip", "--sync-interval", "1s", "--bootstrap", a.addr())
        _accept(b, north, "North")
        prop = a.run("propose", "North", "--title", "Lights", "--text", "Street lights.",
                     IMIER_NOW=str(t0 + 2 * S)).stdout.strip()
        wait_until(lambda: bytes.fromhex(prop) in b.event_ids(), 20, "b to get the proposal")
        a.run("vote", prop, "yes", IMIER_NOW=str(t0 + 8 * S))
        b.run("vote", prop, "yes", IMIER_NOW=str(t0 + 9 * S))
        wait_until(lambda: same_sets([a, b]) and len(a.event_ids()) == 5, 20, "convergence without gossip")
        as_of = _iso(t0 + 10 * 60 * S)
        assert shared(a.json("status", prop, "--as-of", as_of)) == shared(b.json("status", prop, "--as-of", as_of))
        assert "gossip from" not in a.log() + b.log()
        # `imier body follow` by id on a node that holds nothing of North yet
        d.run("body", "follow", north)
        d.start("--no-gossip", "--sync-interval", "1s", "--bootstrap", b.addr())
        wait_until(lambda: same_sets([a, b, d]), 20, "the observer to fetch North's record")
        assert shared(d.json("status", prop, "--as-of", as_of)) == shared(a.json("status", prop, "--as-of", as_of))
        # a restarts on the same address: b redials it (backoff) and gets what a wrote offline
        before = a.addr()
        mark, amark = len(b.log_path.read_text()), len(a.log_path.read_text())
        a.stop()
        a.run("vote", prop, "no", "--category", "noise", IMIER_NOW=str(t0 + 10 * S))
        a.start("--no-gossip", "--sync-interval", "1s", "--listen", listen)
        assert a.addr() == before  # same key, same peer id across restarts
        wait_until(lambda: same_sets([a, b, d]) and len(b.event_ids()) == 6, 120, "b to reconnect to a")
        # b reached the restarted a again: by its redial (when it saw the old connection
        # go, "disconnected from a" then "connected to"), or, when a came back within one
        # of b's connection checks, by a session on the new connection.
        after, a_after = b.log_path.read_text()[mark:], a.log_path.read_text()[amark:]
        assert "connected to" in after or "synced with a" in after or "synced with b" in a_after, \
            after[-2000:]
    finally:
        for n in (a, b, d):
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
            n.kill()
