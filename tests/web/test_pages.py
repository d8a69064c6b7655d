"""The member page and the meeting page in headless Chromium, against a real `imier web`.

Two browser contexts are two phones: each makes its key in the page, asks to
join, and is let in (one with `imier member admit North CODE`, one from the
other phone's page); both vote, `imier status --json` counts both, and the
meeting page shows each vote without reloading. A third context is a second
device of the first phone's person: linked from the first phone's page, it
votes, and the person counts once. A tampered event posted from a page is
refused with a reason and the store is unchanged. No page asks any address
but the node's (from the browser's own request log).

Screenshots go to tmp; with IMIER_SCREENSHOTS=DIR (e.g. docs/img) the three
of the README (member-phone, meeting-projector, member-link) are written
there, which is how docs/img/*.png were made; the other views stay in tmp.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from imier.store.requests import join_code

from .test_api import Home, Server, wait_until

pytestmark = pytest.mark.integration

PHONE = {"width": 360, "height": 780}
PROJECTOR = {"width": 1920, "height": 1080}
WAIT_MS = 30_000


class Phone:
    """One browser context: its own IndexedDB, so its own key."""

    def __init__(self, browser: Any, url: str, name: str, requests: list[str],
                 viewport: dict[str, int] = PHONE) -> None:
        self.ctx = browser.new_context(viewport=viewport, device_scale_factor=1)
        self.ctx.on("request", lambda r: requests.append(r.url))
        self.errors: list[str] = []
        self.page = self.ctx.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = url
        self.name = name

    def open(self, path: str = "/") -> None:
        self.page.goto(self.url + path)

    @property
    def key(self) -> str:
        return str(self.page.evaluate("() => window.imierDevice"))

    def start(self) -> str:
        """First visit: the page makes a key; give the name. Returns the key (hex)."""
        self.open()
        self.page.wait_for_selector("#name", timeout=WAIT_MS)
        self.page.fill("#name", self.name)
        self.page.click("form button[type=submit]")
        self.page.wait_for_selector("button.choice", timeout=WAIT_MS)
        return self.key

    def ask_to_join(self, body_name: str) -> str:
        self.page.click(f"button.choice:has-text('{body_name}')")
        self.page.wait_for_selector("#joincode", timeout=WAIT_MS)
        return str(self.page.text_content("#joincode")).strip()

    def wait_in(self) -> None:
        """Until the page says we are in and lists the group's proposals."""
        self.page.wait_for_selector("h2.group", timeout=WAIT_MS)

    def shows(self, selector: str, text: str) -> None:
        """Wait until ``selector``'s text includes ``text`` (the page updating itself)."""
        try:
            self.page.wait_for_function(
                "([s, t]) => { const e = document.querySelector(s); return !!e && e.textContent.includes(t); }",
                arg=[selector, text], timeout=WAIT_MS)
        except Exception:
            raise AssertionError(f"{selector} never showed {text!r}: "
                                 f"{self.page.text_content(selector) if self.page.query_selector(selector) else None!r}"
                                 ) from None

    def proposal(self, pid: str) -> Any:
        sel = f"article[data-proposal='{pid}']"
        self.page.wait_for_selector(sel, timeout=WAIT_MS)
        return self.page.locator(sel)

    def said(self, *words: str) -> str:
        """Wait until the page's message has all of ``words``; returns the message."""
        try:
            self.page.wait_for_function(
                "(ws) => { const n = document.getElementById('notice');"
                " return !n.hidden && ws.every((w) => n.textContent.includes(w)); }",
                arg=list(words), timeout=WAIT_MS)
        except Exception:
            raise AssertionError(f"the page never said {words!r}; it says "
                                 f"{self.page.text_content('#notice')!r}") from None
        return str(self.page.text_content("#notice"))

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[dict[str, Any]]:
    """North, founded by ana on the CLI, served by `imier web`, with nobody else yet."""
    home = Home(tmp_path_factory.mktemp("pages") / "home")
    home.run("init", "--name", "meeting-hall")
    home.run("key", "new", "ana")
    body = home.run("body", "found", "community", "North", "--charter", "discussion=1s",
                    "--charter", "vote_window=1h", "--charter", "amendment_window=1h",
                    IMIER_AS="ana").stdout.strip()
    # Every browser context here comes from 127.0.0.1, where a meeting's phones would
    # each have an address (and a rate bucket) of their own.
    server = Server(home, "--rate", "200", "--burst", "400")
    requests: list[str] = []
    phones: list[Phone] = []
    try:
        yield {"home": home, "server": server, "url": server.url, "body": body,
               "requests": requests, "phones": phones, "browser": browser}
    finally:
        for p in phones:
            p.close()
        server.stop()


def phone(world: dict[str, Any], name: str, viewport: dict[str, int] = PHONE) -> Phone:
    p = Phone(world["browser"], world["url"], name, world["requests"], viewport)
    world["phones"].append(p)
    return p


def north(world: dict[str, Any], pid: str) -> dict[str, Any]:
    doc = world["home"].json("status", pid)
    return doc["rounds"][-1]["bodies"]["North"]  # type: ignore[no-any-return]


def shots_dir(tmp: Path) -> Path:
    d = os.environ.get("IMIER_SCREENSHOTS")
    out = Path(d) if d else tmp
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_two_phones_join_vote_and_the_meeting_follows(world: dict[str, Any], tmp_path: Path) -> None:
    home = world["home"]
    dana, eli = phone(world, "Dana"), phone(world, "Eli")
    dana_key, eli_key = dana.start(), eli.start()
    assert dana_key != eli_key and len(dana_key) == 64
    # The key stays in the browser: another visit of the same phone finds the same key.
    dana.open()
    dana.page.wait_for_selector("button.choice", timeout=WAIT_MS)
    assert dana.key == dana_key

    # Dana is let in from the CLI, by the code her phone shows.
    code = dana.ask_to_join("North")
    assert len(code) == 7 and code[3] == "-"
    dana.page.screenshot(path=str(tmp_path / "member-join.png"), full_page=True)
    pending = home.run("member", "requests", "North").stdout
    assert code in pending and "Dana" in pending
    home.run("member", "admit", "North", code, IMIER_AS="ana")
    dana.wait_in()
    dana.said("You are in")

    # Eli is let in from Dana's page, after comparing the code.
    eli_code = eli.ask_to_join("North")
    req = dana.page.locator(f".request[data-key='{eli_key}']")
    req.wait_for(timeout=WAIT_MS)
    assert eli_code in str(req.text_content()) and "Eli" in str(req.text_content())
    req.locator("button.admit").click()
    dana.said("Letting Eli in: done")
    eli.wait_in()

    def named() -> dict[str, str] | None:
        got = {m["key"]: m["name"] for m in _bodies(world)["North"]["members"]}
        return got if got.get(dana_key) and got.get(eli_key) else None

    api_members = wait_until(named, 30, "both phones named in North")
    assert api_members[dana_key] == "Dana" and api_members[eli_key] == "Eli"  # each named itself

    # A proposal, made on the CLI once both are members (only they are eligible).
    pid = home.run("propose", "North", "--title", "A tool library", "--text",
                   "We open a tool library in the hall, on Saturdays.", IMIER_AS="ana").stdout.strip()
    wait_until(lambda: home.json("status", pid).get("open_phase") == "vote", 30, "round 1 to open")
    assert north(world, pid)["eligible"] == 3

    # The projector, opened before anyone votes; marked so a reload would show.
    hall = phone(world, "hall", PROJECTOR)
    hall.open(f"/meeting#{pid}")
    hall.page.wait_for_selector("#title", timeout=WAIT_MS)
    assert hall.page.text_content("#title") == "A tool library"
    hall.page.evaluate("() => { window.__notReloaded = true; }")
    turnout = "#counts [data-body='North'] .turnout"
    hall.shows(turnout, "0 of 3")

    # Dana votes yes.
    card = dana.proposal(pid)
    card.locator("button.yes").first.click()
    dana.said("Your yes", "done")
    dana.shows(f"article[data-proposal='{pid}'] .mine", "You voted yes")
    hall.shows(turnout, "1 of 3")

    # Eli votes no: a minor objection about cost, pleaded by Dana.
    card = eli.proposal(pid)
    card.locator("button.no").first.click()
    form = card.locator("form.objection")
    form.wait_for(timeout=WAIT_MS)
    form.locator("select.category").select_option("cost")
    form.locator("select.delegate").select_option(dana_key)
    eli.page.screenshot(path=str(tmp_path / "member-objection.png"), full_page=True)
    form.locator("button[type=submit]").click()
    eli.said("Your no", "done")
    hall.shows(turnout, "2 of 3")
    assert hall.page.evaluate("() => window.__notReloaded") is True  # live, no reload
    numbers = str(hall.page.text_content("#counts [data-body='North'] .numbers"))
    assert "1 yes" in numbers and "1 no" in numbers

    # The node's own status counts both, with the objection as made.
    doc = home.json("status", pid)
    n = doc["rounds"][-1]["bodies"]["North"]
    assert (n["yes"], n["no"], n["abstain"], n["eligible"]) == (1, 1, 0, 3)
    assert doc["rounds"][-1]["grievances"] == [
        {"category": "cost", "severity": "minor", "count": 1, "delegate": dana_key}]
    assert not [i for i in doc["ignored"] if i["author"] in (dana_key, eli_key)]

    # Who voted, by name: when the node's single status carries the turnout of the round
    # (the status work, docs/rules.md s.11.4), the projector names both, "Dana (0cec)".
    import httpx

    single = httpx.get(f"{world['url']}/api/status/{pid}", timeout=30).json()
    if "turnout" in single:
        hall.shows("#who .voted", f"Dana ({dana_key[:4]})")
        hall.shows("#who .voted", f"Eli ({eli_key[:4]})")
        hall.shows("#who .waiting", "ana (")

    # Each phone's page shows the count too, in words.
    dana.shows(f"article[data-proposal='{pid}'] .count", "2 of 3 voted")

    out = shots_dir(tmp_path)
    dana.page.screenshot(path=str(out / "member-phone.png"), full_page=True)
    hall.page.screenshot(path=str(out / "meeting-projector.png"))
    world.update(pid=pid, dana=dana, eli=eli, hall=hall, dana_key=dana_key, eli_key=eli_key)
    for p in (dana, eli, hall):
        assert p.errors == [], p.errors


def _bodies(world: dict[str, Any]) -> dict[str, Any]:
    import httpx

    return {b["name"]: b for b in httpx.get(world["url"] + "/api/bodies", timeout=30).json()}


def test_a_second_device_votes_and_the_person_counts_once(world: dict[str, Any], tmp_path: Path) -> None:
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    dana, pid = world["dana"], world["pid"]
    # Dana's first phone shows the link: a QR code of the address the new phone opens, and
    # the link code to type instead.
    dana.page.click("text=My name and devices")
    qr = dana.page.locator("#linkqr")
    qr.wait_for(timeout=WAIT_MS)
    link = str(qr.get_attribute("data-link"))
    assert link == f"{world['url']}/#link={world['dana_key']}"
    dana.page.wait_for_function("() => document.getElementById('linkqr').naturalWidth > 0", timeout=WAIT_MS)
    assert _qr_modules(world["url"] + str(qr.get_attribute("src"))) == _qr_of(link)  # it encodes the link
    link_code = str(dana.page.text_content("#linkcode")).strip()
    assert link_code == join_code(bytes.fromhex(world["dana_key"]))
    dana.page.evaluate("() => { document.getElementById('notice').hidden = true; }")
    dana.page.screenshot(path=str(tmp_path / "member-devices.png"), full_page=True)
    dana.page.locator("#link").screenshot(path=str(shots_dir(tmp_path) / "member-link.png"))

    # A phone that types the link code finds Dana (and goes back: it is not hers).
    other = phone(world, "someone")
    other.open()
    other.page.wait_for_selector("#name", timeout=WAIT_MS)
    other.page.click("#bycode summary")
    other.page.screenshot(path=str(tmp_path / "member-welcome.png"), full_page=True)
    other.page.fill("#linkcode-input", link_code.replace("-", ""))
    other.page.click("#linkcode-go")
    other.shows("#linkhere", f"Dana ({world['dana_key'][:4]})")
    other.page.click("text=No, go back")
    other.page.wait_for_selector("#name", timeout=WAIT_MS)
    other.close()
    world["phones"].remove(other)

    # The tablet opens the link (as its camera would), agrees, and shows its own code.
    tablet = phone(world, "Dana")
    tablet.page.goto(link)
    tablet.shows("#linkhere", f"Dana ({world['dana_key'][:4]})")
    tablet.page.screenshot(path=str(tmp_path / "member-link-new.png"), full_page=True)
    tablet.page.click("#linkthis")
    tablet.page.wait_for_selector("#joincode", timeout=WAIT_MS)
    code = str(tablet.page.text_content("#joincode")).strip()
    tablet_key = tablet.key
    assert code == join_code(bytes.fromhex(tablet_key))
    # Asking under Dana's name, it is offered to Dana for linking, not for letting in, and
    # Eli is warned that Dana is in already (letting it in would count Dana twice).
    world["eli"].shows(f".request[data-key='{tablet_key}'] .warn", "already in")
    dana.page.click("button:has-text('Back')")
    own = dana.page.locator(f".request.own[data-key='{tablet_key}']")
    own.wait_for(timeout=WAIT_MS)
    assert own.locator("button.primary.admit").count() == 0
    own.locator("text=Link my other phone").click()
    # On Dana's first phone: link the device whose code matches.
    req = dana.page.locator(f"#link .request[data-key='{tablet_key}']")
    req.wait_for(timeout=WAIT_MS)
    assert code in str(req.text_content())
    req.locator("button.link").click()
    dana.said("Linking the phone", "done")
    person = wait_until(lambda: (d := _person(world, tablet_key))["bodies"] and d, 30, "the link to count")
    assert person["person"] == world["dana_key"]
    assert tablet_key in _person(world, world["dana_key"])["devices"]

    # The tablet now acts for Dana: it sees North and votes abstain, with its own key.
    tablet.wait_in()
    tablet.proposal(pid).locator("button.abstain").click()
    tablet.said("Your abstention", "done")
    wait_until(lambda: north(world, pid)["abstain"] == 1, 30, "the tablet's vote counted")
    n = north(world, pid)
    # Dana counts once, with her latest vote (the tablet's): Eli's no and Dana's abstention.
    assert (n["yes"], n["no"], n["abstain"], n["eligible"]) == (0, 1, 1, 3)
    world["hall"].shows("#counts [data-body='North'] .numbers", "1 abstain")
    assert world["hall"].page.evaluate("() => window.__notReloaded") is True

    # The tablet is lost: Dana unlinks it from her first phone, and it acts for nobody.
    dana.page.once("dialog", lambda d: d.accept())  # "Stop this device from voting for you?"
    if dana.page.query_selector("#link") is None:  # still on "My name and devices" after linking
        dana.page.click("text=My name and devices")
    row = dana.page.locator(f".device[data-key='{tablet_key}']")
    row.wait_for(timeout=WAIT_MS)
    row.locator("button.unlink").click()
    dana.said("Unlinking the device", "done")
    wait_until(lambda: not _person(world, tablet_key)["bodies"], 30, "the unlink to count")
    assert tablet_key not in _person(world, world["dana_key"])["devices"]
    dana.page.wait_for_selector(f".device[data-key='{tablet_key}']", state="detached", timeout=WAIT_MS)
    dana.page.click("button:has-text('Back')")


def _qr_modules(url: str) -> list[list[bool]]:
    """The dark modules of a QR code drawn as /api/qr draws it (one path of unit squares)."""
    import re

    import httpx

    r = httpx.get(url, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    n = int(re.search(r'viewBox="0 0 (\d+) \d+"', r.text).group(1))  # type: ignore[union-attr]
    grid = [[False] * n for _ in range(n)]
    for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", r.text):
        grid[int(y)][int(x)] = True
    return grid


def _qr_of(text: str) -> list[list[bool]]:
    """What a reader decodes ``text`` from: the QR code of it, by the qrcode package."""
    import qrcode  # type: ignore[import-untyped]

    q = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    q.add_data(text)
    q.make(fit=True)
    return [[bool(v) for v in row] for row in q.get_matrix()]


def _person(world: dict[str, Any], key: str) -> dict[str, Any]:
    import httpx

    return httpx.get(world["url"] + "/api/person", params={"key": key}, timeout=30).json()  # type: ignore[no-any-return]


def test_a_tampered_event_is_refused_with_a_reason_and_nothing_stored(world: dict[str, Any]) -> None:
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    eli, pid, body, home = world["eli"], world["pid"], world["body"], world["home"]
    before = home.digest()
    status_before = north(world, pid)
    got = eli.page.evaluate(
        """async ([body, pid]) => {
            const C = await import('/codec.js');
            const K = await import('/keystore.js');
            const { getJSON } = await import('/common.js');
            const me = await K.load();
            const next = await getJSON(`/api/next?author=${me.pub}&body=${body}`);
            const now = (await getJSON('/api/now')).now_ms;
            const ev = C.signEvent(me.secret, {
              body: C.fromHex(body), ts: Math.max(now, next.ts_min), seq: next.seq,
              prev: next.prev.map(C.fromHex), kind: 'vote', data: C.payload.vote(pid, 'yes'),
            });
            // The vote said yes when signed; the bytes posted say "no" (one letter changed).
            const raw = ev.raw.slice();
            let i = -1;
            for (let k = 0; k + 3 < raw.length; k++) {
              if (raw[k] === 0xa3 && raw[k + 1] === 0x79 && raw[k + 2] === 0x65 && raw[k + 3] === 0x73) { i = k; }
            }
            raw[i + 1] = 0x79; raw[i + 2] = 0x65; raw[i + 3] = 0x74; // "yes" -> "yet"
            const res = await fetch('/api/events', { method: 'POST', body: raw,
              headers: { 'Content-Type': 'application/octet-stream' } });
            return { status: res.status, body: await res.json(), found: i };
        }""",
        [body, pid],
    )
    assert got["found"] > 0
    assert 400 <= got["status"] < 500
    assert set(got["body"]) == {"code", "field", "message"}
    assert got["body"]["code"] in ("bad_field", "bad_signature") and got["body"]["message"]
    assert home.digest() == before
    assert north(world, pid) == status_before


def test_amend_and_vote_on_the_change_from_the_page(world: dict[str, Any]) -> None:
    """A proposal whose round 1 lacked quorum opens round 2's amendment window: the page
    offers to change the text, and then to vote on the change."""
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    home, dana, dana_key = world["home"], world["dana"], world["dana_key"]
    home.run("body", "found", "community", "Harbour", "--charter", "discussion=1s",
             "--charter", "vote_window=3s", "--charter", "amendment_window=1h", IMIER_AS="ana")
    home.run("member", "admit", "Harbour", dana_key, IMIER_AS="ana")
    pid = home.run("propose", "Harbour", "--title", "Boats", "--text", "Two boats for the harbour.",
                   IMIER_AS="ana").stdout.strip()
    wait_until(lambda: home.json("status", pid).get("open_phase") == "amend", 30,
               "round 1 to close without quorum and the amendment window to open")
    dana.page.goto(world["url"] + "/")
    card = dana.proposal(pid)
    dana.shows(f"article[data-proposal='{pid}'] .phase", "changes to the text can be proposed")
    card.locator("summary:has-text('Propose a change')").click()
    card.locator("textarea.amend-text").fill("Two boats for the harbour, and a slipway.")
    card.locator("form button[type=submit]").click()
    dana.said("Your change: done")
    doc = wait_until(lambda: (d := home.json("status", pid))["open_amendments"] and d, 30, "the amendment")
    aid = doc["open_amendments"][0]
    card = dana.proposal(pid)
    dana.shows(f"article[data-proposal='{pid}'] .amendment blockquote", "and a slipway")
    card.locator(".amendment button.yes").click()
    dana.said("Your yes on the change: done")
    amendments = home.json("status", pid)["rounds"][-1]["amendments"]
    assert [a["id"] for a in amendments] == [aid]
    assert amendments[0]["text"] == "Two boats for the harbour, and a slipway."
    assert amendments[0]["support"] == "1/1"


def test_change_ones_stand_in_contention_from_the_page(world: dict[str, Any]) -> None:
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    home, dana, dana_key = world["home"], world["dana"], world["dana_key"]
    home.run("body", "found", "community", "Quay", "--charter", "discussion=1s",
             "--charter", "vote_window=6s", "--charter", "contention_window=1h", IMIER_AS="ana")
    home.run("member", "admit", "Quay", dana_key, IMIER_AS="ana")
    pid = home.run("propose", "Quay", "--title", "Lights", "--text", "Lights on the quay.",
                   IMIER_AS="ana").stdout.strip()
    wait_until(lambda: home.json("status", pid).get("open_phase") == "vote", 30, "round 1 to open")
    home.run("vote", pid, "yes", IMIER_AS="ana")
    dana.page.goto(world["url"] + "/")
    dana.proposal(pid).locator("button.yes").first.click()
    dana.said('Your yes on "Lights"', "done")
    wait_until(lambda: home.json("status", pid)["state"] == "contention", 30, "the pass and contention")
    card = dana.proposal(pid)
    dana.shows(f"article[data-proposal='{pid}'] .phase", "change your stand")
    card.locator(".stand button.no").click()
    dana.said("Your stand: done")
    doc = home.json("status", pid)
    assert doc["contention"]["changes"] == 1 and doc["contention"]["support"] in ("1/2", "0/2"), doc["contention"]


def test_a_member_who_lost_their_phone_is_proposed_for_recovery(world: dict[str, Any]) -> None:
    """Eli's new phone asks to join North; Dana's page proposes the recovery (kind recover)."""
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    home, dana, eli_key = world["home"], world["dana"], world["eli_key"]
    new = phone(world, "Eli")
    new_key = new.start()
    code = new.ask_to_join("North")
    dana.page.goto(world["url"] + "/")
    req = dana.page.locator(f".requests .request[data-key='{new_key}']")
    req.wait_for(timeout=WAIT_MS)
    assert code in str(req.text_content())
    req.locator("summary:has-text('lost their phone')").click()
    req.locator("select.recover-person").select_option(eli_key)
    req.locator("button.recover-propose").click()
    dana.said("Your proposal to recover Eli", "done")
    props = [p for p in home.json("status")["proposals"] if p["kind"] == "recover"]
    assert len(props) == 1 and props[0]["title"] == f"A new phone for Eli ({eli_key[:4]})"
    # What was signed: the person's first key and the new phone's key.
    from imier.protocol.bundle import read_bundle
    from imier.protocol.events import decode_event

    bundle = Path(world["home"].path) / "all.bundle"
    home.run("export", str(bundle))
    events = [decode_event(raw) for raw in read_bundle(bundle.read_bytes())]
    data = [e.data for e in events if e.id.hex() == props[0]["id"]][0]
    assert (data.person.hex(), data.new_key.hex()) == (eli_key, new_key)
    new.close()
    world["phones"].remove(new)


def test_propose_withdraw_rename_and_back_up_from_the_page(world: dict[str, Any], tmp_path: Path) -> None:
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    import json

    dana, home, dana_key = world["dana"], world["home"], world["dana_key"]
    pg = dana.page
    pg.on("dialog", lambda d: d.accept())
    pg.goto(world["url"] + "/")
    dana.wait_in()

    # Propose.
    pg.click("text=Propose something")
    pg.fill("#propose-title", "Plant trees")
    pg.fill("#propose-text", "Twelve lime trees along the canal.")
    pg.click("form button[type=submit]")
    dana.said('Your proposal "Plant trees"', "done")
    mine = wait_until(lambda: [p for p in home.json("status")["proposals"] if p["title"] == "Plant trees"],
                      30, "the proposal in the node's status")
    assert mine[0]["proposer"] == dana_key and mine[0]["text"] == "Twelve lime trees along the canal."

    # Withdraw it (allowed to the proposer before round 1 closes).
    card = dana.proposal(mine[0]["id"])
    card.locator("button.withdraw").click()
    dana.said("Withdrawing: done")
    assert home.json("status", mine[0]["id"])["state"] == "withdrawn"

    # A new name, everywhere the person belongs.
    pg.click("text=My name and devices")
    pg.fill("#rename", "Dana M")
    pg.click("text=Save the name")
    dana.said(f"Others now see you as Dana M ({dana_key[:4]})")
    wait_until(lambda: _person(world, dana_key)["name"] == "Dana M", 30, "the new name")

    # The backup file holds this phone's key; a new phone takes it back.
    with pg.expect_download() as dl:
        pg.click("#backup")
    path = tmp_path / "key.json"
    dl.value.save_as(str(path))
    backup = json.loads(path.read_text())
    assert backup["public"] == dana_key and backup["kind"] == "imier-device-key"
    fresh = phone(world, "someone")
    fresh.open()
    fresh.page.wait_for_selector("#name", timeout=WAIT_MS)
    assert fresh.key != dana_key
    fresh.page.on("dialog", lambda d: d.accept())
    fresh.page.click("text=I have a key file from before")
    fresh.page.set_input_files(".restore input[type=file]", str(path))
    fresh.page.click("text=Use the file")
    fresh.said("Your key is back on this phone")
    assert fresh.page.evaluate("""async () => (await (await import('/keystore.js')).load()).pub""") == dana_key
    fresh.close()
    world["phones"].remove(fresh)


def test_the_pages_ask_nothing_of_any_other_address(world: dict[str, Any]) -> None:
    if "pid" not in world:
        pytest.skip("needs the two phones of the test before")
    node = urlsplit(world["url"])
    asked = [u for u in world["requests"] if urlsplit(u).scheme not in ("data", "blob")]
    assert len(asked) > 50  # pages, scripts, the API and the stream of four devices
    elsewhere = [u for u in asked if (urlsplit(u).scheme, urlsplit(u).netloc) != (node.scheme, node.netloc)]
    assert elsewhere == []
    paths = {urlsplit(u).path for u in asked}
    assert {"/", "/meeting", "/codec.js", "/api/events", "/api/stream", "/api/next", "/api/now",
            "/vendor/noble-ed25519-3.2.0/index.js", "/vendor/noble-hashes-2.4.0/sha2.js"} <= paths


def test_the_meeting_page_comes_back_after_its_stream_is_refused(world: dict[str, Any]) -> None:
    """With every stream of the node taken, the meeting page's EventSource is refused (a
    browser does not retry that by itself); once one is free, the page is live again."""
    import httpx

    server = Server(world["home"], "--streams", "1", "--rate", "200", "--burst", "400")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c, c.stream("GET", "/api/stream") as held:
            assert held.status_code == 200
            hall = Phone(world["browser"], server.url, "hall", [], PROJECTOR)
            try:
                hall.open("/meeting")
                hall.shows("#livetext", "reconnecting")
                held.close()
                hall.shows("#livetext", "live")
            finally:
                hall.close()
    finally:
        server.stop()
