"""Carrying events by hand: bundles written to and read from files.

:func:`import_bundle` is the door for a bundle's bytes: the store's one intake
(:func:`imier.store.intake.import_bundle`: decode, check, ingest, one report).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from ..protocol.bundle import write_bundle
from ..protocol.errors import LocalError, Rejected, RemoteError
from ..store import intake
from ..store.db import Store
from ..store.intake import IntakeLimits

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


def import_bundle(store: Store, data: bytes, *, now_ms: int, max_skew_ms: int,
                  source: str = "bundle", limits: IntakeLimits | None = None) -> dict[str, Any]:
    """A bundle's bytes through the store's one intake (decode, check, ingest, one report)."""
    return intake.import_bundle(store, data, now_ms=now_ms, max_skew_ms=max_skew_ms,
                                source=source, limits=limits)


def import_file(store: Store, path: Path, *, now_ms: int, max_skew_ms: int,
                limits: IntakeLimits | None = None) -> dict[str, Any]:
    """Import a bundle file; a file that is not a bundle, or is damaged, is refused whole."""
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise LocalError(f"{path} is {size} bytes; bundles are at most {MAX_BUNDLE_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return import_bundle(store, data, now_ms=now_ms, max_skew_ms=max_skew_ms,
                             source=f"bundle:{path.name}", limits=limits)
    except RemoteError as exc:  # the file's fault: keep its code
        raise RemoteError(exc.code, f"{path}: {exc.message}; nothing was imported", hint=exc.hint) from None
