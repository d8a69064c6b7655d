"""A hostile peer on the gossip topic: garbage, broken events and a flood are
refused and counted against that peer alone, the peer is cut off, the
daemon's memory stays bounded, and a well-behaved peer still syncs.

The hostile peer is a raw py-libp2p host with Imier's own GossipSub settings
(nodeapp/quirks.py), subscribed to the body's topic, publishing
``FLOOD`` messages as fast as the router takes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from imier.store.db import Store

from .nodes import Node, same_sets, wait_until
from .test_sync_wire import _fill, _history

pytestmark = pytest.mark.integration

FLOOD = 3000

HOSTILE = textwrap.dedent(
    """
    import json, os, sys, trio, multiaddr
    from imier.nodeapp import quirks
    from imier.protocol import syncwire as wire
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.tools.anyio_service import background_trio_service

    async def main(addr, body_hex, n):
        listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
        h = quirks.make_host(quirks.key_pair_from_seed(b"\\x0b" * 32), listen)
        pubsub, router = quirks.make_gossip(h)
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        topic = wire.topic_for(bytes.fromhex(body_hex))
        sent = failed = 0
        async with h.run(listen):
            async with background_trio_service(pubsub), background_trio_service(router):
                await pubsub.wait_until_ready()
                await pubsub.subscribe(topic)
                with trio.fail_after(10):
                    await h.connect(info)
                await trio.sleep(4)  # a few heartbeats: join the daemon's mesh
                for i in range(n):
                    tag = i.to_bytes(4, "big")  # message ids are by content: each one differs
                    kind = i % 4
                    if kind == 0:
                        data = b"garbage" + tag + os.urandom(32)
                    elif kind == 1:
                        data = wire.encode_gossip([b"\\x80" + tag])  # a broken event
                    elif kind == 2:
                        data = b"\\xc1" * 200_000 + tag  # big and malformed
                    else:
                        data = wire.encode_gossip([os.urandom(300) + tag] * 16)
                    try:
                        with trio.move_on_after(1):
                            await pubsub.publish(topic, data)
                            sent += 1
                    except Exception:
                        failed += 1
                await trio.sleep(3)
        print(json.dumps({"peer_id": h.get_id().to_string(), "sent": sent, "failed": failed}))

    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
    """
)


def _rss_mb(pid: int) -> tuple[float, float]:
    st = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            st[k] = int(v.split()[0]) / 1024
    return st["VmRSS"], st["VmHWM"]


def test_gossip_garbage_and_flood_are_cut_off_per_peer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    body, shared, _, _ = _history(60, 0, 0)
    _fill(a, body, shared)
    _fill(b, body, shared[:20])
    try:
        a.start("--sync-interval", "3600s")
        assert a.proc is not None
        time.sleep(2)
        before, _ = _rss_mb(a.proc.pid)
        script = tmp_path / "hostile.py"
        script.write_text(HOSTILE)
        r = subprocess.run([sys.executable, str(script), a.addr(), body.hex(), str(FLOOD)],
                           capture_output=True, text=True, timeout=240, env=a.env())
        assert r.returncode == 0, r.stderr[-3000:]
        raw = json.loads(r.stdout.strip().splitlines()[-1])
        assert raw["sent"] > 0

        def record() -> dict | None:  # type: ignore[type-arg]
            peers = a.json("peers")["peers"]
            mine = [p for p in peers if p["peer_id"] == raw["peer_id"]]
            return mine[0] if mine and mine[0]["offences"] >= 5 else None

        peer = wait_until(record, 20, "offences of the hostile peer to be counted")
        assert peer["banned"] is True, peer
        assert peer["recent_offences"] and all(o["code"] for o in peer["recent_offences"]), peer
        after, peak = _rss_mb(a.proc.pid)
        print(f"daemon RSS {before:.0f} MiB before, {after:.0f} after, peak {peak:.0f}; "
              f"hostile sent {raw['sent']} ({raw['failed']} failed)")
        assert after - before < 150, (before, after)
        assert peak - before < 300, (before, peak)
        # Nothing of the garbage reached the store; the daemon still serves others.
        st = Store.open(a.home / "store.sqlite3")
        try:
            assert st.count() == len(shared)
        finally:
            st.close()
        stats = b.json("sync", a.addr())
        assert stats["new"] == len(shared) - 20
        assert same_sets([a, b])
        assert a.proc.poll() is None
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        a.kill()
