"""Coverage-guided fuzzing with atheris (``make fuzz`` runs it when atheris is
installed; it is not a pytest module). The first input byte picks a parser:
event decoder, bundle reader + import, sync frame, gossip message, reconcile
message (also fed to a reconciler), scenario loader. Anything but an
``ImierError`` escaping is a crash that atheris reports with its input.

    python tests/fuzz_atheris.py -atheris_runs=100000
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    from imier.store.intake import import_bundle
    from imier.protocol import syncwire
    from imier.protocol.bundle import read_bundle
    from imier.protocol.errors import ImierError
    from imier.protocol.events import decode_event
    from imier.protocol.reconcile import Reconciler, decode_message
    from imier.simulate import load
    from imier.store.db import Store

_ITEMS = sorted((i * 7919 % 100_000, bytes([i % 256]) * 32) for i in range(64))


def _scenario(data: bytes) -> None:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return  # not JSON: the file loader refuses it before load()
    load(doc)


def _import(data: bytes) -> None:
    store = Store.memory()
    try:
        import_bundle(store, data, now_ms=2**45, max_skew_ms=300_000)
    finally:
        store.close()


TARGETS = [
    decode_event,
    read_bundle,
    _import,
    syncwire.decode_frame,
    syncwire.decode_gossip,
    decode_message,
    lambda d: Reconciler(list(_ITEMS)).reconcile(d),
    _scenario,
]


def one_input(data: bytes) -> None:
    if not data:
        return
    fn = TARGETS[data[0] % len(TARGETS)]
    try:
        fn(data[1:])
    except ImierError:
        pass


def _seeds() -> list[bytes]:
    """Valid inputs for every target, so mutation starts past the first checks."""
    from nacl.signing import SigningKey

    from imier.protocol.bundle import write_bundle
    from imier.protocol.events import Found, Vote, sign_event

    k = SigningKey(b"\x01" * 32)
    f = sign_event(k, body=None, ts=1000, seq=1, prev=[], data=Found(body_kind="community", name="N"))
    v = sign_event(k, body=f.id, ts=2000, seq=2, prev=[f.id], data=Vote(target=f.id, choice="no",
                                                                       severity="minor", category="cost"))
    frames = [syncwire.hello("n", [f.id], []), syncwire.offer([f.id]), syncwire.events_frame([f.raw]),
              syncwire.end()]
    scen = {"bodies": {"a": {"kind": "community", "members": 3}},
            "proposal": {"body": "a", "title": "t", "text": "x"}, "rounds": [{"votes": {"a": {"yes": 2}}}]}
    per_target = [
        [f.raw, v.raw], [write_bundle([f.raw, v.raw])], [write_bundle([f.raw, v.raw])],
        [fr[4:] for fr in frames], [syncwire.encode_gossip([f.raw, v.raw])],
        [Reconciler([(1, b"\x02" * 32)]).initiate()], [Reconciler([(1, b"\x02" * 32)]).initiate()],
        [json.dumps(scen).encode()],
    ]
    return [bytes([i]) + x for i, xs in enumerate(per_target) for x in xs]


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    corpus = Path(tempfile.mkdtemp(prefix="imier-atheris-"))
    for i, seed in enumerate(_seeds()):
        (corpus / f"seed{i}").write_bytes(seed)
    atheris.instrument_all()  # every loaded Python function, whatever imported it first
    atheris.Setup(sys.argv + [str(corpus)], one_input)
    atheris.Fuzz()
