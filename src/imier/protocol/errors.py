"""The two error families of Imier.

* :class:`RemoteError` -- bad data that came from outside (a peer, a bundle,
  a file, a person's argument). It carries a short machine ``code`` and the
  ``field`` it is about, so the CLI can print one clear line and the daemon
  can count it against a peer.
* :class:`LocalError` -- something this node did wrong or cannot do (our
  bug, a missing home, a wrong passphrase). Also one clear line, never a
  traceback.

Both derive from :class:`ImierError`, the only exception family that the
project's boundaries let escape.
"""

from __future__ import annotations

__all__ = ["ImierError", "RemoteError", "LocalError", "Rejected"]


class ImierError(Exception):
    """Base of every error Imier raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class RemoteError(ImierError):
    """Data from outside was refused. ``code`` is a stable reason code."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, hint: str | None = None
    ) -> None:
        if field:
            message = f"{field}: {message}"
        super().__init__(message, hint=hint)
        self.code = code
        self.field = field


class Rejected(RemoteError):
    """An event was refused by validation (shape, canonical form, signature, causality)."""


class LocalError(ImierError):
    """This node cannot do what was asked (missing home, wrong passphrase, unknown id...)."""
