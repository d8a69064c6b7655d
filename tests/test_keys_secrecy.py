"""Keys: sealed with the passphrase at rest, owner-only, and never in the store,
a bundle, any output or error of the CLI (real subprocesses, so logging set up
at start-up is captured too), nor in the daemon's refusal to start with a
readable key.

The secrets searched for, for every key of the home (people's and the node's):
the 32-byte seed and the 64-byte NaCl secret key, raw, hex, and base64.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

from nacl.signing import SigningKey

from imier.store.home import Home

PASS = "correct horse battery staple"


def _run(home: Path, *args: str, passphrase: str = PASS, ok: bool = True) -> str:
    env = dict(os.environ, IMIER_HOME=str(home), IMIER_PASSPHRASE=passphrase, IMIER_NOW="1767312000000")
    env.pop("IMIER_AS", None)
    r = subprocess.run([sys.executable, "-m", "imier", *args], env=env, capture_output=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr.decode()
    return (r.stdout + r.stderr).decode(errors="replace")


def _forms(k: SigningKey) -> list[bytes]:
    seed = bytes(k)
    full = bytes(k._signing_key)  # seed || public key, as libsodium holds it
    out = []
    for secret in (seed, full):
        out += [secret, secret.hex().encode(), secret.hex().upper().encode(),
                base64.b64encode(secret), base64.urlsafe_b64encode(secret).rstrip(b"=")]
    return out


def _no_secret(blob: bytes, secrets: list[bytes], where: str) -> None:
    for s in secrets:
        assert s not in blob, f"a key appears in {where}"


def test_keys_never_leave_sealed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outputs = [_run(home, "init", "--name", "north"), _run(home, "key", "new", "ana"),
               _run(home, "key", "new", "ben"), _run(home, "key", "list")]
    h = Home(home)
    secrets: list[bytes] = []
    for person in h.people():
        secrets += _forms(h.unlock(person, PASS))
    secrets += _forms(h.node_key(PASS))
    assert len(secrets) == 30

    # At rest: sealed (no secret in any file of the home) and owner-only.
    for p in home.rglob("*"):
        if p.is_file():
            _no_secret(p.read_bytes(), secrets, str(p))
            if p.suffix == ".key" or p.parent.name == "keys":
                assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p

    # Use the keys: every output, then the store and a bundle.
    ben = _run(home, "key", "list", "--json")
    outputs.append(ben)
    outputs.append(_run(home, "--as", "ana", "body", "found", "community", "North"))
    outputs.append(_run(home, "--as", "ana", "propose", "North", "--title", "T", "--text", "x"))
    outputs.append(_run(home, "status", "--json"))
    bundle = tmp_path / "out.bundle"
    outputs.append(_run(home, "export", str(bundle)))
    outputs.append(_run(home, "import", str(bundle)))
    # Errors: a wrong passphrase, a bad argument, a damaged bundle.
    outputs.append(_run(home, "--as", "ana", "propose", "North", "--title", "T", "--text", "y",
                        passphrase="wrong", ok=False))
    outputs.append(_run(home, "--as", "ana", "vote", "nonsense", "maybe", ok=False))
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(bundle.read_bytes()[:-5])
    outputs.append(_run(home, "import", str(bad), ok=False))
    for i, out in enumerate(outputs):
        _no_secret(out.encode(), secrets, f"output {i}")
        assert "Traceback" not in out
    _no_secret(bundle.read_bytes(), secrets, "the bundle")
    for p in home.rglob("*"):
        if p.is_file():
            _no_secret(p.read_bytes(), secrets, str(p))

    # A readable key file is refused at start, naming the file, not the key.
    key_file = next((home / "keys").iterdir())
    os.chmod(key_file, 0o644)
    out = _run(home, "daemon", "--no-mdns", ok=False)
    assert "readable by other users" in out
    _no_secret(out.encode(), secrets, "the daemon's refusal")
    os.chmod(key_file, 0o600)
