"""The vendored libraries are exactly the files VERSIONS.md names, and the pages load
nothing from anywhere but the node (no browser needed)."""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "imier" / "web" / "static"
VENDOR = STATIC / "vendor"
ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \| `(sha384-[A-Za-z0-9+/=]+)` \|$", re.M)
PKG = re.compile(r"^\| `(@noble/[a-z0-9]+)` \| (\d+\.\d+\.\d+) \| `(sha512-[A-Za-z0-9+/=]+)` \|$", re.M)


def test_every_vendored_file_matches_its_recorded_hashes() -> None:
    text = (VENDOR / "VERSIONS.md").read_text()
    rows = ROW.findall(text)
    assert rows, "VERSIONS.md has no file table"
    listed = {name for name, _, _ in rows}
    present = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file() and p.name != "VERSIONS.md"}
    assert listed == present  # nothing unlisted, nothing missing
    for name, sha256, sri in rows:
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, name
        assert "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode() == sri, name


def test_versions_are_pinned_and_named_in_the_paths() -> None:
    pkgs = dict((n, v) for n, v, _ in PKG.findall((VENDOR / "VERSIONS.md").read_text()))
    assert pkgs == {"@noble/ed25519": "3.2.0", "@noble/hashes": "2.4.0"}
    dirs = {p.name for p in VENDOR.iterdir() if p.is_dir()}
    assert dirs == {"noble-ed25519-3.2.0", "noble-hashes-2.4.0"}
    codec = (STATIC / "codec.js").read_text()
    assert "from './vendor/noble-ed25519-3.2.0/index.js'" in codec
    assert "from './vendor/noble-hashes-2.4.0/sha2.js'" in codec


def test_modules_import_only_local_files_that_exist() -> None:
    imp = re.compile(r"""^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]""", re.M)
    for js in STATIC.rglob("*.js"):
        code = re.sub(r"/\*.*?\*/", "", js.read_text(), flags=re.S)  # examples in doc comments
        for spec in imp.findall(code):
            assert spec.startswith("./"), f"{js.name} imports {spec}: only relative, local modules"
            assert (js.parent / spec).resolve().is_file(), f"{js.name} imports missing {spec}"


def test_pages_reference_no_other_host() -> None:
    attr = re.compile(r"""(?:src|href|action)\s*=\s*["']([^"']+)["']""")
    for html in STATIC.glob("*.html"):
        for ref in attr.findall(html.read_text()):
            assert ref.startswith("/") or ref.startswith("data:") or ref.startswith("#"), (html.name, ref)
            if ref.startswith("/"):
                assert (STATIC / ref.lstrip("/")).is_file(), (html.name, ref)
    for js in STATIC.glob("*.js"):  # our own code (the vendored files only name URLs in comments)
        text = js.read_text()
        assert not re.search(r"""['"`]https?://""", text), js.name
        assert "crypto.subtle." not in text, js.name  # WebCrypto is absent on an http:// LAN address


def test_static_files_ship_with_the_package() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = cfg["tool"]["setuptools"]["package-data"]["imier.web"]
    assert "static/*" in data and "static/**/*" in data
