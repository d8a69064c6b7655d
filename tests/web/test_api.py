"""The HTTP API of `imier web`, against a real server process on 127.0.0.1.

Every wait is bounded; every process is stopped by its own pid. The events
posted are signed here in Python, as a phone signs them in its page, with
the answer of /api/next.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from nacl.signing import SigningKey

from imier.protocol.events import Profile, Vote, sign_event
from imier.store.requests import join_code

PASSPHRASE = "web-tests"
pytestmark = pytest.mark.integration


def wait_until(pred: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Home:
    """A node's home driven through the real CLI (subprocesses)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"IMIER_HOME": str(self.path), "IMIER_PASSPHRASE": PASSPHRASE})
        for k in ("IMIER_AS", "IMIER_NOW"):
            env.pop(k, None)
        env.update(extra)
        return env

    def run(self, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "imier", *args], env=self.env(**env),
                           capture_output=True, text=True, timeout=120)
        if ok and r.returncode != 0:
            raise AssertionError(f"imier {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def json(self, *args: str, **env: str) -> Any:
        return json.loads(self.run(*args, "--json", **env).stdout)

    def digest(self) -> str:
        """The store's bytes on disk (database and write-ahead log)."""
        h = hashlib.sha256()
        for suffix in ("", "-wal"):
            p = Path(str(self.path / "store.sqlite3") + suffix)
            if p.exists():
                h.update(p.read_bytes())
        return h.hexdigest()


class Server:
    """`imier web --listen 127.0.0.1:0 ...` as a process; ``url`` once it serves."""

    def __init__(self, home: Home, *args: str, command: tuple[str, ...] = ("web",)) -> None:
        self.home = home
        self.log: list[str] = []
        cmd = [sys.executable, "-m", "imier", *command]
        if command == ("web",):
            cmd += ["--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen([*cmd, *args], env=home.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.url = self._wait_url()

    def _pump(self) -> None:
        """Read the server's output into ``log`` (a thread: pipes buffer, so no select)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def has(self, needle: str) -> bool:
        return any(needle in line for line in list(self.log))

    def _url(self) -> str | None:
        for line in list(self.log):
            if line.startswith("Member page: "):
                return line.split(": ", 1)[1].strip().rstrip("/")
            if "web pages on http://" in line:
                return line.split("web pages on ", 1)[1].split()[0].rstrip("/")
        return None

    def _wait_url(self, timeout: float = 60) -> str:
        import threading

        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self._url()
            if url:
                return url
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump take the last lines
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not start:\n" + "".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node holding North (ana, ben) with a proposal in its round 1 vote, served."""
    home = Home(tmp_path_factory.mktemp("web") / "home")
    home.run("init", "--name", "web-node")
    ana = home.run("key", "new", "ana").stdout.strip()
    ben = home.run("key", "new", "ben").stdout.strip()
    body = home.run("body", "found", "community", "North", "--charter", "discussion=1s",
                    "--charter", "vote_window=1h", "--charter", "amendment_window=1h",
                    IMIER_AS="ana").stdout.strip()
    home.run("member", "admit", "North", ben, IMIER_AS="ana")
    server = Server(home)
    client = httpx.Client(base_url=server.url, timeout=30)
    # a phone's key, made here: it asks to join and is admitted by its code before the
    # proposal (only members at a proposal's time are eligible to vote on it)
    phone = SigningKey.generate()
    code = client.post("/api/join", json={"body": body, "key": bytes(phone.verify_key).hex(),
                                          "name": "Cleo"}).json()["code"]
    assert code == join_code(bytes(phone.verify_key))
    home.run("member", "admit", "North", code, IMIER_AS="ana")
    prop = home.run("propose", "North", "--title", "A bench in the square", "--text", "Buy one bench.",
                    IMIER_AS="ana").stdout.strip()
    wait_until(lambda: client.get(f"/api/status/{prop}").json().get("open_phase") == "vote", 30,
               "round 1 to open")
    try:
        yield {"home": home, "server": server, "client": client, "ana": ana, "ben": ben,
               "body": body, "proposal": prop, "phone": phone}
    finally:
        client.close()
        server.stop()


def _no_as_of(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _no_as_of(v) for k, v in doc.items() if k != "as_of"}
    if isinstance(doc, list):
        return [_no_as_of(v) for v in doc]
    return doc


def _sign_next(client: httpx.Client, key: SigningKey, body: str, data: Any) -> bytes:
    me = bytes(key.verify_key).hex()
    nxt = client.get("/api/next", params={"author": me, "body": body}).json()
    now = client.get("/api/now").json()["now_ms"]
    ev = sign_event(key, body=bytes.fromhex(body), ts=max(now, nxt["ts_min"]), seq=nxt["seq"],
                    prev=[bytes.fromhex(p) for p in nxt["prev"]], data=data)
    return ev.raw


def _post(client: httpx.Client, raw: bytes) -> httpx.Response:
    return client.post("/api/events", content=raw, headers={"content-type": "application/octet-stream"})


# -- reads ----------------------------------------------------------------------------------


def test_status_is_the_cli_document(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    r = c.get("/api/status")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    web = r.json()
    cli = home.json("status")
    assert _no_as_of(web) == _no_as_of(cli)
    assert [p["id"] for p in web["proposals"]] == [node["proposal"]]
    one = c.get(f"/api/status/{node['proposal']}").json()
    assert _no_as_of(one) == _no_as_of(home.json("status", node["proposal"]))
    assert one["open_phase"] == "vote" and one["title"] == "A bench in the square"


def test_status_of_an_unknown_proposal(node: dict[str, Any]) -> None:
    c = node["client"]
    r = c.get("/api/status/" + "ab" * 32)
    assert r.status_code == 404
    assert r.json()["code"] == "unknown_proposal" and r.json()["field"] == "proposal"
    r = c.get("/api/status/not-hex")
    assert r.status_code == 400 and r.json()["field"] == "proposal"


def test_now_bodies_person(node: dict[str, Any]) -> None:
    c = node["client"]
    now = c.get("/api/now").json()["now_ms"]
    assert isinstance(now, int) and now > 1_700_000_000_000
    bodies = c.get("/api/bodies").json()
    assert [(b["id"], b["name"], b["kind"]) for b in bodies] == [(node["body"], "North", "community")]
    shown = {m["key"]: m["display"] for m in bodies[0]["members"]}
    assert shown[node["ana"]] == f"ana ({node['ana'][:4]})"
    assert shown[node["ben"]] == f"ben ({node['ben'][:4]})"
    p = c.get("/api/person", params={"key": node["ben"]}).json()
    assert p["person"] == node["ben"] and p["name"] == "ben" and p["devices"] == []
    assert [b["id"] for b in p["bodies"]] == [node["body"]]
    stranger = c.get("/api/person", params={"key": "cd" * 32}).json()
    assert stranger["bodies"] == [] and stranger["name"] is None
    assert c.get("/api/person", params={"key": "xyz"}).json()["field"] == "key"


def test_next_names_own_previous_and_heads(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    ben = node["ben"]
    nxt = c.get("/api/next", params={"author": ben, "body": node["body"]}).json()
    assert set(nxt) == {"seq", "prev", "ts_min"}
    assert nxt["seq"] == 1  # ben has signed nothing in North yet
    assert nxt["prev"] == sorted(nxt["prev"]) and 1 <= len(nxt["prev"]) <= 8
    # ana's own last event is always in her prev, and her seq follows it
    ana_next = c.get("/api/next", params={"author": node["ana"], "body": node["body"]}).json()
    assert ana_next["seq"] >= 3  # found, admit, propose
    st = home.json("status", node["proposal"])
    assert ana_next["ts_min"] >= 0 and st["id"] == node["proposal"]
    r = c.get("/api/next", params={"author": ben, "body": "ef" * 32})
    assert r.status_code == 404 and r.json()["code"] == "unknown_body" and r.json()["field"] == "body"
    r = c.get("/api/next", params={"author": "zz", "body": node["body"]})
    assert r.status_code == 400 and r.json()["field"] == "author"


def test_unknown_api_path_and_method(node: dict[str, Any]) -> None:
    c = node["client"]
    r = c.get("/api/nothing")
    assert r.status_code == 404 and r.json()["code"] == "unknown_endpoint"
    assert c.delete("/api/status").status_code == 405


def test_qr_code_of_a_link(node: dict[str, Any]) -> None:
    import re

    import qrcode  # type: ignore[import-untyped]

    c = node["client"]
    text = f"{c.base_url}/#link={node['ana']}"
    r = c.get("/api/qr", params={"text": text})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["cache-control"] == "no-store"
    q = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    q.add_data(text)
    q.make(fit=True)
    want = {(x, y) for y, row in enumerate(q.get_matrix()) for x, v in enumerate(row) if v}
    got = {(int(x), int(y)) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", r.text)}
    assert got == want
    for params, field in (({}, "text"), ({"text": " "}, "text"), ({"text": "x" * 513}, "text")):
        r = c.get("/api/qr", params=params)
        assert r.status_code == 400 and r.json()["field"] == field


def test_security_headers_and_no_cookies(node: dict[str, Any]) -> None:
    c = node["client"]
    for path in ("/api/now", "/api/status", "/api/nothing"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in r.headers


# -- writes: signed events ---------------------------------------------------------------------


def test_signed_vote_is_accepted_and_counted(node: dict[str, Any], tmp_path: Path) -> None:
    """A key made here (as on a phone), admitted by its join code, signs a vote with
    /api/next's answer; `imier status --json` counts it."""
    c, home = node["client"], node["home"]
    phone = node["phone"]
    me = bytes(phone.verify_key).hex()
    before = home.json("status", node["proposal"])["rounds"][0]["bodies"]["North"]
    assert before["eligible"] == 3
    raw = _sign_next(c, phone, node["body"], Vote(target=bytes.fromhex(node["proposal"]), choice="yes"))
    r = _post(c, raw)
    assert r.status_code == 201, r.text
    assert r.json() == {"id": hashlib.sha256(raw).hexdigest(), "state": "accepted"}
    after = home.json("status", node["proposal"])
    north = after["rounds"][0]["bodies"]["North"]
    assert north["yes"] == before["yes"] + 1, (before, north)
    assert me not in [i.get("author") for i in after["ignored"]]
    # posting the same bytes again changes nothing and says so
    again = _post(c, raw)
    assert again.status_code == 200 and again.json()["state"] == "accepted"


def test_profile_names_the_person(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    phone = SigningKey.generate()
    me = bytes(phone.verify_key).hex()
    code = c.post("/api/join", json={"body": node["body"], "key": me, "name": "Dora"}).json()["code"]
    home.run("member", "admit", "North", code, IMIER_AS="ben")
    r = _post(c, _sign_next(c, phone, node["body"], Profile(name="Dora")))
    assert r.status_code == 201 and r.json()["state"] == "accepted", r.text
    members = {m["key"]: m for m in c.get("/api/bodies").json()[0]["members"]}
    assert members[me]["display"] == f"Dora ({me[:4]})"
    assert c.get("/api/person", params={"key": me}).json()["name"] == "Dora"


def test_tampered_event_is_refused_and_store_unchanged(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    key = SigningKey.generate()
    raw = bytearray(_sign_next(c, key, node["body"], Vote(target=bytes.fromhex(node["proposal"]),
                                                          choice="no", severity="minor", category="cost")))
    digest = home.digest()
    bad_sig = bytes(raw[:-40]) + bytes([raw[-40] ^ 1]) + bytes(raw[-39:])  # inside sig, or ts after it
    flipped = bytes(raw).replace(b"cost", b"coat")  # the text changed after signing
    assert flipped != bytes(raw)
    for tampered, field in ((flipped, "sig"), (b"\x00" * 10, "event"), (bytes(raw[:-3]), "event")):
        r = _post(c, tampered)
        assert 400 <= r.status_code < 500, r.text
        doc = r.json()
        assert set(doc) == {"code", "field", "message"} and doc["code"] and doc["message"]
        assert doc["field"] == field, doc
    r = _post(c, bad_sig)
    assert r.status_code == 400 and r.json()["code"] in ("bad_signature", "not_canonical"), r.text
    assert home.digest() == digest


def test_event_refused_by_the_record(node: dict[str, Any]) -> None:
    """Well signed but naming a previous event that is not the author's own: refused
    by the store's causality rule with the field, nothing written."""
    c, home = node["client"], node["home"]
    key = SigningKey.generate()
    nxt = c.get("/api/next", params={"author": bytes(key.verify_key).hex(), "body": node["body"]}).json()
    ev = sign_event(key, body=bytes.fromhex(node["body"]), ts=nxt["ts_min"], seq=2,
                    prev=[bytes.fromhex(p) for p in nxt["prev"]],
                    data=Vote(target=bytes.fromhex(node["proposal"]), choice="yes"))
    digest = home.digest()
    r = _post(c, ev.raw)
    assert r.status_code == 409 and r.json()["code"] == "causality" and r.json()["field"] == "prev", r.text
    future = sign_event(key, body=bytes.fromhex(node["body"]), ts=c.get("/api/now").json()["now_ms"] + 3_600_000,
                        seq=1, prev=[bytes.fromhex(p) for p in nxt["prev"]],
                        data=Vote(target=bytes.fromhex(node["proposal"]), choice="yes"))
    r = _post(c, future.raw)
    assert r.status_code == 422 and r.json() == {**r.json(), "code": "future", "field": "ts"}
    other = sign_event(key, body=b"\x07" * 32, ts=nxt["ts_min"], seq=1, prev=[b"\x01" * 32],
                       data=Vote(target=bytes.fromhex(node["proposal"]), choice="yes"))
    r = _post(c, other.raw)
    assert r.status_code == 404 and r.json()["code"] == "unknown_body" and r.json()["field"] == "body"
    assert home.digest() == digest


def test_oversized_and_wrong_type_refused(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    digest = home.digest()
    r = c.post("/api/events", content=b"\x00" * (70 * 1024 + 1),
               headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the bytes pass the limit
        for _ in range(100):
            yield b"\x00" * 4096

    r = c.post("/api/events", content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = c.post("/api/events", content=b"\x00" * 10, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["field"] == "content-type"
    r = c.post("/api/join", content=json.dumps({"body": node["body"], "key": "00" * 32,
                                                "name": "x" * 5000}),
               headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert home.digest() == digest


# -- join requests -------------------------------------------------------------------------------


def test_join_request_round_trip(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    key = bytes(SigningKey.generate().verify_key)
    r = c.post("/api/join", json={"body": node["body"], "key": key.hex(), "name": "Eli"})
    assert r.status_code == 201
    code = r.json()["code"]
    assert code == join_code(key) and len(code) == 7 and code[3] == "-"
    listed = c.get("/api/join", params={"body": node["body"]}).json()
    assert {"key": key.hex(), "name": "Eli", "code": code} in listed
    cli = home.json("member", "requests", "North")
    assert any(q["key"] == key.hex() and q["code"] == code and q["name"] == "Eli" for q in cli)
    table = home.run("member", "requests").stdout
    assert "Eli" in table and code in table
    home.run("member", "admit", "North", code.replace("-", ""), IMIER_AS="ana")
    members = home.json("member", "list", "North")["members"]
    assert key.hex() in [m["public_key"] for m in members]
    assert key.hex() not in [q["key"] for q in c.get("/api/join", params={"body": node["body"]}).json()]
    assert [b["id"] for b in c.get("/api/person", params={"key": key.hex()}).json()["bodies"]] == [node["body"]]
    # a code nobody asked with
    bad = home.run("member", "admit", "North", "000-000", ok=False, IMIER_AS="ana")
    assert bad.returncode == 1 and "join request" in bad.stderr


def test_join_request_refusals(node: dict[str, Any]) -> None:
    c = node["client"]
    key = "12" * 32
    cases = [
        ({"body": "ab" * 32, "key": key, "name": "X"}, 404, "body"),
        ({"body": node["body"], "key": "12", "name": "X"}, 400, "key"),
        ({"body": node["body"], "key": key, "name": ""}, 400, "name"),
        ({"body": node["body"], "key": key, "name": "y" * 65}, 400, "name"),
        ({"body": node["body"], "key": key, "name": "X", "admin": True}, 400, "admin"),
    ]
    for doc, status, field in cases:
        r = c.post("/api/join", json=doc)
        assert r.status_code == status and r.json()["field"] == field, (doc, r.text)
    r = c.post("/api/join", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "bad_json"
    assert c.get("/api/join", params={"body": "zz"}).json()["field"] == "body"


# -- the stream ---------------------------------------------------------------------------------


def _read_status_events(lines: Iterator[str], want: Any, timeout: float) -> dict[str, Any]:
    """Read server-sent events until a ``status`` whose data satisfies ``want``."""
    deadline = time.monotonic() + timeout
    event = None
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "status":
            doc = json.loads(line[6:])
            if want(doc):
                return doc  # type: ignore[no-any-return]
        elif line == "":
            event = None
    raise AssertionError(f"no matching status event within {timeout} s")


def test_stream_sends_status_after_a_vote(node: dict[str, Any]) -> None:
    c, home = node["client"], node["home"]
    prop = node["proposal"]
    abstained = lambda d: d["id"] == prop and d["rounds"] and d["rounds"][0]["bodies"]["North"]["abstain"] >= 1  # noqa: E731
    with httpx.Client(base_url=str(c.base_url), timeout=httpx.Timeout(30, read=30)) as sc:
        with sc.stream("GET", "/api/stream") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            assert next(lines).startswith("retry:")  # the stream is open before the vote
            home.run("vote", prop, "abstain", IMIER_AS="ben")
            doc = _read_status_events(lines, abstained, 30)
    assert doc["body"] == node["body"] and "as_of" in doc


def test_stream_initial_snapshot(node: dict[str, Any]) -> None:
    c = node["client"]
    with httpx.Client(base_url=str(c.base_url), timeout=30) as sc:
        with sc.stream("GET", "/api/stream", params={"initial": "1"}) as resp:
            doc = _read_status_events(resp.iter_lines(), lambda d: d["id"] == node["proposal"], 20)
    assert doc["title"] == "A bench in the square"


# -- limits on their own server -----------------------------------------------------------------


def test_rate_limit_and_stream_bound(node: dict[str, Any]) -> None:
    server = Server(node["home"], "--rate", "1", "--burst", "5", "--streams", "1")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            codes = [c.get("/api/now").status_code for _ in range(12)]
            assert codes[:5] == [200] * 5 and 429 in codes[5:], codes
            r = c.get("/api/now")
            assert r.status_code == 429 and r.json()["code"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
            wait_until(lambda: c.get("/api/now").status_code == 200, 10, "a token to come back", 1.5)
            time.sleep(2.5)  # two tokens: one for the stream, one for the second try
            with httpx.Client(base_url=server.url, timeout=30) as sc, sc.stream("GET", "/api/stream") as one:
                assert one.status_code == 200
                second = c.get("/api/stream")
                assert second.status_code == 503 and second.json()["code"] == "too_many_streams"
    finally:
        server.stop()
    assert server.proc.returncode == 0, "".join(server.log)  # SIGTERM: a clean stop


# -- static pages --------------------------------------------------------------------------------


def test_static_pages_and_types(node: dict[str, Any], tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "vendor").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>member</title>")
    (site / "meeting.html").write_text("<!doctype html><title>meeting</title>")
    (site / "app.js").write_text("export const x = 1;\n")
    (site / "style.css").write_text("body{}\n")
    (site / "vendor" / "lib.js").write_text("export {};\n")
    server = Server(node["home"], "--static", str(site))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = c.get("/")
            assert r.status_code == 200 and "member" in r.text
            assert r.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in r.headers["content-security-policy"]
            r = c.get("/meeting")
            assert r.status_code == 200 and "meeting" in r.text
            assert c.get("/app.js").headers["content-type"].startswith("text/javascript")
            assert c.get("/vendor/lib.js").headers["content-type"].startswith("text/javascript")
            assert c.get("/style.css").headers["content-type"].startswith("text/css")
            assert c.get("/nothing.js").status_code == 404
            assert c.get("/..%2f..%2fstore.sqlite3").status_code == 404
            assert c.get("/api/now").status_code == 200  # the API still wins over the files
    finally:
        server.stop()


def test_installed_pages_are_served(node: dict[str, Any]) -> None:
    """The pages shipped in the package (webfront's), when they are there."""
    from imier.web.app import STATIC

    r = node["client"].get("/")
    if (STATIC / "index.html").is_file():
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    else:
        assert r.status_code == 404 and r.json()["code"] == "no_page"


# -- the command itself ----------------------------------------------------------------------------


def test_web_stack_not_imported_by_vote_or_status(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from imier.cli.main import main\n"
        "rc = main(['init'])\n"
        "rc = main(['key', 'new', 'ana']) or rc\n"
        "rc = main(['body', 'found', 'community', 'North']) or rc\n"
        "rc = main(['status', '--json']) or rc\n"
        "rc = main(['member', 'requests', '--json']) or rc\n"
        "assert rc == 0, rc\n"
        "heavy = ('hypercorn', 'starlette', 'qrcode', 'anyio', 'libp2p')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy]\n"
        "assert not loaded, loaded[:5]\n"
    )
    env = {"IMIER_HOME": str(tmp_path / "h"), "IMIER_PASSPHRASE": "pw", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_bad_listen_address(node: dict[str, Any]) -> None:
    home = node["home"]
    r = home.run("web", "--listen", "nowhere", ok=False)
    assert r.returncode == 1 and "HOST:PORT" in r.stderr
    r = home.run("web", "--listen", "127.0.0.1:99999", ok=False)
    assert r.returncode == 1 and "port" in r.stderr
    taken = node["server"].url.rsplit(":", 1)[1]
    r = home.run("web", "--listen", f"127.0.0.1:{taken}", ok=False)
    assert r.returncode == 1 and "cannot listen" in r.stderr


def test_qr_code_on_a_terminal(node: dict[str, Any]) -> None:
    import pty

    home = node["home"]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "imier", "web", "--listen", "127.0.0.1:0"],
                            env=home.env(), stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 60
        sel = selectors.DefaultSelector()
        sel.register(master, selectors.EVENT_READ)
        while b"Serving until" not in out and time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
        sel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert "Member page: http://127.0.0.1:" in text, text
    assert "Scan to open" in text and ("█" in text or "▀" in text or "▄" in text), text
    # not on a terminal (the other servers here): no QR code
    assert not any("Scan to open" in line for line in node["server"].log)


def test_linked_device_shows_its_person(node: dict[str, Any]) -> None:
    """A second device linked by the person's phone (s.11.1): /api/person of the device
    names the person and the bodies; the person's devices list it."""
    from imier.protocol.events import Link

    c = node["client"]
    phone = node["phone"]
    person = bytes(phone.verify_key).hex()
    laptop = SigningKey.generate()
    device = bytes(laptop.verify_key).hex()
    # The new device asks first (as the member page's link flow does): a join request
    # from an outsider, until the person's phone links it.
    assert c.post("/api/join", json={"body": node["body"], "key": device, "name": "Cleo"}).status_code == 201
    assert device in [q["key"] for q in c.get("/api/join", params={"body": node["body"]}).json()]
    assert device in [q["key"] for q in node["home"].json("member", "requests", "North")]
    r = _post(c, _sign_next(c, phone, node["body"], Link(device=bytes.fromhex(device))))
    assert r.status_code == 201 and r.json()["state"] == "accepted", r.text
    # Linked, it is no longer asking to join: not on the page, not on the command line.
    assert device not in [q["key"] for q in c.get("/api/join", params={"body": node["body"]}).json()]
    assert device not in [q["key"] for q in node["home"].json("member", "requests", "North")]
    assert device[:12] not in node["home"].run("member", "requests", "North").stdout
    r = node["home"].run("member", "admit", "North", join_code(bytes.fromhex(device)), ok=False, IMIER_AS="ana")
    assert r.returncode == 1 and "already in North" in r.stderr, r.stderr
    doc = c.get("/api/person", params={"key": device}).json()
    assert doc["person"] == person and [b["id"] for b in doc["bodies"]] == [node["body"]]
    assert device in doc["devices"]
    assert device in c.get("/api/person", params={"key": person}).json()["devices"]
    # the device signs with a chain of its own: its first event in the body is seq 1
    assert c.get("/api/next", params={"author": device, "body": node["body"]}).json()["seq"] == 1


def test_other_host_names_refused(node: dict[str, Any]) -> None:
    """A page elsewhere that rebinds its own name to this address arrives with that
    name in Host: refused. IP addresses, localhost and this machine's name are answered."""
    import socket

    c = node["client"]
    for host in ("evil.example", "evil.example:4040", "127.0.0.1.nip.io"):
        r = c.get("/api/status", headers={"host": host})
        assert r.status_code == 421 and r.json()["code"] == "bad_host" and r.json()["field"] == "host"
    for host in ("localhost:4040", "127.0.0.1", "[::1]:4040", "192.168.1.20:4040", socket.gethostname()):
        assert c.get("/api/now", headers={"host": host}).status_code == 200, host


def test_join_needs_json_content_type(node: dict[str, Any]) -> None:
    """A cross-site form can post text/plain without asking; the node takes JSON only."""
    c = node["client"]
    doc = json.dumps({"body": node["body"], "key": "34" * 32, "name": "Form"})
    r = c.post("/api/join", content=doc, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["field"] == "content-type"
    assert "34" * 32 not in [q["key"] for q in c.get("/api/join", params={"body": node["body"]}).json()]


def test_two_tabs_cannot_fork_a_person(node: dict[str, Any]) -> None:
    """Two events signed from one /api/next answer: the first is taken, the second is
    refused (seq_taken) and nothing of it written, so the page signs it again."""
    c, home = node["client"], node["home"]
    phone = node["phone"]
    me = bytes(phone.verify_key).hex()
    nxt = c.get("/api/next", params={"author": me, "body": node["body"]}).json()
    now = c.get("/api/now").json()["now_ms"]
    one, two = (sign_event(phone, body=bytes.fromhex(node["body"]), ts=max(now, nxt["ts_min"]),
                           seq=nxt["seq"], prev=[bytes.fromhex(p) for p in nxt["prev"]],
                           data=Profile(name=name)) for name in ("Cleo", "Cleo B"))
    assert _post(c, one.raw).status_code == 201
    digest = home.digest()
    r = _post(c, two.raw)
    assert r.status_code == 409 and r.json()["code"] == "seq_taken" and r.json()["field"] == "seq", r.text
    assert home.digest() == digest
    assert home.json("status", node["proposal"])["forks"] == []
