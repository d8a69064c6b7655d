"""The CLI's offline commands and its refusals: clear message, non-zero exit, nothing written."""

from __future__ import annotations

import os
import stat

import pytest

from imier.protocol.bundle import write_bundle
from imier.protocol.events import Found, Leave, sign_event

from .cli_helpers import Imier
from .strategies import KEYS


@pytest.fixture
def node(tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    n("init", "--name", "north")
    n("key", "new", "ana")
    return n


def test_init_refuses_to_overwrite(node) -> None:  # type: ignore[no-untyped-def]
    r = node("init", ok=False)
    assert r.code == 1 and "refusing to overwrite" in r.err


def test_files_are_owner_only(node) -> None:  # type: ignore[no-untyped-def]
    for p in (node.home, node.home / "keys"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700
    for p in (node.home / "node.key", node.home / "keys" / "ana.key"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    os.chmod(node.home / "keys" / "ana.key", 0o644)
    r = node("key", "list")  # listed, with a warning (signing with it is refused)
    assert r.code == 0 and "readable by other users" in r.err and "chmod 600" in r.err
    os.chmod(node.home / "keys" / "ana.key", 0o600)


def test_wrong_passphrase_is_one_clear_line(node) -> None:  # type: ignore[no-untyped-def]
    node.passphrase = "not it"
    before = node.store_digest()
    r = node("body", "found", "community", "North", ok=False)
    assert r.code == 1
    assert r.err.strip().splitlines() == [r.err.strip()]
    assert "wrong passphrase" in r.err and "Traceback" not in r.err
    assert node.store_digest() == before


def test_found_list_show_admit_leave(node) -> None:  # type: ignore[no-untyped-def]
    body = node("body", "found", "community", "North", "--charter", "quorum=1/3", "--json").json()
    node("key", "new", "ben")
    listed = node("body", "list", "--json").json()
    assert [b["name"] for b in listed] == ["North"] and listed[0]["charter"]["quorum"] == "1/3"
    node("member", "admit", "North", "ben", as_="ana")
    members = node("member", "list", "North", "--json").json()["members"]
    assert {m["name"] for m in members} == {"ana", "ben"}
    # only a member vouches; ben is one now, a stranger is not
    node("key", "new", "cid")
    r = node("member", "admit", body["id"][:10], "ana", as_="cid", ok=False)
    assert r.code == 1 and "not a member" in r.err
    node("member", "leave", "North", as_="ben")
    members = node("member", "list", "North", "--json").json()["members"]
    assert [m["name"] for m in members] == ["ana"]
    show = node("body", "show", "north", "--json").json()
    assert show["id"] == body["id"] and len(show["members"]) == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (("body", "found", "community", "X", "--charter", "first_threshold=1/3"), "contention_floor"),
        (("body", "found", "community", "X", "--charter", "quorum=3/2"), "charter.quorum"),
        (("body", "found", "community", "X", "--charter", "colour=red"), "unknown charter key"),
        (("body", "show", "nowhere"), "no body"),
        (("propose", "nowhere", "--title", "t", "--text", "x"), "no body"),
        (("vote", "abcdef12", "yes"), "no proposal"),
        (("vote", "zz", "yes"), "is not an id"),
        (("member", "admit", "North", "not-a-key"), "PUBKEY"),
    ],
)
def test_bad_arguments_write_nothing(node, args, words) -> None:  # type: ignore[no-untyped-def]
    node("body", "found", "community", "North")
    before = node.store_digest()
    r = node(*args, ok=False)
    assert r.code != 0 and words in r.err, r.err
    assert "Traceback" not in r.err
    assert node.store_digest() == before


def test_export_import_and_bad_bundles(node, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    node("body", "found", "community", "North")
    node("propose", "North", "--title", "Tools", "--text", "A tool library")
    bundle = tmp_path / "north.bundle"
    assert node("export", str(bundle), "--json").json()["events"] == 2
    south = Imier(tmp_path / "south", capsys, monkeypatch)
    south("init")
    doc = south("import", str(bundle), "--json").json()
    assert doc == {"new": 2, "held": 0, "pending": 0, "rejected": []}
    assert south("import", str(bundle), "--json").json()["held"] == 2
    before = south.store_digest()
    # a damaged copy is refused whole, and says why
    data = bytearray(bundle.read_bytes())
    data[40] ^= 0xFF
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(bytes(data))
    r = south("import", str(bad), ok=False)
    assert r.code == 1 and "damaged" in r.err and "nothing was imported" in r.err
    # not a bundle at all
    bad.write_bytes(b"hello, I am a photo")
    r = south("import", str(bad), ok=False)
    assert r.code == 1 and "not an Imier bundle" in r.err
    r = south("import", str(tmp_path / "missing.bundle"), ok=False)
    assert r.code == 1 and "cannot read" in r.err
    assert south.store_digest() == before


def test_well_framed_bundle_with_bad_events_imports_the_good(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = sign_event(KEYS[0], body=None, ts=1000, seq=1, prev=[], data=Found(body_kind="community", name="G"))
    forged = bytearray(sign_event(KEYS[1], body=good.id, ts=2000, seq=1, prev=[good.id], data=Leave()).raw)
    forged[-70] ^= 1  # inside the signature
    path = tmp_path / "mixed.bundle"
    path.write_bytes(write_bundle([good.raw, bytes(forged), b"\x93garbage"]))
    doc = node("import", str(path), "--json").json()
    assert doc["new"] == 1 and len(doc["rejected"]) == 2
    reasons = " ".join(r["reason"] for r in doc["rejected"])
    assert "sig" in reasons or "signature" in reasons or "canonical" in reasons


def test_every_command_is_documented() -> None:
    """Every subcommand appears in README.md or docs/cli.md (sqlite-utils' test_docs habit)."""
    import argparse
    from pathlib import Path

    from imier.cli.main import build_parser

    root = Path(__file__).resolve().parent.parent
    docs = (root / "README.md").read_text() + (root / "docs" / "cli.md").read_text()

    def walk(p: argparse.ArgumentParser, prefix: str) -> list[str]:
        out = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    out.append(f"{prefix} {name}".strip())
                    out.extend(walk(sp, f"{prefix} {name}"))
        return out

    commands = walk(build_parser(), "imier")
    assert len(commands) > 15
    missing = [c for c in commands if c not in docs]
    assert not missing, f"undocumented: {missing}"


def test_commands_people_wait_for_import_no_libp2p(tmp_path) -> None:
    """`imier vote` and `imier status` must answer fast: no network stack loaded."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from imier.cli.main import main\n"
        "rc = main(['init'])\n"
        "rc = main(['key', 'new', 'ana']) or rc\n"
        "rc = main(['body', 'found', 'community', 'North']) or rc\n"
        "rc = main(['status', '--json']) or rc\n"
        "assert rc == 0, rc\n"
        "loaded = [m for m in sys.modules if m == 'libp2p' or m.startswith('libp2p.')]\n"
        "assert not loaded, loaded[:5]\n"
    )
    env = {"IMIER_HOME": str(tmp_path / "h"), "IMIER_PASSPHRASE": "pw", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
