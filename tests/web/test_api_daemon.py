"""`imier daemon --web HOST:PORT`: the pages and the API served inside the daemon,
and an event posted over HTTP published by the daemon at once (the nudge)."""

from __future__ import annotations

import sqlite3
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
