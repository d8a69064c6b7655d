"""The parts under the HTTP API, on real stores: join requests, the status watcher,
the rate bucket and /api/next."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from imier.protocol.errors import LocalError, Rejected
from imier.protocol.events import Admit, Event, Found, Propose, Vote, sign_event
from imier.store.db import Store
from imier.store.requests import MAX_PER_BODY, TTL_MS, Requests, join_code, resolve_member
from imier.web import source
from imier.web.limits import Bucket
from imier.web.watch import Watcher

T0 = 1_800_000_000_000
BODY = b"\x11" * 32


def _key(i: int) -> bytes:
    return bytes([i % 256, i // 256]) + b"\x00" * 30


# -- join requests ---------------------------------------------------------------------


def test_join_code_is_six_digits_from_the_key() -> None:
    k = bytes(SigningKey(b"\x01" * 32).verify_key)
    code = join_code(k)
    assert code == join_code(k) and len(code) == 7 and code[3] == "-" and code.replace("-", "").isdigit()
    import hashlib

    n = int.from_bytes(hashlib.sha256(k).digest()[:4], "big") % 1_000_000
    assert code == f"{n:06d}"[:3] + "-" + f"{n:06d}"[3:]
    with pytest.raises(Rejected) as e:
        join_code(b"short")
    assert e.value.field == "key"


def test_requests_bounded_per_body_oldest_first(tmp_path: Path) -> None:
    r = Requests.for_home(tmp_path)
    for i in range(MAX_PER_BODY + 5):
        r.add(BODY, _key(i), f"p{i}", now_ms=T0 + i)
    r.add(b"\x22" * 32, _key(999), "other", now_ms=T0)
    held = r.current(BODY, now_ms=T0 + 100)
    assert len(held) == MAX_PER_BODY
    assert [q.name for q in held][:2] == ["p5", "p6"]  # the five oldest went
    assert len(r.current(None, now_ms=T0 + 100)) == MAX_PER_BODY + 1
    # the same key again replaces its request (a new name), it does not add one
    r.add(BODY, _key(10), "renamed", now_ms=T0 + 200)
    held = r.current(BODY, now_ms=T0 + 300)
    assert len(held) == MAX_PER_BODY and held[-1].name == "renamed"
    r.close()


def test_requests_expire(tmp_path: Path) -> None:
    r = Requests.for_home(tmp_path)
    r.add(BODY, _key(1), "Ana", now_ms=T0)
    r.add(BODY, _key(2), "Ben", now_ms=T0 + 1000)
    assert [q.name for q in r.current(BODY, now_ms=T0 + TTL_MS)] == ["Ben"]
    assert r.current(BODY, now_ms=T0 + TTL_MS + 1000) == []
    r.close()


def test_requests_refuse_bad_names(tmp_path: Path) -> None:
    r = Requests.for_home(tmp_path)
    for bad in ("", "   ", "x" * 65, "a\x00b", 7, None):
        with pytest.raises(Rejected) as e:
            r.add(BODY, _key(1), bad, now_ms=T0)
        assert e.value.field == "name"
    assert r.current(BODY, now_ms=T0) == []
    assert r.add(BODY, _key(1), "  Zoë Ñ  ", now_ms=T0).name == "Zoë Ñ"
    r.close()


def test_resolve_member_by_code(tmp_path: Path) -> None:
    assert resolve_member(tmp_path, BODY, "ab" * 32, now_ms=T0) is None  # not a code: a key
    assert resolve_member(tmp_path, BODY, "ana", now_ms=T0) is None
    with pytest.raises(LocalError):
        resolve_member(tmp_path, BODY, "123-456", now_ms=T0)  # no requests file yet
    r = Requests.for_home(tmp_path)
    q = r.add(BODY, _key(3), "Cleo", now_ms=T0)
    assert resolve_member(tmp_path, BODY, q.code, now_ms=T0 + 1) == _key(3)
    assert resolve_member(tmp_path, BODY, q.code.replace("-", ""), now_ms=T0 + 1) == _key(3)
    with pytest.raises(LocalError):
        resolve_member(tmp_path, b"\x33" * 32, q.code, now_ms=T0 + 1)  # another body
    # two requests with one code (a key ground to collide, which takes about a million
    # tries): refused, naming both, so the admitter uses the key instead
    r.conn.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", (BODY, _key(4), "Mallory", q.code, T0))
    with pytest.raises(LocalError) as e:
        resolve_member(tmp_path, BODY, q.code, now_ms=T0 + 1)
    assert "Cleo" in str(e.value) and "Mallory" in str(e.value)
    r.close()


# -- the rate bucket -----------------------------------------------------------------------


def test_bucket_grants_burst_then_rate() -> None:
    b = Bucket(rate=2.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(0.0) == pytest.approx(0.5)
    assert b.take(0.5) == 0.0  # one token back after half a second at 2/s
    assert b.take(0.5) > 0
    assert b.take(100.0) == 0.0 and b.tokens == pytest.approx(2.0)  # refilled to the burst only


# -- a real store for the watcher and /api/next ------------------------------------------------


@pytest.fixture
def world() -> dict[str, object]:
    ana = SigningKey(b"\x0a" * 32)
    ben = SigningKey(b"\x0b" * 32)
    store = Store.memory()
    found = sign_event(ana, body=None, ts=T0, seq=1, prev=[], data=Found(
        body_kind="community", name="North", charter={"discussion": "60s", "vote_window": "1h"}))
    admit = sign_event(ana, body=found.id, ts=T0 + 1, seq=2, prev=[found.id],
                       data=Admit(member=bytes(ben.verify_key)))
    prop = sign_event(ana, body=found.id, ts=T0 + 2, seq=3, prev=[admit.id],
                      data=Propose(title="Bench", text="Buy a bench.", proposal_kind="general"))
    res = store.ingest([found, admit, prop])
    assert len(res.accepted) == 3
    return {"store": store, "ana": ana, "ben": ben, "body": found.id, "prop": prop}


def test_watcher_reports_only_changes(world: dict[str, object]) -> None:
    store, prop, ben, body = world["store"], world["prop"], world["ben"], world["body"]
    assert isinstance(store, Store)
    w = Watcher(store)
    first = w.tick(T0 + 10)
    assert [d["id"] for d in first] == [prop.id.hex()]  # type: ignore[attr-defined]
    assert first[0]["state"] == "discussion"
    assert w.tick(T0 + 20) == []  # nothing new, no window passed
    # time alone: the discussion ends at +60 s and round 1 opens
    opened = w.tick(T0 + 61_000)
    assert [d["state"] for d in opened] == ["round1"]
    assert w.tick(T0 + 62_000) == []
    # a vote from another connection's commit... here the same store: a new row
    assert isinstance(ben, SigningKey)
    nxt = source.next_for(store, bytes(ben.verify_key), body, T0 + 63_000)  # type: ignore[arg-type]
    vote = sign_event(ben, body=body, ts=T0 + 63_000, seq=nxt["seq"],  # type: ignore[arg-type]
                      prev=[bytes.fromhex(p) for p in nxt["prev"]],
                      data=Vote(target=prop.id, choice="yes"))  # type: ignore[attr-defined]
    store.ingest([vote])
    w.version = None  # the same connection's commits do not move its data_version
    changed = w.tick(T0 + 64_000)
    assert len(changed) == 1 and changed[0]["rounds"][0]["bodies"]["North"]["yes"] == 1
    assert w.tick(T0 + 65_000) == []


def test_next_never_names_a_head_from_the_future(world: dict[str, object]) -> None:
    store, ana, ben, body, prop = world["store"], world["ana"], world["ben"], world["body"], world["prop"]
    assert isinstance(store, Store) and isinstance(ben, SigningKey) and isinstance(ana, SigningKey)
    me = bytes(ben.verify_key)
    nxt = source.next_for(store, me, body, T0 + 10)  # type: ignore[arg-type]
    assert nxt == {"seq": 1, "prev": [prop.id.hex()], "ts_min": T0 + 2}  # type: ignore[attr-defined]
    # ana signs an event stamped an hour ahead (within no one's skew, but stored here)
    late = sign_event(ana, body=body, ts=T0 + 3_600_000, seq=4, prev=[prop.id],  # type: ignore[arg-type,attr-defined]
                      data=Vote(target=prop.id, choice="yes"))  # type: ignore[attr-defined]
    assert store.ingest([late]).accepted == [late.id]
    assert source.next_for(store, me, body, T0 + 10)["prev"] == [prop.id.hex()]  # type: ignore[arg-type,attr-defined]
    assert source.next_for(store, me, body, T0 + 3_600_000)["prev"] == [late.id.hex()]  # type: ignore[arg-type]
    # her own next event names her own last one, even from the future, and may not be earlier
    own = source.next_for(store, bytes(ana.verify_key), body, T0 + 10)  # type: ignore[arg-type]
    assert own["seq"] == 5 and own["prev"] == [late.id.hex()] and own["ts_min"] == T0 + 3_600_000
    with pytest.raises(source.NotFound) as e:
        source.next_for(store, me, b"\x44" * 32, T0)
    assert e.value.field == "body"


def test_intake_refuses_with_nothing_written(world: dict[str, object]) -> None:
    store, ben, body, prop = world["store"], world["ben"], world["body"], world["prop"]
    assert isinstance(store, Store) and isinstance(ben, SigningKey)
    before = store.count()
    vote = sign_event(ben, body=body, ts=T0 + 70_000, seq=1, prev=[prop.id],  # type: ignore[arg-type,attr-defined]
                      data=Vote(target=prop.id, choice="yes"))  # type: ignore[attr-defined]
    bad = bytearray(vote.raw)
    bad[-70] ^= 0xFF
    with pytest.raises(Rejected):
        source.intake(store, bytes(bad), now=T0 + 70_000, max_skew_ms=300_000)
    with pytest.raises(Rejected) as e:
        source.intake(store, vote.raw, now=T0, max_skew_ms=1000)  # 70 s in the node's future
    assert e.value.code == "future" and e.value.field == "ts"
    assert store.count() == before and store.outbox() == []
    got = source.intake(store, vote.raw, now=T0 + 70_000, max_skew_ms=300_000)
    assert got.state == "accepted" and got.new and store.outbox() == [vote.id]
    assert not source.intake(store, vote.raw, now=T0 + 70_000, max_skew_ms=300_000).new


def test_urls_to_open_on_a_phone() -> None:
    from imier.cli.web import _urls_for_people

    assert _urls_for_people("127.0.0.1", 4040) == ["http://127.0.0.1:4040/"]
    assert _urls_for_people("192.168.1.20", 80) == ["http://192.168.1.20:80/"]
    assert _urls_for_people("::1", 4040) == ["http://[::1]:4040/"]
    every = _urls_for_people("0.0.0.0", 4040)  # this machine's own addresses, then loopback
    assert every[-1] == "http://127.0.0.1:4040/" and all(u.endswith(":4040/") for u in every)
    assert not any("0.0.0.0" in u for u in every)


def test_listen_addresses() -> None:
    from imier.web.server import parse_listen

    assert parse_listen("127.0.0.1:4040") == ("127.0.0.1", 4040)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_listen("[::1]:4040") == ("::1", 4040)
    for bad in ("4040", ":4040", "host:", "host:x", "host:70000"):
        with pytest.raises(LocalError):
            parse_listen(bad)


def _found_south(store: Store, ana: SigningKey) -> Event:
    """ana founds South and proposes in it; the proposal."""
    south = sign_event(ana, body=None, ts=T0 + 20, seq=1, prev=[], data=Found(
        body_kind="community", name="South", charter={"discussion": "60s"}))
    prop = sign_event(ana, body=south.id, ts=T0 + 21, seq=2, prev=[south.id],
                      data=Propose(title="Trees", text="Plant trees.", proposal_kind="general"))
    store.ingest([south, prop])
    return prop


def test_watcher_sees_a_new_body(world: dict[str, object]) -> None:
    store, ana = world["store"], world["ana"]
    assert isinstance(store, Store) and isinstance(ana, SigningKey)
    w = Watcher(store)
    assert len(w.tick(T0 + 10)) == 1
    prop = _found_south(store, ana)
    w.version = None  # (one connection here: its own commits do not move data_version)
    assert [d["id"] for d in w.tick(T0 + 30)] == [prop.id.hex()]
    assert {d["title"] for d in w.current()} == {"Bench", "Trees"}


def test_a_failed_watcher_tick_loses_no_change(world: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick that fails after noting the new events as seen must not skip them:
    the next tick looks at everything and reports the change."""
    store, ana = world["store"], world["ana"]
    assert isinstance(store, Store) and isinstance(ana, SigningKey)
    w = Watcher(store)
    assert len(w.tick(T0 + 10)) == 1
    prop = _found_south(store, ana)
    w.version = None
    real = source.status_of_body

    def broken(*a: object, **k: object) -> object:
        raise RuntimeError("the disk went away for a moment")

    monkeypatch.setattr(source, "status_of_body", broken)
    with pytest.raises(RuntimeError):
        w.tick(T0 + 30)
    monkeypatch.setattr(source, "status_of_body", real)
    assert prop.id.hex() in [d["id"] for d in w.tick(T0 + 31)]
