"""`imier backup` and `imier verify` (issue 10): an online backup that restores to the
same status, and a verification that finds a tampered event."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import msgpack

from imier.protocol import canonical
from imier.store.db import Store
from imier.store.maintenance import backup, verify

from .cli_helpers import Imier
from .strategies import KEYS, meeting

T0 = 1_800_000_000_000
S = 1000


def _meeting(n: Imier) -> str:
    n.now = T0
    n("init", "--name", "north")
    for name in ("ana", "ben"):
        n("key", "new", name)
    n("body", "found", "community", "North", "--charter", "discussion=5s", "--charter", "vote_window=60s",
      as_="ana")
    n.now += S
    n("member", "admit", "North", "ben", as_="ana")
    n.now += S
    prop = n("propose", "North", "--title", "Tools", "--text", "A tool library", as_="ana").out.strip()
    n.now += 6 * S
    n("vote", prop, "yes", as_="ana")
    n("vote", prop, "yes", as_="ben")
    return prop


def test_backup_refuses_to_overwrite_and_restores_to_the_same_status(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    prop = _meeting(n)
    f = tmp_path / "north-backup.sqlite3"
    doc = n("backup", str(f), "--json").json()
    assert doc["events"] == 5 and f.is_file() and not (tmp_path / "north-backup.sqlite3-wal").exists()
    before = f.read_bytes()
    r = n("backup", str(f), ok=False)
    assert r.code == 1 and "already exists" in r.err and "--force" in r.err
    assert f.read_bytes() == before
    n("vote", prop, "no", "--minor", "--category", "cost", as_="ben")
    assert n("backup", str(f), "--force", "--json").json()["events"] == 6
    want = n("status", prop, "--json").json()
    # Restore: a home with the same keys and the backup in place of the store.
    restored = tmp_path / "restored"
    shutil.copytree(n.home, restored, ignore=shutil.ignore_patterns("store.sqlite3*"))
    shutil.copy(f, restored / "store.sqlite3")
    m = Imier(restored, capsys, monkeypatch)
    m.now = n.now
    assert m("status", prop, "--json").json() == want
    assert m("verify", "--json").json()["ok"] is True


def test_verify_counts_and_finds_a_tampered_event(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    _meeting(n)
    doc = n("verify", "--json").json()
    assert doc == {"ok": True, "integrity": ["ok"], "events": 5, "accepted": 5, "pending": 0,
                   "bad_events": 0, "bad": []}
    assert "integrity: ok" in n("verify").out
    # Someone edits a vote in the database behind the node's back.
    con = sqlite3.connect(n.home / "store.sqlite3")
    eid, raw = con.execute("SELECT id, raw FROM events WHERE kind = 'vote' LIMIT 1").fetchone()
    m = msgpack.unpackb(raw, raw=False)
    m["data"]["choice"] = "no"
    m["data"]["severity"] = "minor"
    m["data"]["category"] = "cost"
    con.execute("UPDATE events SET raw = ? WHERE id = ?", (canonical.pack(m), eid))
    con.commit()
    con.close()
    r = n("verify", "--json", ok=False)
    assert r.code == 1
    doc = r.json()
    assert doc["ok"] is False and doc["bad_events"] == 1 and doc["bad"][0]["id"] == eid.hex()
    assert doc["bad"][0]["code"] == "bad_signature"
    r = n("verify", ok=False)
    assert r.code == 1 and eid.hex()[:12] in r.out


def test_backup_while_another_connection_writes_is_consistent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.sqlite3"
    evs = meeting([(i % 4, "yes") for i in range(400)])
    Store.open(path).close()
    done = threading.Event()

    def writer() -> None:  # the daemon, ingesting while the backup runs
        s = Store.open(path)
        try:
            for i in range(0, len(evs), 10):
                s.ingest(evs[i : i + 10])
        finally:
            s.close()
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    s = Store.open(path)
    copies = []
    try:
        k = 0
        while not done.is_set() and k < 50:
            k += 1
            out = tmp_path / f"b{k}.sqlite3"
            backup(s, out)
            copies.append(out)
    finally:
        t.join(timeout=120)
        s.close()
    assert copies
    for c in copies:
        b = Store.open(c)
        try:
            rep = verify(b)
            assert rep.ok, rep.to_json()
            # a snapshot: a prefix of the writer's batches, every one accepted
            assert rep.pending == 0 and rep.events % 10 == 0 or rep.events == len(evs)
        finally:
            b.close()
    assert KEYS  # the meeting's keys signed every event verified above
