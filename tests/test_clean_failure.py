"""Issue 10, clean failure: a full disk, a damaged key, a bad home, a garbage store.

Each gives one line that says what to do, no traceback, and nothing half-written.
The full-disk case mounts a small tmpfs, so it runs as root only.
"""

from __future__ import annotations

import os
import shutil
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
