"""Issue 10, clean failure: a full disk, a damaged key, a bad home, a garbage store.

Each gives one line that says what to do, no traceback, and nothing half-written.
The full-disk case mounts a small tmpfs, so it runs as root only.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from imier.protocol.bundle import write_bundle
from imier.store.db import Store
from imier.store.home import Home

from .cli_helpers import Imier
from .strategies import meeting


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _run(home: Path, *args: str, as_: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMIER_HOME": str(home), "IMIER_PASSPHRASE": "pw"}
    if as_:
        env["IMIER_AS"] = as_
    return subprocess.run([sys.executable, "-m", "imier", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def node(tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    n("init", "--name", "north")
    n("key", "new", "ana")
    n("key", "new", "ben")
    return n


def test_a_damaged_key_blocks_only_its_person_and_names_the_file(node) -> None:  # type: ignore[no-untyped-def]
    bad = node.home / "keys" / "ben.key"
    bad.write_bytes(b"\x00garbage")
    r = node("body", "found", "community", "North", as_="ben", ok=False)
    line = _one_line(r.err)
    assert r.code == 1 and str(bad) in line and "damaged" in line
    node("body", "found", "community", "North", as_="ana")  # ana is not blocked
    assert [p.name for p in Home(node.home).people()] == ["ana"]
    assert [p for p, _ in Home(node.home).key_problems()] == [bad]


def test_a_directory_named_like_a_key_gets_a_correct_message(node) -> None:  # type: ignore[no-untyped-def]
    d = node.home / "keys" / "cid.key"
    d.mkdir()
    r = node("body", "found", "community", "North", as_="cid", ok=False)
    line = _one_line(r.err)
    assert str(d) in line and "not a key file" in line and "chmod" not in line
    node("body", "found", "community", "North", as_="ana")


def test_a_home_that_is_a_file_or_below_a_file_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "afile"
    f.write_text("hi")
    for home, words in ((f, "is a file"), (f / "below", "is below")):
        for args in (("init",), ("body", "list")):
            r = _run(home, *args)
            line = _one_line(r.stderr)
            assert r.returncode == 1 and words in line and str(home) in line
    assert f.read_text() == "hi"


def test_a_garbage_store_is_one_line_and_left_alone(node) -> None:  # type: ignore[no-untyped-def]
    store = node.home / "store.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    junk = os.urandom(8192)
    store.write_bytes(junk)
    r = _run(node.home, "body", "list")
    line = _one_line(r.stderr)
    assert r.returncode == 1 and str(store) in line and "backup" in line
    assert store.read_bytes() == junk


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _fill(path: Path, name: str = "filler") -> Path:
    """Fill the file system at ``path`` to the last byte."""
    filler = path / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="mounting a small tmpfs needs root (the full-disk case)")
def test_a_full_disk_gives_one_line_and_an_intact_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mnt = tmp_path / "small"
    if not _tmpfs(mnt, "4m"):
        pytest.skip("this environment does not allow mounting a tmpfs")
    try:
        home = mnt / "home"
        assert _run(home, "init", "--name", "n").returncode == 0
        assert _run(home, "key", "new", "ana").returncode == 0
        assert _run(home, "body", "found", "community", "North", as_="ana").returncode == 0
        evs = meeting([(1, "yes"), (2, "yes"), (3, "abstain")] * 30)
        bundle = tmp_path / "b.bundle"  # outside the small disk
        bundle.write_bytes(write_bundle(e.raw for e in evs))
        s = Store.open(home / "store.sqlite3")
        before = sorted(s.conn.execute("SELECT id, state FROM events"))
        s.close()
        # Twice: with another connection open (a daemon: the WAL's -shm exists, so
        # writing fails with "database or disk is full"), and with none (opening
        # must create the -shm: "disk I/O error").
        daemon = Store.open(home / "store.sqlite3")
        daemon.count()
        fillers = [_fill(mnt)]
        seen = set()
        for held in (True, False):
            if not held:
                daemon.close()  # its checkpoint frees the WAL's space: fill that too
                fillers.append(_fill(mnt, "filler2"))
            for args, as_ in ((("import", str(bundle)), None), (("status",), None), (("body", "list"), None),
                              (("propose", "North", "--title", "t", "--text", "x"), "ana"),
                              (("key", "new", "bo"), None)):
                r = _run(home, *args, as_=as_)
                if args[0] in ("import", "propose", "key") or not held:
                    assert r.returncode != 0, (held, args, r.stdout)
                    line = _one_line(r.stderr).replace(str(tmp_path), "")
                    assert "full" in line or "space" in line or "I/O" in line, line
                    seen.add("full" if "full" in line else "io" if "I/O" in line else "space")
                else:  # reading works while the -shm exists
                    assert r.returncode == 0, r.stderr
        assert seen == {"full", "io", "space"}
        assert not list((home / "keys").glob("*.tmp"))
        assert not (home / "keys" / "bo.key").exists()
        for f in fillers:
            f.unlink()
        s = Store.open(home / "store.sqlite3")
        try:
            assert s.integrity_ok()
            assert sorted(s.conn.execute("SELECT id, state FROM events")) == before
        finally:
            s.close()
        r = _run(home, "import", str(bundle))  # with space again, it works
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# -- a damaged store (pages overwritten), another application's file ------------------------


def _checkpoint(store: Path) -> None:
    con = sqlite3.connect(store)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _events_layout(store: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(store)
    try:
        ps = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()[0]
        n = con.execute("PRAGMA page_count").fetchone()[0]
    finally:
        con.close()
    return ps, root, n


def _overwrite(store: Path, at: int, data: bytes) -> None:
    with open(store, "r+b") as f:
        f.seek(at)
        f.write(data)


def _null_rows_damage(store: Path) -> None:
    """Zero 200 bytes of some page so that a row of events reads back with NULLs where
    bytes were stored (what made export and verify die of a TypeError)."""
    ps, _, n = _events_layout(store)
    good = store.read_bytes()
    for page in range(2, n + 1):
        for off in range(0, ps - 200, 256):
            _overwrite(store, (page - 1) * ps + off, bytes(200))
            con = sqlite3.connect(store)
            try:
                rows = con.execute("SELECT id, raw FROM events").fetchall()
                if any(i is None or r is None for i, r in rows):
                    return
            except sqlite3.DatabaseError:
                pass
            finally:
                con.close()
            store.write_bytes(good)
    pytest.skip("no 200 zero bytes made a row of NULLs in this store's layout")


@pytest.fixture
def proposals(node):  # type: ignore[no-untyped-def]
    """A node whose events fill several pages, checkpointed into the file."""
    node("body", "found", "community", "North", as_="ana")
    for i in range(30):
        node("propose", "North", "--title", f"t{i}", "--text", "x" * 40, as_="ana")
    _checkpoint(node.home / "store.sqlite3")
    return node


@pytest.mark.parametrize("damage", ["events root page", "null rows", "every page after the first"])
def test_a_damaged_store_is_one_line_and_left_alone(proposals, tmp_path, damage) -> None:  # type: ignore[no-untyped-def]
    home = proposals.home
    store = home / "store.sqlite3"
    ps, root, n = _events_layout(store)
    if damage == "events root page":
        _overwrite(store, (root - 1) * ps, b"\xff" * 200)
        commands = [("status",), ("body", "list"), ("propose", "North", "--title", "t", "--text", "x")]
    elif damage == "null rows":
        _null_rows_damage(store)
        commands = []
    else:
        for page in range(2, n + 1):
            _overwrite(store, (page - 1) * ps, b"\xab" * ps)
        commands = [("status",), ("body", "list"), ("propose", "North", "--title", "t", "--text", "x")]
    before = store.read_bytes()
    wal = Path(str(store) + "-wal")

    def wal_bytes() -> bytes:
        return wal.read_bytes() if wal.exists() else b""

    wal_before = wal_bytes()
    out = tmp_path / "out"
    out.mkdir()
    commands += [("export", str(out / "n.bundle")), ("backup", str(out / "b.sqlite3"))]
    for args in commands:
        r = _run(home, *args, as_="ana")
        line = _one_line(r.stderr)
        assert r.returncode == 1, (args, r.stdout)
        assert line.startswith(f"error: the store {store} is damaged"), (args, line)
        assert "restore it from a backup" in line and "imier verify" in line, line
        assert store.read_bytes() == before and wal_bytes() == wal_before, args
    assert list(out.iterdir()) == []  # no bundle, no backup, no half file
    for args in (("verify",), ("verify", "--json")):
        r = _run(home, *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        if "--json" in args:
            doc = json.loads(r.stdout)
            assert doc["ok"] is False and doc["integrity"] != ["ok"]
        else:
            assert "integrity: ok" not in r.stdout and r.stdout.startswith("integrity: ")
    assert store.read_bytes() == before and wal_bytes() == wal_before


def test_another_applications_database_is_refused_and_left_byte_identical(node) -> None:  # type: ignore[no-untyped-def]
    store = node.home / "store.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(store)
    con.execute("CREATE TABLE foo (a, b)")
    con.execute("INSERT INTO foo VALUES (1, 'x')")
    con.commit()
    con.close()
    before = store.read_bytes()
    for args in (("body", "list"), ("status",), ("verify",), ("backup", str(node.home.parent / "b.sqlite3"))):
        r = _run(node.home, *args)
        line = _one_line(r.stderr)
        assert r.returncode == 1 and str(store) in line and "not an Imier store" in line, line
        assert "foo" in line and "Traceback" not in r.stderr
    assert store.read_bytes() == before
    assert not Path(str(store) + "-wal").exists()
    assert not (node.home.parent / "b.sqlite3").exists()
    con = sqlite3.connect(store)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["foo"]
    con.close()


def test_a_zero_length_store_is_a_new_store(node) -> None:  # type: ignore[no-untyped-def]
    store = node.home / "store.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    store.write_bytes(b"")
    r = _run(node.home, "body", "list")
    assert r.returncode == 0 and "No bodies yet" in r.stdout, r.stderr


def test_a_backup_is_private_like_the_store(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "b.sqlite3"
    node("backup", str(dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    dest.chmod(0o644)
    node("backup", str(dest), "--force")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


# -- people's keys: one person's problem is theirs alone ------------------------------------


def test_another_persons_readable_key_blocks_only_them(node) -> None:  # type: ignore[no-untyped-def]
    ben = node.home / "keys" / "ben.key"
    ben.chmod(0o644)
    before = ben.read_bytes()
    node("body", "found", "community", "North", as_="ana")  # ana is not blocked
    r = node("propose", "North", "--title", "t", "--text", "x", as_="ben", ok=False)
    line = _one_line(r.err)
    assert r.code == 1 and f"key file {ben} is readable by other users" in line and "chmod 600" in line
    r = node("key", "list")
    assert r.code == 0 and "ben" in r.out
    assert _one_line(r.err) == f"warning: key file {ben} is readable by other users (run 'chmod 600 {ben}')"
    doc = node("key", "list", "--json").json()
    assert [d["name"] for d in doc] == ["ana", "ben"] and "warning" in doc[1] and "warning" not in doc[0]
    assert ben.read_bytes() == before and stat.S_IMODE(ben.stat().st_mode) == 0o644


def test_key_list_names_a_damaged_key_file(node) -> None:  # type: ignore[no-untyped-def]
    bad = node.home / "keys" / "cid.key"
    bad.write_bytes(b"\x00garbage")
    odd = node.home / "keys" / "dan.key"
    odd.mkdir()
    r = node("key", "list", "--json")
    assert r.code == 0 and r.err == ""
    doc = r.json()
    assert [d["name"] for d in doc] == ["ana", "ben", "cid", "dan"]
    assert all("problem" not in d for d in doc[:2])
    for d, path in zip(doc[2:], (bad, odd), strict=True):
        assert d["public_key"] is None and d["file"] == str(path) and str(path) in d["problem"]
    assert "damaged" in doc[2]["problem"] and "not a key file" in doc[3]["problem"]
    r = node("key", "list")
    assert r.code == 0 and "cid" in r.out and "damaged" in r.out
    assert bad.read_bytes() == b"\x00garbage" and odd.is_dir()


def test_key_new_over_a_directory_says_what_is_there(node) -> None:  # type: ignore[no-untyped-def]
    d = node.home / "keys" / "cat.key"
    d.mkdir()
    before = sorted(p.name for p in (node.home / "keys").iterdir())
    r = node("key", "new", "cat", ok=False)
    line = _one_line(r.err)
    assert r.code == 1 and f"{d} is a directory, not a key file" in line and "move it" in line, line
    assert "already has a key" not in line
    assert d.is_dir() and not list(d.iterdir())
    assert sorted(p.name for p in (node.home / "keys").iterdir()) == before


def test_two_key_new_at_once_make_exactly_one_key(node) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "IMIER_HOME": str(node.home), "IMIER_PASSPHRASE": "pw"}
    for i in range(10):
        name = f"race{i}"
        procs = [subprocess.Popen([sys.executable, "-m", "imier", "key", "new", name, "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        done = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        for p in procs:
            p.stdout.close()  # type: ignore[union-attr]
            p.stderr.close()  # type: ignore[union-attr]
        won = [out for code, out, _ in done if code == 0]
        lost = [err for code, _, err in done if code != 0]
        assert len(won) == 1 and len(lost) == 1, done
        line = _one_line(lost[0])
        assert f"a person named {name!r} already has a key" in line, line
        held = {p.name: p.public.hex() for p in Home(node.home).people()}
        assert held[name] == json.loads(won[0])["public_key"]
    assert not [p for p in (node.home / "keys").iterdir() if p.name.endswith(".tmp")]
