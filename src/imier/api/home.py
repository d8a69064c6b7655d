"""A node's home: making it (all or nothing), people's keys, and the clerk over it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from ..protocol.errors import LocalError, Rejected
from ..protocol.keys import SealedKey
from ..protocol.peerid import peer_id
from ..store.home import Home
from .clerk import Clerk, Signer

__all__ = ["init", "new_key", "people", "open_clerk", "Made"]


class Made:
    """What :func:`init` made: the home's path, the node's name and peer id."""

    def __init__(self, path: Path, name: str, peer: str) -> None:
        self.path, self.name, self.peer_id = path, name, peer


def init(home: Home, name: str, passphrase: str) -> Made:
    """Make the home, or nothing: a failure (or Ctrl-C) removes what it had made."""
    if home.exists() or home.node_key_path.exists():
        raise LocalError(f"{home.path} already holds an Imier node; refusing to overwrite it",
                         hint="use another --home for a second node")
    if not passphrase:
        raise Rejected("empty", "a passphrase must not be empty", field="passphrase",
                       hint="it seals the node's and people's keys; nothing was written")
    existed = home.path.exists()
    before = set(os.listdir(home.path)) if existed and home.path.is_dir() else set()
    try:
        key = home.create(name, passphrase)
    except BaseException:
        home.close()
        if not existed:
            shutil.rmtree(home.path, ignore_errors=True)
        elif home.path.is_dir():
            for entry in set(os.listdir(home.path)) - before:
                p = home.path / entry
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        raise
    return Made(home.path, name, peer_id(bytes(key.verify_key)))


def new_key(home: Home, name: str, passphrase: str) -> SealedKey:
    """A person's key, sealed with the passphrase; the public key is what others admit."""
    if not passphrase:
        raise Rejected("empty", "a passphrase must not be empty", field="passphrase")
    return home.require().new_person(name, passphrase)


def people(home: Home) -> list[SealedKey]:
    return home.require().people()


def open_clerk(home: Home, *, clock: Callable[[], int], as_name: str | None,
               passphrase: Callable[[], str]) -> Clerk:
    """The clerk over a home's store; ``as_name`` (or the only person) signs, unlocked on demand."""
    h = home.require()
    sealed = h.people()

    def signer() -> Signer:
        person = h.person(as_name)
        return Signer(person.public, lambda: h.unlock(person, passphrase()))

    return Clerk(h.store(), clock=clock, signer=signer if sealed else None,
                 people={p.name: p.public for p in sealed})
