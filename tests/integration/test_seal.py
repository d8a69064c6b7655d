"""Real daemons on 127.0.0.1 seal closed windows by themselves (docs/rules.md s.10.5), and a
sealed count stays closed (issue #11).

Real time throughout (no IMIER_NOW, except for the one backdated vote): charter windows
of seconds, `seal_delay = "1s"` in each node's config, every wait bounded.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .nodes import Node, free_port, wait_until

pytestmark = pytest.mark.integration

S = 1000
CHARTER = ["--charter", "discussion=4s", "--charter", "vote_window=15s",
           "--charter", "amendment_window=15s", "--charter", "contention_window=4s"]
DAEMON = ["--sync-interval", "2s"]


def _short_seal_delay(node: Node, delay: str = "1s") -> None:
    cfg = node.home / "config.toml"
    text = cfg.read_text()
    assert "[node]\n" in text
    cfg.write_text(text.replace("[node]\n", f'[node]\nseal_delay = "{delay}"\n', 1))


def _listen(node: Node) -> list[str]:
    return ["--listen", f"/ip4/127.0.0.1/tcp/{free_port()}"]


def _status(node: Node, pid: str) -> Any:
    return node.json("status", pid)


def _phase(node: Node, pid: str, phase: str | None, timeout: float, what: str) -> Any:
    return wait_until(lambda: (d := _status(node, pid))["open_phase"] == phase and d, timeout, what, 0.5)


def _seal(doc: Any, window: str) -> Any:
    return next((s for s in doc["seals"] if s["window"] == window), None)


def _holds(node: Node, eid: str) -> bool:
    return bytes.fromhex(eid) in node.event_ids()


def test_a_daemon_seals_by_itself_after_seal_delay(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One node holding both tellers' keys: its daemon seals round 1 and contention."""
    a = Node(tmp_path, "a")
    ana = a.init("ana")
    ben = a.run("key", "new", "ben").stdout.strip()
    _short_seal_delay(a)
    a.run("body", "found", "community", "North", *CHARTER, IMIER_AS="ana")
    a.run("member", "admit", "North", ben, IMIER_AS="ana")
    try:
        a.start(*_listen(a), *DAEMON)
        draw = a.run("propose", "North", "--title", "Tellers", "--text", "Two tellers by lot.",
                     "--kind", "draw", "--task", "teller", "--seats", "2", "--all-members",
                     IMIER_AS="ana").stdout.strip()
        _phase(a, draw, "vote", 30, "the draw's vote to open")
        for who in ("ana", "ben"):
            a.run("vote", draw, "yes", IMIER_AS=who)
        d = wait_until(lambda: (x := _status(a, draw))["state"] == "carried" and x, 60, "the draw to carry", 0.5)
        assert sorted(d["draw"]["chosen"]) == sorted([ana, ben])
        # the draw's own windows closed before anyone was a teller: nothing to seal there
        assert all(s["tellers"] == 0 for s in d["seals"])

        pid = a.run("propose", "North", "--title", "Benches", "--text", "Benches in the square.",
                    IMIER_AS="ana").stdout.strip()
        _phase(a, pid, "vote", 30, "round 1 to open")
        for who in ("ana", "ben"):
            a.run("vote", pid, "yes", IMIER_AS=who)
        doc = _phase(a, pid, "contention", 40, "round 1 to close")
        assert _seal(doc, "r1") is not None
        # nobody typed `imier seal`: the daemon seals, seal_delay after the close
        doc = wait_until(lambda: (x := _status(a, pid)) and (s := _seal(x, "r1")) and s["sealed"] and x,
                         60, "the daemon to seal round 1", 0.5)
        assert _seal(doc, "r1") == {"window": "r1", "sealed": True, "tellers": 2, "sealed_by": 2,
                                    "text": _seal(doc, "r1")["text"]}
        assert "sealed 2/2" in " ".join(a.run("status", pid).stdout.split())
        doc = wait_until(lambda: (x := _status(a, pid)) and x["state"] == "carried"
                         and (s := _seal(x, "c")) and s["sealed"] and x, 60, "the daemon to seal contention", 0.5)
        assert "sealed r1 of" in a.log() and "sealed c of" in a.log()
        # once sealed, the loop signs nothing more for those windows
        n = len(a.event_ids())
        time.sleep(3)
        assert len(a.event_ids()) == n
    finally:
        a.kill()


def test_three_daemons_seal_and_a_backdated_vote_changes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue #11's integration test: tellers drawn by lot among three nodes' people, round 1
    sealed by the daemons themselves, then dan's vote backdated into round 1 is delivered by
    a bundle (to a) and by sync (to c): no node's verdict moves, every node says sealed."""
    a, b, c = Node(tmp_path, "a"), Node(tmp_path, "b"), Node(tmp_path, "c")
    d = Node(tmp_path, "d")  # dan's laptop: no daemon
    ana, ben, cid, dan = a.init("ana"), b.init("ben"), c.init("cid"), d.init("dan")
    nodes = [a, b, c]
    for n in nodes:
        _short_seal_delay(n)
    north = a.run("body", "found", "community", "North", *CHARTER).stdout.strip()
    for k in (ben, cid):
        a.run("member", "admit", "North", k)
    for n in (b, c):  # an admission learnt from a peer is only an invitation: they follow North
        n.run("body", "follow", north)
    try:
        a.start(*_listen(a), *DAEMON)
        for n in (b, c):
            n.start(*_listen(n), "--bootstrap", a.addr(), *DAEMON)
        wait_until(lambda: all(any(x["id"] == north for x in n.json("body", "list")) for n in (b, c)),
                   30, "b and c to hold North")
        # two tellers drawn by lot among ana, ben and cid (dan is admitted after the draw)
        draw = a.run("propose", "North", "--title", "Tellers", "--text", "Two tellers by lot.",
                     "--kind", "draw", "--task", "teller", "--seats", "2", "--all-members").stdout.strip()
        wait_until(lambda: all(_holds(n, draw) for n in nodes), 20, "the draw to reach every node")
        a.run("member", "admit", "North", dan)
        _phase(a, draw, "vote", 30, "the draw's vote to open")
        for n in nodes:
            _phase(n, draw, "vote", 20, f"the draw's vote to open on {n.name}")
            n.run("vote", draw, "yes")
        got = wait_until(lambda: (x := _status(a, draw))["state"] == "carried" and x, 60, "the draw to carry", 0.5)
        tellers = set(got["draw"]["chosen"])
        assert len(tellers) == 2 and tellers <= {ana, ben, cid}

        pid = b.run("propose", "North", "--title", "Benches", "--text", "Benches in the square.").stdout.strip()
        wait_until(lambda: all(_holds(n, pid) for n in nodes), 20, "the proposal to reach every node")
        # dan's laptop takes the record by a bundle before round 1 opens
        before = tmp_path / "before.bundle"
        a.run("export", str(before))
        d.run("import", str(before))
        for n in nodes:
            _phase(n, pid, "vote", 30, f"round 1 to open on {n.name}")
            n.run("vote", pid, "yes")
        for n in nodes:
            wait_until(lambda n=n: (x := _status(n, pid)) and (s := _seal(x, "r1")) and s["sealed"],
                       90, f"round 1 sealed on {n.name}", 0.5)
        docs = [_status(n, pid) for n in nodes]
        r1 = docs[0]["rounds"][0]
        assert r1["passed"] is True and r1["support"] == "3/3"
        assert all(_seal(x, "r1")["sealed_by"] == 2 and _seal(x, "r1")["tellers"] == 2 for x in docs)
        close = int(docs[0]["rounds_plain"][0]["closes"])
        held = len(a.event_ids())

        # dan signs a blocking `no` stamped inside round 1, its prev from before the close
        d.run("vote", pid, "no", "--blocking", IMIER_NOW=str(close - 3 * S))
        late = d.json("status", pid, IMIER_NOW=str(close - 2 * S))["turnout"][0]["voted"]
        assert late[dan] == "no"
        bundle = tmp_path / "late.bundle"
        d.run("export", str(bundle))
        assert a.json("import", str(bundle))["rejected"] == []  # delivered by a bundle to a
        # ... and by a sync from dan's laptop to c (a temporary host: d runs no daemon)
        d.run("vote", pid, "no", "--minor", "--category", "cost", IMIER_NOW=str(close - 2 * S))
        assert d.json("sync", c.addr())["via"] == "temporary host"
        wait_until(lambda: all(len(n.event_ids()) >= held + 2 for n in nodes) and
                   all(n.event_ids() == a.event_ids() for n in (b, c)), 60, "dan's votes to reach every node")

        for n, old in zip(nodes, docs, strict=True):
            doc = wait_until(lambda n=n: (x := _status(n, pid))["state"] == "carried" and x, 60,
                             f"contention to close on {n.name}", 0.5)
            assert doc["rounds"][0] == old["rounds"][0], f"{n.name}: round 1 moved"
            assert _seal(doc, "r1")["sealed"] is True
            mine = [i for i in doc["ignored"] if i["author"] == dan]
            assert len(mine) == 2 and all("reached the tellers after the close" in i["reason"] for i in mine)
            assert doc["late"] == []  # sealed: nothing late counts, nothing to warn about
            assert "sealed 2/2" in " ".join(n.run("status", pid).stdout.split())
        everything = [n.json("status", pid) for n in nodes]
        for x in everything:
            x.pop("as_of"), x.pop("can_do"), x.pop("summary"), x.pop("explain")
        assert everything[0] == everything[1] == everything[2]
    finally:
        for n in nodes:
            n.kill()
