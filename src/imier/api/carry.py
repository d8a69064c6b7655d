"""Carrying events by hand: bundles written to and read from files.

:func:`import_bundle` is the door for a bundle's bytes; it will delegate to
the store's one intake (decode, check, ingest, one report) once that lands,
keeping this signature and report.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

from ..protocol.bundle import read_bundle, write_bundle
from ..protocol.errors import LocalError, Rejected, RemoteError
from ..protocol.events import Event, decode_event
from ..store.db import Store, bulk

__all__ = ["MAX_BUNDLE_BYTES", "Exported", "export_file", "import_bundle", "import_file"]

MAX_BUNDLE_BYTES = 2 * 1024**3


class Exported:
    def __init__(self, path: Path, events: int, size: int) -> None:
        self.path, self.events, self.bytes = path, events, size

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "events": self.events, "bytes": self.bytes}


def export_file(store: Store, path: Path, bodies: Iterable[bytes] | None = None, *,
                force: bool = False) -> Exported:
    """Write the held events (of ``bodies`` and the bodies under them, or all) to ``path``.

    An existing file is kept unless ``force``: a bundle is often carried over
    the last one on the stick, and a wrong name must not eat another file.
    """
    if path.exists() and not force:
        raise Rejected("exists", f"{path} already exists; nothing was written", field="file",
                       hint="choose another name, or --force to replace it")
    scope: set[bytes] | None = None
    if bodies is not None:
        scope = set()
        for b in bodies:
            scope |= store.closure(b)
    raws = list(store.raw_for_bodies(scope))
    data = write_bundle(raws)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise LocalError(f"cannot write {path}: {exc.strerror}") from None
    return Exported(path, len(raws), len(data))


def import_bundle(store: Store, data: bytes, *, now_ms: int, max_skew_ms: int) -> dict[str, Any]:
    """Decode and verify every frame, then ingest the good ones in one transaction."""
    frames = read_bundle(data)  # refuses a broken file whole
    good: list[Event] = []
    rejected: list[dict[str, Any]] = []
    with bulk():
        for i, raw in enumerate(frames):
            try:
                good.append(decode_event(raw))
            except Rejected as exc:
                rejected.append({"id": hashlib.sha256(raw).hexdigest(), "index": i,
                                 "reason": str(exc), "code": exc.code})
        res = store.ingest(good, now_ms=now_ms, max_skew_ms=max_skew_ms)
    for eid, reason in res.rejected:
        rejected.append({"id": eid.hex(), "reason": reason, "code": "causality"})
    for eid in res.deferred:
        rejected.append({"id": eid.hex(), "code": "future",
                         "reason": "timestamped too far in the future; import again later"})
    return {"new": len(res.new), "held": len(res.held), "pending": len(res.pending),
            "rejected": rejected}


def import_file(store: Store, path: Path, *, now_ms: int, max_skew_ms: int) -> dict[str, Any]:
    """Import a bundle file; a file that is not a bundle, or is damaged, is refused whole."""
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise LocalError(f"{path} is {size} bytes; bundles are at most {MAX_BUNDLE_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return import_bundle(store, data, now_ms=now_ms, max_skew_ms=max_skew_ms)
    except RemoteError as exc:  # the file's fault: keep its code
        raise RemoteError(exc.code, f"{path}: {exc.message}; nothing was imported", hint=exc.hint) from None
