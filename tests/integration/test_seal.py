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
