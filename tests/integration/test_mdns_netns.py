"""mDNS at a meeting with no internet: two laptops on one local network find each
other and converge, with no bootstrap address given.

The "local network" is two network namespaces made by this test, joined by a
veth pair (10.213.7.1 and 10.213.7.2: the test's own hosts, nothing else is
reachable). Needs root and `ip netns`; skipped where they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .nodes import Node, same_sets, wait_until

pytestmark = pytest.mark.integration

S = 1000
T0 = (int(time.time()) - 3600) * S  # an hour ago: the daemons defer events from the future


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@pytest.fixture
def lan():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make network namespaces")
    tag = uuid.uuid4().hex[:6]
    ns = [f"imier-{tag}-a", f"imier-{tag}-b"]
    veth = [f"im{tag}a", f"im{tag}b"]
    try:
        for n in ns:
            _sh("ip", "netns", "add", n)
        _sh("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for i, (n, v) in enumerate(zip(ns, veth, strict=True)):
            _sh("ip", "link", "set", v, "netns", n)
            _sh("ip", "-n", n, "addr", "add", f"10.213.7.{i + 1}/24", "dev", v)
            _sh("ip", "-n", n, "link", "set", v, "up", "multicast", "on")
            _sh("ip", "-n", n, "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)
        pytest.skip(f"cannot make network namespaces here: {exc}")
    yield ns
    for n in ns:
        subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)


def _start_in(node: Node, netns: str) -> subprocess.Popen[bytes]:
    log = open(node.log_path, "ab")
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "imier.cli.main", "daemon",
         "--listen", "/ip4/0.0.0.0/tcp/4001", "--sync-interval", "2s", "--log-level", "info"],
        env=node.env(), stdout=log, stderr=subprocess.STDOUT,
    )


def test_two_laptops_find_each_other_by_mdns(tmp_path: Path, lan: list[str]) -> None:
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    ben = b.init("ben")
    north = a.run("body", "found", "community", "North", "--charter", "discussion=5s",
                  IMIER_NOW=str(T0)).stdout.strip()
    a.run("member", "admit", "North", ben, IMIER_NOW=str(T0 + S))
    b.run("body", "follow", north)  # an admission learnt from a peer alone is an invitation
    procs = []
    try:
        procs = [_start_in(a, lan[0]), _start_in(b, lan[1])]
        # b finds a with no address given (mDNS only) and syncs the North it follows
        wait_until(lambda: same_sets([a, b]), 60, "b to find a on the LAN and sync North")
        prop = a.run("propose", "North", "--title", "Lights", "--text", "Street lights.",
                     IMIER_NOW=str(T0 + 2 * S)).stdout.strip()
        wait_until(lambda: bytes.fromhex(prop) in b.event_ids(), 30, "the proposal to reach b")
        assert "found" in a.log() + b.log()
        assert "0.0.0.0" not in _announced(a.log() + b.log())
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)


def _announced(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "announc" in line)
