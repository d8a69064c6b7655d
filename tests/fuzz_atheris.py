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
    from imier.cli.carry import import_bundle
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


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
