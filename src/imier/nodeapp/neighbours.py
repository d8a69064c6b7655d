"""The peers this node knows share a held body, kept across restarts.

A peer becomes *proven* (bounds.PeerRecord.proven) after a clean session over
a held body in which it showed it holds some of the same events; proven peers
get the session slots strangers cannot take and go before strangers' rounds
(inbound.py, sync.Priority). Held only in memory, that standing was lost at
every restart, so an attacker connected when a node starts could keep its
neighbours out (audit of issue 10). This file keeps it.

Invariants:

1. ``neighbours.json`` in the home: ``{"version": 1, "peers": {PEER_ID: MS}}``,
   the time each peer last proved itself. Written atomically (a temporary file
   renamed into place), mode 0600, only when a peer is newly proven or its
   time is more than a day old: a few writes a day, not one per session.
2. Bounded: at most ``MAX_KEPT`` peers (the longest unseen are dropped) and
   only those seen within ``KEEP_MS`` (90 days).
3. A file that does not read (damaged, hand-edited, from the future) is
   ignored with one warning: the node starts with no neighbours, as before,
   and rewrites the file when one proves itself again. Never a reason not to
   start. A write that fails (a full disk) is one warning, not an error.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["Neighbours", "MAX_KEPT", "KEEP_MS", "FILE_NAME"]

log = logging.getLogger("imier.daemon")
FILE_NAME = "neighbours.json"
MAX_KEPT = 4096
KEEP_MS = 90 * 86_400_000
REFRESH_MS = 86_400_000
_MAX_FILE_BYTES = 1 << 20


class Neighbours:
    def __init__(self, path: Path, now_ms: int) -> None:
        self.path = path
        self.peers: dict[str, int] = {}
        self._load(now_ms)

    def _load(self, now_ms: int) -> None:
        try:
            if not self.path.exists():
                return
            if self.path.stat().st_size > _MAX_FILE_BYTES:
                raise ValueError(f"larger than {_MAX_FILE_BYTES} bytes")
            doc: Any = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("peers"), dict):
                raise ValueError("not a version 1 neighbours file")
            peers = {}
            for pid, ms in doc["peers"].items():
                if not (isinstance(pid, str) and 0 < len(pid) <= 128 and isinstance(ms, int)
                        and not isinstance(ms, bool)):
                    raise ValueError(f"bad entry {str(pid)[:20]!r}")
                if now_ms - KEEP_MS <= ms <= now_ms + KEEP_MS:
                    peers[pid] = ms
            self.peers = dict(sorted(peers.items(), key=lambda kv: kv[1])[-MAX_KEPT:])
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("%s is not readable (%s); starting with no known neighbours", self.path, exc)
            self.peers = {}

    def known(self, peer_id: str) -> bool:
        return peer_id in self.peers

    def proved(self, peer_id: str, now_ms: int) -> None:
        """``peer_id`` just completed a clean session as a neighbour: remember it."""
        last = self.peers.get(peer_id)
        if last is not None and now_ms - last < REFRESH_MS:
            return
        self.peers[peer_id] = now_ms
        if len(self.peers) > MAX_KEPT:
            for pid, _ in sorted(self.peers.items(), key=lambda kv: kv[1])[: len(self.peers) - MAX_KEPT]:
                del self.peers[pid]
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "peers": self.peers}, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not keep the known neighbours in %s: %s", self.path, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
