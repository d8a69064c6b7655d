"""The page's JS codec (static/codec.js) encodes and signs exactly as the Python code.

In headless Chromium: every vector of docs/protocol-vectors.json, then events of
every kind generated here from a seeded random source and signed by
imier.protocol.events.sign_event, then arbitrary canonical values across every
msgpack size boundary. The JS side gets only the fields (no signature, no bytes)
and must produce the same signed bytes, wire bytes, signature and id.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from nacl.signing import SigningKey

from imier.protocol import canonical
from imier.protocol.events import (
    SEAL_WINDOWS, SIGN_CONTEXT, Admit, Amend, Found, Leave, Link, Part, Profile, Propose, Recall,
    Seal, Stand, Unlink, Vote, Withdraw, decode_event, sign_event,
)

from .browser import static_server

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "docs" / "protocol-vectors.json").read_text())


def tagged(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"bin": v.hex()}
    if isinstance(v, dict):
        return {k: tagged(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [tagged(x) for x in v]
    return v


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server() as base:
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.goto(base + "/codec.js")
        pg.evaluate("async () => { window.C = await import('/codec.js'); }")
        try:
            yield pg
        finally:
            ctx.close()


SIGN_JS = """
(vectors) => vectors.map((v) => {
  const ev = C.fromTagged(v.event);
  const out = C.signEvent(C.fromHex(v.seed), {
    body: ev.body, ts: ev.ts, seq: ev.seq, prev: ev.prev, kind: ev.kind, data: ev.data,
  });
  let decoded = null;
  try { decoded = C.toHex(C.decodeEvent(out.raw).id); } catch (e) { decoded = 'error ' + e.message; }
  return {
    signed: C.toHex(out.signed), raw: C.toHex(out.raw), id: C.toHex(out.id),
    sig: C.toHex(out.sig), author: C.toHex(out.author), decoded,
  };
})
"""


def check_signed(page: Any, vectors: list[dict[str, Any]]) -> None:
    got = page.evaluate(SIGN_JS, vectors)
    assert len(got) == len(vectors)
    for v, g in zip(vectors, got, strict=True):
        kind = v["event"]["kind"]
        assert g["signed"] == v["signed"], f"signed bytes differ for a {kind}"
        assert g["raw"] == v["raw"], f"wire bytes differ for a {kind}"
        assert g["id"] == v["id"], kind
        assert g["decoded"] == v["id"], f"JS could not decode its own {kind}: {g['decoded']}"
        raw = bytes.fromhex(g["raw"])
        assert decode_event(raw).id.hex() == v["id"]  # and Python accepts what JS made


def test_every_event_vector(page: Any) -> None:
    vectors = VECTORS["events"]
    kinds = {v["event"]["kind"] for v in vectors}
    assert {"found", "vote", "seal", "profile", "link", "unlink", "propose"} <= kinds
    # The JS side is given the fields without the signature.
    check_signed(page, [dict(v, event={k: x for k, x in v["event"].items() if k != "sig"})
                        for v in vectors])


def test_frames_gossip_and_reconcile_messages_round_trip(page: Any) -> None:
    """Every other msgpack value in the vectors decodes and re-encodes byte for byte."""
    blobs = [h[8:] for h in VECTORS["frames"].values()]  # after the u32 length
    blobs += [m for k, m in VECTORS["gossip"].items() if k != "topic"]
    blobs += [t["msg"] for t in VECTORS["reconcile"]["transcript"]]
    got = page.evaluate("(bs) => bs.map((h) => C.toHex(C.pack(C.unpack(C.fromHex(h), 1 << 20))))", blobs)
    assert got == blobs


def test_fingerprint_vector_with_the_page_sha256(page: Any) -> None:
    fp = VECTORS["fingerprint"]
    got = page.evaluate(
        """(fp) => {
          let s = 0n;
          for (const h of fp.ids) {
            const b = C.fromHex(h);
            for (let i = 31; i >= 0; i--) s += BigInt(b[i]) << BigInt(8 * i);
          }
          s &= (1n << 256n) - 1n;
          const buf = new Uint8Array(40);
          for (let i = 0; i < 32; i++) buf[i] = Number((s >> BigInt(8 * i)) & 0xffn);
          for (let i = 0; i < 8; i++) buf[32 + i] = Number((BigInt(fp.count) >> BigInt(8 * i)) & 0xffn);
          return C.toHex(C.sha256Bytes(buf).slice(0, 16));
        }""",
        fp,
    )
    assert got == fp["fingerprint"]


# -- random events of every kind, signed by the Python code --------------------------------


def _text(r: random.Random, lo: int = 1, hi: int = 80) -> str:
    # ASCII, Latin-1, 3-byte and 4-byte code points: string lengths cross the
    # fixstr / str8 / str16 boundaries in bytes, not characters.
    alphabet = "abc XYZ019-_.,'\"\\/\n\téüßñ€中文✓💡🙂"
    n = min(hi, max(lo, r.choice([lo, r.randint(lo, hi), 10, 31, 32, 255, 256, r.randint(300, 3000)])))
    s = "".join(r.choice(alphabet) for _ in range(n))
    return s if (lo == 0 or s.strip()) else "x" + s[1:]


def _id(r: random.Random) -> bytes:
    return r.randbytes(32)


def _ids(r: random.Random, lo: int, hi: int) -> tuple[bytes, ...]:
    return tuple(sorted({_id(r) for _ in range(r.randint(lo, hi))}))


def _category(r: random.Random) -> str:
    return r.choice("abcdefghijklmnopqrstuvwxyz0123456789") + "".join(
        r.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(r.randint(0, 31)))


def _payload(r: random.Random, kind: str) -> Any:
    if kind == "admit":
        return Admit(member=_id(r))
    if kind == "leave":
        return Leave()
    if kind == "part":
        return Part(part=_id(r), join=r.random() < 0.5)
    if kind == "amend":
        return Amend(proposal=_id(r), text=_text(r, hi=5000))
    if kind == "vote":
        choice = r.choice(["yes", "no", "abstain"])
        if choice != "no":
            return Vote(target=_id(r), choice=choice)
        return Vote(target=_id(r), choice="no", severity=r.choice(["minor", "blocking"]),
                    category=_category(r), delegate=_id(r) if r.random() < 0.5 else None)
    if kind == "stand":
        return Stand(proposal=_id(r), choice=r.choice(["yes", "no"]))
    if kind == "withdraw":
        return Withdraw(proposal=_id(r))
    if kind == "recall":
        return Recall(mandate=_id(r), holder=_id(r), reason=_text(r))
    if kind == "seal":
        return Seal(proposal=_id(r), window=r.choice(SEAL_WINDOWS), heads=_ids(r, 1, 40))
    if kind == "profile":
        return Profile(name=_text(r, hi=64))
    if kind == "link":
        return Link(device=_id(r))
    if kind == "unlink":
        return Unlink(device=_id(r))
    title, text = _text(r, hi=200), _text(r, hi=6000)
    pk = kind.split(":")[1]
    if pk == "general":
        return Propose(title=title, text=text)
    if pk == "charter":
        keys = ["quorum", "discussion", "vote_window", "seal_window", "combine", "amendment_window"]
        ch: dict[str, str] = {}
        for k in r.sample(keys, r.randint(1, len(keys))):
            ch[k] = {"quorum": f"{r.randint(1, 3)}/4", "combine": r.choice(["verdicts", "support", "population"])
                     }.get(k, f"{r.randint(1, 90)}{r.choice(['s', 'm', 'h', 'd', ''])}")
        return Propose(title=title, text=text, proposal_kind="charter", charter=ch)
    if pk == "mandate":
        return Propose(title=title, text=text, proposal_kind="mandate", holder=_id(r), task=_text(r, hi=40),
                       term_ms=r.randint(1, 366 * 86_400_000), scope=_id(r) if r.random() < 0.5 else None)
    if pk == "draw":
        if r.random() < 0.5:
            return Propose(title=title, text=text, proposal_kind="draw", k=r.randint(1, 5), task="teller",
                           all_members=True, term_ms=r.choice([None, r.randint(1, 10**9)]))
        cands = _ids(r, 1, 40)
        return Propose(title=title, text=text, proposal_kind="draw", k=r.randint(1, len(cands)),
                       task=_text(r, hi=30), candidates=cands)
    if pk == "renew":
        return Propose(title=title, text=text, proposal_kind="renew", committee=_id(r))
    if pk == "federate":
        return Propose(title=title, text=text, proposal_kind="federate", federation=_id(r), join=r.random() < 0.5)
    assert pk == "recover"
    return Propose(title=title, text=text, proposal_kind="recover", person=_id(r), new_key=_id(r))


KINDS = ["found", "admit", "leave", "part", "amend", "vote", "stand", "withdraw", "recall", "seal",
         "profile", "link", "unlink", "propose:general", "propose:charter", "propose:mandate",
         "propose:draw", "propose:renew", "propose:federate", "propose:recover"]
PER_KIND = 12  # 20 kinds x 12 = 240 events


def random_vectors(seed: int) -> list[dict[str, Any]]:
    r = random.Random(seed)
    out = []
    for kind in KINDS:
        for _ in range(PER_KIND):
            key_seed = r.randbytes(32)
            key = SigningKey(key_seed)
            ts = r.choice([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, r.randint(0, 2**53), 2**53,
                           1_700_000_000_000 + r.randint(0, 10**9)])
            if kind == "found":
                body_kind = r.choice(["community", "workplace", "committee", "municipality", "region", "collective"])
                fed = body_kind in ("municipality", "region", "collective")
                ev = sign_event(key, body=None, ts=ts, seq=1, prev=[], data=Found(
                    body_kind=body_kind, name=_text(r, hi=100),
                    charter={"quorum": "1/3"} if r.random() < 0.5 else {},
                    parts=_ids(r, 1, 20) if fed and r.random() < 0.7 else (),
                    parent=_id(r) if r.random() < 0.3 else None))
            else:
                seq = r.choice([1, 2, 127, 128, 65536, r.randint(1, 2**40), 2**40])
                prev = [_id(r) for _ in range(r.randint(1, 8))]
                ev = sign_event(key, body=_id(r), ts=ts, seq=seq, prev=prev, data=_payload(r, kind))
            full = msgpack.unpackb(ev.raw)
            fields = {k: v for k, v in full.items() if k != "sig"}
            out.append({"seed": key_seed.hex(), "event": tagged(fields),
                        "signed": (SIGN_CONTEXT + canonical.pack(fields)).hex(),
                        "raw": ev.raw.hex(), "id": ev.id.hex()})
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_random_events_of_every_kind(page: Any, seed: int) -> None:
    vectors = random_vectors(seed)
    assert len(vectors) == len(KINDS) * PER_KIND
    # JS receives prev unsorted and with a duplicate, as a page might gather it.
    for v in vectors:
        prev = v["event"]["prev"]
        if prev:
            v["event"]["prev"] = list(reversed(prev)) + [prev[0]]
    check_signed(page, vectors)


def _value(r: random.Random, depth: int = 0) -> Any:
    pick = r.randint(0, 9 if depth < 5 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return r.random() < 0.5
    if pick == 2:
        edges = [0, 1, 31, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53, 2**63, 2**64 - 1,
                 -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
        return r.choice(edges + [r.randint(-(2**63), 2**64 - 1)])
    big = depth == 0  # the large forms (str16/32, bin16/32) only at the top: the blobs stay small
    if pick in (3, 4):
        return _text(r, lo=0, hi=r.choice([0, 5, 31, 32, 255, 256] + ([30000] if big else [])))
    if pick in (5, 6):
        return r.randbytes(r.choice([0, 1, 32, 255, 256, r.randint(0, 300)] + ([65535, 65536] if big else [])))
    if pick in (7, 8):
        return [_value(r, depth + 1) for _ in range(r.choice([0, 1, 15, 16, r.randint(0, 20)] if depth < 2 else [0, 1, 2]))]
    keys = ["", "a", "b", "ab", "B", "é", "z" * 40, "sig", "seq", "ts", "中", "a\u00e9", "aé2", "key"]
    n = r.randint(0, len(keys) if depth < 2 else 2)
    return {k: _value(r, depth + 1) for k in r.sample(keys, n)} | (
        {f"k{i}": i for i in range(r.choice([0, 0, 16]))})


def test_arbitrary_values_across_every_size_boundary(page: Any) -> None:
    r = random.Random(7)
    blobs = [canonical.pack(_value(r)) for _ in range(150)]
    # And every form once, explicitly: the shortest one around each boundary.
    edges: list[Any] = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -1, -32, -33,
                        -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63), None, True, False]
    edges += ["", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "a" * 65535, "a" * 65536]
    edges += [b"", b"x" * 255, b"x" * 256, b"x" * 65535, b"x" * 65536]
    edges += [[0] * 15, [0] * 16, [0] * 4096, {f"k{i:02}": i for i in range(15)},
              {f"k{i:02}": i for i in range(16)}]
    blobs += [canonical.pack(e) for e in edges]
    assert sum(map(len, blobs)) < 4_000_000
    got = page.evaluate(
        "(bs) => bs.map((h) => { const b = C.fromHex(h); const v = C.unpack(b, 1 << 24);"
        " return C.toHex(C.pack(v)) === h ? 'same' : C.toHex(C.pack(v)); })",
        [b.hex() for b in blobs],
    )
    assert got == ["same"] * len(blobs)


def test_decoder_refuses_what_python_refuses(page: Any) -> None:
    """Non-canonical forms, trailing bytes, floats and a tampered signature are refused."""
    good = bytes.fromhex(VECTORS["events"][13]["raw"])
    flipped = bytearray(good)
    flipped[-20] ^= 1  # inside the signature or the ts: either way the event no longer verifies
    cases = {
        "non_shortest_int": "cc05",          # 5 as uint8
        "unsorted_map": "82a162c0a161c0",    # {"b": nil, "a": nil}
        "trailing": "c0c0",
        "float": "cb3ff0000000000000",
        "str_as_str8": "d90161",
    }
    got = page.evaluate(
        """(cs) => Object.fromEntries(Object.entries(cs).map(([k, h]) => {
            try { C.unpack(C.fromHex(h)); return [k, 'accepted']; } catch (e) { return [k, e.code]; }
        }))""",
        cases,
    )
    assert got == {"non_shortest_int": "not_canonical", "unsorted_map": "not_canonical",
                   "trailing": "trailing_bytes", "float": "bad_type", "str_as_str8": "not_canonical"}
    verdict = page.evaluate(
        "(h) => { try { C.decodeEvent(C.fromHex(h)); return 'accepted'; } catch (e) { return e.code; } }",
        bytes(flipped).hex())
    assert verdict in ("bad_signature", "not_canonical")
    assert hashlib.sha256(good).hexdigest() == VECTORS["events"][13]["id"]
