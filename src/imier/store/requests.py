"""Join requests: who asked, from the member page, to be admitted to a body.

A local table in its own file, ``HOME/requests.sqlite3``: it is not part of
the signed record, is never replicated, and leaves ``store.sqlite3``
untouched (a request is a hint to the members of this node, nothing more).
Admission itself is still an ``admit`` event signed by a member.

The *code* of a request is derived from the key alone (:func:`join_code`),
so the phone that made the key shows the same six digits the admitter sees:
comparing them is how the admitter knows which request is the person's in
front of them. Nobody types hex.

Bounds: at most :data:`MAX_PER_BODY` open requests per body (a new one
pushes out the oldest) and each expires after :data:`TTL_MS`. A request for
the same key and body replaces the earlier one (a new name).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..protocol.errors import LocalError, Rejected

__all__ = [
    "JoinRequest", "Requests", "join_code", "resolve_member", "MAX_PER_BODY", "TTL_MS",
    "MAX_NAME_CHARS", "CODE_RE",
]

MAX_PER_BODY = 64
TTL_MS = 24 * 60 * 60 * 1000  # a day: a meeting and the evening after it
MAX_NAME_CHARS = 64  # as a profile name (docs/rules.md s.11.4)
CODE_RE = re.compile(r"^\d{3}-?\d{3}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    body  BLOB NOT NULL,
    key   BLOB NOT NULL,
    name  TEXT NOT NULL,
    code  TEXT NOT NULL,
    added INTEGER NOT NULL,
    PRIMARY KEY (body, key)
) WITHOUT ROWID
"""


def join_code(key: bytes) -> str:
    """Six digits from the key: the first four bytes of ``sha256(key)``, big-endian,
    modulo one million, as ``"123-456"`` (the member page computes the same)."""
    if len(key) != 32:
        raise Rejected("bad_field", "a key is 32 bytes (64 hex digits)", field="key")
    n = int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % 1_000_000
    s = f"{n:06d}"
    return f"{s[:3]}-{s[3:]}"


def _clean_name(name: object) -> str:
    if not isinstance(name, str):
        raise Rejected("bad_field", "a name is text", field="name")
    name = name.strip()
    if not name:
        raise Rejected("bad_field", "a name is needed", field="name")
    if len(name) > MAX_NAME_CHARS:
        raise Rejected("bad_field", f"at most {MAX_NAME_CHARS} characters", field="name")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise Rejected("bad_field", "control characters are not allowed", field="name")
    return name


@dataclass(frozen=True)
class JoinRequest:
    body: bytes
    key: bytes
    name: str
    code: str
    added: int

    def to_json(self) -> dict[str, object]:
        return {"body": self.body.hex(), "key": self.key.hex(), "name": self.name,
                "code": self.code, "added": self.added}


class Requests:
    """The join requests of one node (``HOME/requests.sqlite3``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(_SCHEMA)

    @classmethod
    def open(cls, path: str | Path, *, check_same_thread: bool = True) -> "Requests":
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0,
                               check_same_thread=check_same_thread)
        conn.execute("PRAGMA journal_mode=WAL")
        return cls(conn)

    @classmethod
    def for_home(cls, home_path: Path, *, check_same_thread: bool = True) -> "Requests":
        return cls.open(Path(home_path) / "requests.sqlite3", check_same_thread=check_same_thread)

    def close(self) -> None:
        self.conn.close()

    def add(self, body: bytes, key: bytes, name: object, *, now_ms: int) -> JoinRequest:
        """Record (or renew) a request; the oldest goes when the body has too many."""
        code = join_code(key)
        clean = _clean_name(name)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM requests WHERE added <= ?", (now_ms - TTL_MS,))
            c.execute("INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)",
                      (body, key, clean, code, now_ms))
            extra = c.execute("SELECT count(*) FROM requests WHERE body = ?", (body,)).fetchone()[0]
            extra -= MAX_PER_BODY
            if extra > 0:
                c.execute(
                    "DELETE FROM requests WHERE body = ? AND key IN (SELECT key FROM requests "
                    "WHERE body = ? ORDER BY added, key LIMIT ?)", (body, body, extra))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return JoinRequest(body, key, clean, code, now_ms)

    def current(self, body: bytes | None = None, *, now_ms: int) -> list[JoinRequest]:
        """Open (unexpired) requests, oldest first; of one body or of all."""
        q = "SELECT body, key, name, code, added FROM requests WHERE added > ?"
        args: tuple[object, ...] = (now_ms - TTL_MS,)
        if body is not None:
            q += " AND body = ?"
            args += (body,)
        rows = self.conn.execute(q + " ORDER BY added, key", args).fetchall()
        return [JoinRequest(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def remove(self, body: bytes, key: bytes) -> None:
        self.conn.execute("DELETE FROM requests WHERE body = ? AND key = ?", (body, key))

    def by_code(self, body: bytes, code: str, *, now_ms: int) -> list[JoinRequest]:
        digits = code.strip().replace("-", "").replace(" ", "")
        want = f"{digits[:3]}-{digits[3:]}"
        return [r for r in self.current(body, now_ms=now_ms) if r.code == want]


def resolve_member(home_path: Path, body: bytes, text: str, *, now_ms: int) -> bytes | None:
    """What ``imier member admit BODY CODE`` admits: the key of the one open join
    request of ``body`` whose code is ``text`` (``123-456`` or ``123456``).

    ``None`` when ``text`` is not a code (the caller then reads it as a key or a
    name). Raises :class:`LocalError` when no request, or several, have that code.
    """
    if not CODE_RE.match(text.strip()):
        return None
    path = Path(home_path) / "requests.sqlite3"
    if not path.exists():
        raise LocalError(f"no join request with code {text.strip()}",
                         hint="'imier member requests' lists them; ask the person to request again")
    reqs = Requests.open(path)
    try:
        found = reqs.by_code(body, text, now_ms=now_ms)
    finally:
        reqs.close()
    if not found:
        raise LocalError(f"no open join request with code {text.strip()} for this body",
                         hint="'imier member requests BODY' lists them; requests expire after a day")
    if len(found) > 1:
        raise LocalError(
            f"{len(found)} join requests share the code {text.strip()} "
            f"({', '.join(r.name for r in found)})",
            hint="admit by public key instead: 'imier member requests BODY --json' shows the keys")
    return found[0].key
