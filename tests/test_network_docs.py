"""The network docs stay true: the config example parses, every reason code and
frame type the sync code can produce is in docs/protocol.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from imier.store.home import Config

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["protocol/reconcile.py", "protocol/syncwire.py", "nodeapp/sync.py", "nodeapp/node.py",
           "nodeapp/gossip.py", "protocol/canonical.py"]


def test_operations_config_example_parses() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    cfg = Config.from_dict(tomllib.loads(block.group(1)))
    assert cfg.listen == ["/ip4/0.0.0.0/tcp/4001"] and cfg.sync_interval_ms == 30_000
    for key in ("name", "max_skew", "log_level", "listen", "bootstrap", "mdns", "gossip", "sync_interval"):
        assert f"`{'node' if key in ('name', 'max_skew', 'log_level') else 'network'}.{key}`" in text


def test_every_reason_code_and_frame_is_in_protocol_md() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    codes: set[str] = set()
    for rel in SOURCES:
        src = (ROOT / "src" / "imier" / rel).read_text()
        codes |= set(re.findall(r'(?:Rejected|RemoteError)\(\s*"([a-z_]+)"', src))
        codes |= set(re.findall(r'offend\(\s*\w+,\s*"([a-z_]+)"', src))
    assert len(codes) > 20
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    assert not missing, f"reason codes missing from docs/protocol.md: {missing}"
    for frame in ("hello", "offer", "rec", "ev", "end", "err"):
        assert f'"t": "{frame}"' in doc


def test_protocol_vectors_match_the_code() -> None:
    import json

    from .protocol_vectors import build

    assert json.loads((ROOT / "docs" / "protocol-vectors.json").read_text()) == build()
