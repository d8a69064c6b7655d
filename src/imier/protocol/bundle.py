"""Bundle files: signed events carried on a USB stick (pure framing, no I/O).

Layout (docs/protocol.md, "Bundles")::

    magic    b"IMIER-BUNDLE\\n"       13 bytes
    version  u8 = 1
    count    u32 big-endian           number of events
    frames   count x (u32 length, event bytes)   length <= MAX_EVENT_BYTES
    digest   sha256 of everything above, 32 bytes

A file whose magic, version, framing or digest is wrong is refused whole
(:class:`~imier.protocol.errors.RemoteError`). A well-framed bundle yields
every frame's bytes; each is then decoded and verified on its own, so the
good events import and the bad ones are reported.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Iterable

from .errors import RemoteError
from .limits import MAX_EVENT_BYTES

__all__ = ["MAGIC", "BUNDLE_VERSION", "write_bundle", "read_bundle"]

MAGIC = b"IMIER-BUNDLE\n"
BUNDLE_VERSION = 1
_HEAD = struct.Struct(">BI")
_LEN = struct.Struct(">I")


def write_bundle(raws: Iterable[bytes]) -> bytes:
    frames = [bytes(r) for r in raws]
    parts = [MAGIC, _HEAD.pack(BUNDLE_VERSION, len(frames))]
    for f in frames:
        if len(f) > MAX_EVENT_BYTES:
            raise ValueError("event larger than the protocol allows")
        parts.append(_LEN.pack(len(f)))
        parts.append(f)
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def read_bundle(data: bytes) -> list[bytes]:
    """The frames of a bundle, or :class:`RemoteError` naming what is broken."""
    if not data.startswith(MAGIC):
        raise RemoteError("not_bundle", "not an Imier bundle (bad magic bytes)", field="file",
                          hint="was it written by 'imier export'?")
    if len(data) < len(MAGIC) + _HEAD.size + 32:
        raise RemoteError("truncated", "the bundle is truncated", field="file")
    version, count = _HEAD.unpack_from(data, len(MAGIC))
    if version != BUNDLE_VERSION:
        raise RemoteError("bad_version", f"bundle format {version} is not supported", field="version",
                          hint="upgrade Imier to read it")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise RemoteError("bad_digest", "the bundle is damaged (checksum mismatch)", field="digest",
                          hint="copy it again from the source")
    pos = len(MAGIC) + _HEAD.size
    frames: list[bytes] = []
    for i in range(count):
        if pos + _LEN.size > len(body):
            raise RemoteError("truncated", f"frame {i} is cut off", field=f"frames[{i}]")
        (n,) = _LEN.unpack_from(body, pos)
        pos += _LEN.size
        if n > MAX_EVENT_BYTES:
            raise RemoteError("too_large", f"frame {i} is {n} bytes, limit {MAX_EVENT_BYTES}",
                              field=f"frames[{i}]")
        if pos + n > len(body):
            raise RemoteError("truncated", f"frame {i} is cut off", field=f"frames[{i}]")
        frames.append(body[pos : pos + n])
        pos += n
    if pos != len(body):
        raise RemoteError("trailing_bytes", f"{len(body) - pos} bytes after the last frame",
                          field="file")
    return frames
