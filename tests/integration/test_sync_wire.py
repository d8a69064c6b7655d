"""The sync protocol between real processes: bytes proportional to the difference,
and bad frames from a raw libp2p peer refused, counted, and harmless to others."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from nacl.signing import SigningKey

from imier.protocol.events import Found, Vote, sign_event
from imier.store.db import Store

from .nodes import Node, same_sets, wait_until

pytestmark = pytest.mark.integration


def _history(n: int, extra_a: int, extra_b: int) -> tuple[bytes, list, list, list]:
    """A body with ``n`` shared events, plus events only one side will hold."""
    key = SigningKey(b"\x07" * 32)
    t = int(time.time() * 1000) - 10 * 86_400_000
    found = sign_event(key, body=None, ts=t, seq=1, prev=[], data=Found(body_kind="community", name="Old"))
    evs = [found]
    for i in range(n + extra_a + extra_b):
        prev = evs[-1] if i < n else evs[n]  # the extras fork off the shared history's head
        evs.append(sign_event(key, body=found.id, ts=prev.ts + 1000 + i, seq=prev.seq + 1,
                              prev=[prev.id], data=Vote(target=found.id, choice="yes")))
    shared = evs[: n + 1]
    only_a = evs[n + 1 : n + 1 + extra_a]
    only_b = evs[n + 1 + extra_a :]
    return found.id, shared, only_a, only_b


def _fill(node: Node, body: bytes, evs: list) -> None:
    st = Store.open(node.home / "store.sqlite3")
    try:
        st.ingest(evs)
        st.follow(body)
    finally:
        st.close()


def test_reconciliation_bytes_grow_with_the_difference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    n = 3000
    body, shared, only_a, only_b = _history(n, 1, 1)
    # each extra event has the same seq (a fork): both are valid signed data, held as such
    _fill(a, body, shared + only_a)
    _fill(b, body, shared + only_b)
    assert len(a.event_ids()) == n + 2 and len(b.event_ids()) == n + 2
    try:
        a.start()
        stats = b.json("sync", a.addr())  # no daemon on b: a temporary host, one session
        assert stats["via"] == "temporary host"
        assert stats["items"] == n + 2
        assert stats["have"] == 1 and stats["need"] == 1 and stats["new"] == 1, json.dumps(stats)
        # 3002 ids alone would be 96 kB; the reconciliation costs a few kB
        assert stats["reconcile_bytes"] < 8_000, stats
        assert stats["handshake_bytes"] < 1_000, stats
        wait_until(lambda: same_sets([a, b]), 10, "a to hold b's event too")
        again = b.json("sync", a.addr())
        assert again["have"] == 0 and again["need"] == 0
        assert again["reconcile_bytes"] < 200, again  # equal sets: one fingerprint, one "done"
        print(f"reconcile bytes: {stats['reconcile_bytes']} (differing), {again['reconcile_bytes']} (equal)")
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        a.kill()


RAW_PEER = textwrap.dedent(
    """
    import json, struct, sys, trio, multiaddr
    from imier.nodeapp import quirks
    from imier.protocol import syncwire as wire
    from imier.protocol import canonical
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr

    P = TProtocol(wire.SYNC_PROTOCOL)
    BAD = [
        ("oversized", struct.pack(">I", 50 * 1024 * 1024) + b"x" * 100),
        ("malformed", struct.pack(">I", 5) + b"\\xc1\\xc1\\xc1\\xc1\\xc1"),
        ("not a frame", wire.encode_frame({"t": "nonsense"})),
        ("bad rec", wire.hello("raw", [], []) + wire.offer([]) + wire.rec(b"\\x81\\xa1r\\x91\\x93\\xc0\\x09\\xc0")),
        ("bad event", wire.hello("raw", [], []) + wire.offer([]) + wire.rec(canonical.pack({"r": []}))
                      + wire.events_frame([b"\\x80"]) + wire.end()),
    ]

    async def main(addr):
        h = quirks.make_host(quirks.key_pair_from_seed(b"\\x09" * 32), [])
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        out = {}
        async with h.run([]):
            with trio.fail_after(10):
                await h.connect(info)
            for name, data in BAD:
                try:
                    with trio.fail_after(10):
                        s = await h.new_stream(info.peer_id, [P])
                        await s.write(data)
                        got = b""
                        while True:
                            try:
                                chunk = await s.read(65536)
                            except Exception:
                                break
                            if not chunk:
                                break
                            got += chunk
                    out[name] = got.count(b"err")
                except Exception as exc:
                    out[name] = type(exc).__name__
        print(json.dumps({"peer_id": h.get_id().to_string(), "results": out}))

    trio.run(main, sys.argv[1])
    """
)


def test_bad_frames_are_refused_counted_and_harmless(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = Node(tmp_path, "a"), Node(tmp_path, "b")
    a.init("ana")
    b.init("ben")
    body, shared, _, _ = _history(50, 0, 0)
    _fill(a, body, shared)
    _fill(b, body, shared[:10])
    try:
        a.start()
        script = tmp_path / "raw_peer.py"
        script.write_text(RAW_PEER)
        r = subprocess.run([sys.executable, str(script), a.addr()], capture_output=True, text=True,
                           timeout=90, env=a.env())
        assert r.returncode == 0, r.stderr[-3000:]
        raw = json.loads(r.stdout.strip().splitlines()[-1])

        def offences() -> list:
            peers = a.json("peers")["peers"]
            mine = [p for p in peers if p["peer_id"] == raw["peer_id"]]
            return mine[0]["offences"] and mine  # type: ignore[no-any-return]

        mine = wait_until(lambda: offences() and offences()[0]["offences"] >= 5, 10, "offences counted")
        peer = offences()[0]
        codes = {o["code"] for o in peer["recent_offences"]}
        assert "frame_too_large" in codes and "malformed" in codes, peer
        assert peer["banned"] is True and peer["connected"] is False or peer["banned"] is True
        assert mine
        log = a.log()
        assert "frame_too_large" in log and "refused" in log
        # a well-behaved peer still syncs with a
        stats = b.json("sync", a.addr())
        assert stats["new"] == 41
        assert same_sets([a, b])
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        a.kill()
