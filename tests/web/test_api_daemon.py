"""`imier daemon --web HOST:PORT`: the pages and the API served inside the daemon,
and an event posted over HTTP published by the daemon at once (the nudge)."""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from imier.protocol.events import Vote

from .test_api import Home, Server, _post, _sign_next, wait_until

pytestmark = pytest.mark.integration


def _outbox(home: Path) -> int:
    con = sqlite3.connect(f"file:{home / 'store.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return int(con.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        con.close()


def test_daemon_serves_web_and_publishes_posted_events(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.run("init", "--name", "daemon-web")
    home.run("key", "new", "ana")
    body = home.run("body", "found", "community", "North", "--charter", "discussion=1s").stdout.strip()
    server = Server(home, "--no-mdns", "--no-gossip", "--listen", "/ip4/127.0.0.1/tcp/0",
                    "--web", "127.0.0.1:0", command=("daemon",))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert isinstance(c.get("/api/now").json()["now_ms"], int)
            assert [b["name"] for b in c.get("/api/bodies").json()] == ["North"]
            phone = SigningKey.generate()
            code = c.post("/api/join", json={"body": body, "key": bytes(phone.verify_key).hex(),
                                             "name": "Cleo"}).json()["code"]
            home.run("member", "admit", "North", code)
            prop = home.run("propose", "North", "--title", "T", "--text", "X").stdout.strip()
            wait_until(lambda: c.get(f"/api/status/{prop}").json()["open_phase"] == "vote", 30, "round 1")
            wait_until(lambda: _outbox(home.path) == 0, 30, "the CLI's events to be published")
            raw = _sign_next(c, phone, body, Vote(target=bytes.fromhex(prop), choice="yes"))
            r = _post(c, raw)
            assert r.status_code == 201 and r.json()["state"] == "accepted", r.text
            wait_until(lambda: _outbox(home.path) == 0, 30, "the posted event to leave the outbox")
            wait_until(lambda: server.has("published 1 local event"), 10, "the daemon's log of it")
            doc = home.json("status", prop)
            assert doc["rounds"][0]["bodies"]["North"]["yes"] == 1
    finally:
        server.stop()
    assert server.proc.returncode == 0, "".join(server.log[-20:])


def test_daemon_web_address_refused_clearly(tmp_path: Path) -> None:
    import socket

    home = Home(tmp_path / "home")
    home.run("init", "--name", "daemon-web")
    r = home.run("daemon", "--no-mdns", "--web", "nowhere", ok=False)
    assert r.returncode == 1 and "HOST:PORT" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = home.run("daemon", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--web", f"127.0.0.1:{port}",
                     ok=False)
    assert r.returncode == 1 and "cannot listen" in r.stderr, r.stderr
    assert not (home.path / "daemon.json").exists()


def test_daemon_web_takes_the_options_of_imier_web(tmp_path: Path) -> None:
    """One option set: `imier daemon --web` bounds and hosts its pages as `imier web` does."""
    home = Home(tmp_path / "home")
    home.run("init", "--name", "daemon-web")
    server = Server(home, "--no-mdns", "--no-gossip", "--listen", "/ip4/127.0.0.1/tcp/0",
                    "--web", "127.0.0.1:0", "--rate", "0.5", "--burst", "4", "--streams", "1",
                    "--allow-host", "meeting.lan", command=("daemon",))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            # --allow-host: a name besides IP addresses; any other is refused (DNS rebinding)
            assert c.get("/api/now", headers={"host": "meeting.lan"}).status_code == 200
            r = c.get("/api/now", headers={"host": "elsewhere.example"})
            assert r.status_code == 421 and r.json()["code"] == "bad_host"
            # --burst 4 (one taken above; a refused host is refused before the bucket),
            # then --rate 0.5 a second
            codes = [c.get("/api/now").status_code for _ in range(6)]
            assert codes[:3] == [200] * 3 and 429 in codes[3:], codes
            wait_until(lambda: c.get("/api/now").status_code == 200, 10, "a token back", 1.0)
            time.sleep(4.5)  # two tokens at 0.5 a second: the stream, then the second try
            with httpx.Client(base_url=server.url, timeout=30) as sc, sc.stream("GET", "/api/stream") as one:
                assert one.status_code == 200
                second = c.get("/api/stream")  # --streams 1
                assert second.status_code == 503 and second.json()["code"] == "too_many_streams"
    finally:
        server.stop()
    assert server.proc.returncode == 0, "".join(server.log[-20:])


def test_daemon_web_options_need_web_and_are_checked(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.run("init", "--name", "daemon-web")
    r = home.run("daemon", "--no-mdns", "--rate", "5", ok=False)
    assert r.returncode == 1 and "--rate" in r.stderr and "--web" in r.stderr, r.stderr
    r = home.run("daemon", "--no-mdns", "--web", "127.0.0.1:0", "--burst", "0", ok=False)
    assert r.returncode == 1 and "--burst" in r.stderr, r.stderr
    r = home.run("daemon", "--no-mdns", "--web", "127.0.0.1:0", "--static", str(tmp_path), ok=False)
    assert r.returncode == 1 and "--static" in r.stderr and "index.html" in r.stderr, r.stderr
    assert not (home.path / "daemon.json").exists()


def test_web_and_daemon_share_one_option_set() -> None:
    from imier.cli.main import build_parser
    from imier.cli.web import WEB_OPTIONS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))

    def web_group(cmd: str) -> dict[str, tuple[str, ...]]:
        group = next(g for g in sub.choices[cmd]._action_groups if g.title and g.title.startswith("the web pages"))
        return {a.dest: tuple(a.option_strings) for a in group._group_actions}

    assert web_group("web") == web_group("daemon")
    assert set(web_group("web")) == set(WEB_OPTIONS)
