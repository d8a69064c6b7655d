"""`make demo` end to end: three daemons agree on the municipality's verdict."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_three_nodes_agree() -> None:
    r = subprocess.run([sys.executable, "-m", "imier.demo"], capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert out.count("CARRIED in round 2") == 3
    assert "identical on all three nodes" in out and "amendment ADOPTED" in out
    assert "Round 1 sealed 2/2" in out and "Riverside's tellers, drawn by lot" in out
    assert "offences: 0" in out and out.rstrip().endswith("done")
