"""A node's home directory: store, keys, config.

Layout (docs/operations.md)::

    HOME/config.toml        node settings (listen, bootstrap peers, max_skew, mdns)
    HOME/node.key           the node's libp2p identity, sealed with the passphrase
    HOME/keys/NAME.key      people's keys, sealed with the passphrase
    HOME/store.sqlite3      the event store (WAL)
    HOME/daemon.sock        control socket while the daemon runs
    HOME/daemon.json        pid and addresses while the daemon runs

The home and the keys directory are 0700, key files 0600; :meth:`Home.check_permissions`
refuses to go on when the home, the keys directory or the node's key is readable by
others, and :meth:`Home.person` when the key about to sign is (another person's readable
key blocks nobody else: :meth:`Home.key_warnings` lists it for `imier key list`).
"""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from ..protocol.charter import parse_duration_ms
from ..protocol.errors import ImierError, LocalError, Rejected
from ..protocol.keys import SealedKey, new_signing_key, read_sealed, seal, unseal
from .db import DEFAULT_MAX_SKEW_MS, Store, damaged, translate
from .intake import IntakeLimits

__all__ = ["Home", "Config", "default_home", "NAME_RE"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2,
          "GB": 1000**3, "GiB": 1024**3}
_LIMIT_KEYS = ("pending_max_bytes", "pending_peer_bytes", "deferred_max_bytes", "deferred_peer_bytes")


def parse_size(v: Any, *, field: str) -> int:
    """A size in bytes: an integer, or text like ``"64MiB"`` or ``"500 KB"``."""
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    if isinstance(v, str):
        m = _SIZE_RE.match(v)
        if m and int(m.group(1)) > 0:
            return int(m.group(1)) * _UNITS[m.group(2)]
    raise LocalError(f"{field} must be a positive size in bytes, like 67108864 or \"64MiB\"")


def default_home() -> Path:
    env = os.environ.get("IMIER_HOME")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("imier", appauthor=False))


@dataclass
class Config:
    name: str = "imier-node"
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = True
    gossip: bool = True
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS
    sync_interval_ms: int = 30_000
    log_level: str = "info"
    # docs/rules.md s.9.3: what is held before it is accepted, per peer and in total.
    pending_max_bytes: int = IntakeLimits.pending_max_bytes
    pending_peer_bytes: int = IntakeLimits.pending_peer_bytes
    deferred_max_bytes: int = IntakeLimits.deferred_max_bytes
    deferred_peer_bytes: int = IntakeLimits.deferred_peer_bytes
    # docs/rules.md s.10.5: a teller's key on this node seals each closed window by
    # itself, seal_delay after the close (so that votes in flight arrive first).
    auto_seal: bool = True
    seal_delay_ms: int = 120_000

    def intake_limits(self) -> IntakeLimits:
        return IntakeLimits(self.pending_max_bytes, self.pending_peer_bytes,
                            self.deferred_max_bytes, self.deferred_peer_bytes)

    @classmethod
    def load(cls, path: Path) -> "Config":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except IsADirectoryError:
            raise LocalError(f"{path} is a directory, not a settings file", hint="move it away") from None
        except OSError as exc:
            raise LocalError(f"cannot read {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise LocalError(f"{path}: not valid TOML ({exc})", hint="fix or remove the file") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> "Config":
        cfg = cls()
        node = data.get("node", {})
        net = data.get("network", {})
        unknown = set(data) - {"node", "network"}
        if unknown:
            raise LocalError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")

        def need(section: dict[str, Any], key: str, typ: type, sec: str) -> Any:
            v = section[key]
            if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
                raise LocalError(f"{where}: {sec}.{key} must be {typ.__name__}")
            return v

        for key in node:
            if key == "name":
                cfg.name = need(node, key, str, "node")
            elif key == "max_skew":
                try:
                    cfg.max_skew_ms = parse_duration_ms(node[key], field="node.max_skew")
                except Rejected as exc:
                    raise LocalError(f"{where}: {exc}") from None
            elif key == "log_level":
                cfg.log_level = need(node, key, str, "node")
            elif key == "auto_seal":
                cfg.auto_seal = need(node, key, bool, "node")
            elif key == "seal_delay":
                try:
                    cfg.seal_delay_ms = parse_duration_ms(node[key], field="node.seal_delay")
                except Rejected as exc:
                    raise LocalError(f"{where}: {exc}") from None
            elif key in _LIMIT_KEYS:
                setattr(cfg, key, parse_size(node[key], field=f"{where}: node.{key}"))
            else:
                raise LocalError(f"{where}: unknown key node.{key}")
        for key in net:
            if key in ("listen", "bootstrap"):
                v = need(net, key, list, "network")
                if not all(isinstance(x, str) and x.startswith("/") for x in v):
                    raise LocalError(f"{where}: network.{key} must be a list of multiaddrs")
                setattr(cfg, key, v)
            elif key in ("mdns", "gossip"):
                setattr(cfg, key, need(net, key, bool, "network"))
            elif key == "sync_interval":
                try:
                    cfg.sync_interval_ms = parse_duration_ms(net[key], field="network.sync_interval")
                except Rejected as exc:
                    raise LocalError(f"{where}: {exc}") from None
            else:
                raise LocalError(f"{where}: unknown key network.{key}")
        return cfg

    def to_toml(self) -> str:
        def lst(v: list[str]) -> str:
            return "[" + ", ".join(f'"{x}"' for x in v) + "]"

        return (
            "# Imier node settings: see docs/operations.md\n"
            "[node]\n"
            f'name = "{self.name}"\n'
            f'max_skew = "{self.max_skew_ms // 1000}s"\n'
            f'log_level = "{self.log_level}"\n'
            + "".join(f"{k} = {getattr(self, k)}\n" for k in _LIMIT_KEYS
                      if getattr(self, k) != getattr(Config, k))
            + "\n"
            "[network]\n"
            f"listen = {lst(self.listen)}\n"
            f"bootstrap = {lst(self.bootstrap)}\n"
            f"mdns = {'true' if self.mdns else 'false'}\n"
            f"gossip = {'true' if self.gossip else 'false'}\n"
            f'sync_interval = "{self.sync_interval_ms // 1000}s"\n'
        )


class Home:
    """Paths and secrets of one node. Opening never creates anything; :meth:`create` does."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.node_key_path = self.path / "node.key"
        self.keys_dir = self.path / "keys"
        self.store_path = self.path / "store.sqlite3"
        self.socket_path = self.path / "daemon.sock"
        self.daemon_info_path = self.path / "daemon.json"
        self._store: Store | None = None

    # -- life cycle --------------------------------------------------------------

    def exists(self) -> bool:
        return self.node_key_path.is_file() and self.store_path.is_file()

    def _check_place(self) -> None:
        """The home must be a directory (or not exist yet below directories)."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise LocalError(f"the home {p} is a file, not a directory",
                             hint="IMIER_HOME or --home must name a directory (a new one for 'imier init')")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise LocalError(f"the home {p} is below {parent}, which is a file",
                                     hint="IMIER_HOME or --home must name a directory")
                break
        if self.store_path.exists() and not self.store_path.is_file():
            raise LocalError(f"{self.store_path} is not a file", hint="move it away; it should be the store")
        if self.node_key_path.exists() and not self.node_key_path.is_file():
            raise LocalError(f"{self.node_key_path} is not a file", hint="move it away; it should be the node's key")

    def require(self) -> "Home":
        self._check_place()
        if not self.exists():
            raise LocalError(
                f"no Imier node at {self.path}", hint="run 'imier init' or pass --home DIR"
            )
        self.check_permissions()
        return self

    def create(self, name: str, passphrase: str) -> SigningKey:
        self._check_place()
        if self.exists() or self.node_key_path.exists():
            raise LocalError(f"{self.path} already holds an Imier node; refusing to overwrite it")
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.path, 0o700)
            self.keys_dir.mkdir(exist_ok=True, mode=0o700)
            os.chmod(self.keys_dir, 0o700)
        except OSError as exc:
            raise LocalError(f"cannot create the home {self.path}: {exc.strerror}") from None
        key = new_signing_key()
        sealed = seal(key, "node", passphrase)
        cfg = Config(name=name)
        _write_private(self.config_path, cfg.to_toml().encode())
        Store.open(self.store_path).close()
        os.chmod(self.store_path, 0o600)
        _write_private(self.node_key_path, sealed.blob)  # last: its presence marks a whole home
        return key

    def check_permissions(self) -> None:
        for p in (self.path, self.keys_dir):
            if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                raise LocalError(
                    f"{p} is readable by other users", hint=f"run 'chmod 700 {p}'"
                )
        # The node's key, not the people's: a person's readable key blocks only that
        # person, when it signs (:meth:`person`), or the daemon, which uses them all
        # (:meth:`check_key_permissions`).
        _check_key_mode(self.node_key_path)

    def check_key_permissions(self) -> None:
        """Refuse if any person's key file is readable by others (for the daemon, which
        opens every key to seal with)."""
        for p in self._key_files():
            _check_key_mode(p)

    def key_warnings(self) -> list[tuple[Path, str]]:
        """``(file, warning)`` for every person's key file readable by other users."""
        out: list[tuple[Path, str]] = []
        for p in self._key_files():
            try:
                _check_key_mode(p)
            except LocalError as exc:
                out.append((p, str(exc)))
        return out

    def config(self) -> Config:
        return Config.load(self.config_path)

    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.store_path)
        return self._store

    def store_damage(self) -> str | None:
        """What ``PRAGMA quick_check`` finds wrong with the store this home opened, in one
        line; None if it is sound or was not opened."""
        if self._store is None:
            return None
        return _quick_check(self._store.conn)

    def explain(self, exc: BaseException) -> ImierError | None:
        """The error to tell a person for ``exc``, an unexpected error of a command that
        used this home: an SQLite error the world causes (a full disk, a busy or unreadable
        store: :func:`translate`), or, whatever ``exc`` is, the damaged-store error when
        the store this home opened fails ``quick_check`` (a damaged page can read as
        NULLs where bytes are stored: a TypeError far from SQLite). None: a bug, which
        keeps its traceback."""
        detail = None
        if isinstance(exc, sqlite3.DatabaseError):
            err = translate(exc, self.store_path)
            if err is not None:
                return err
            detail = str(exc)
        problem = self.store_damage()
        if problem is None:
            return None
        return damaged(self.store_path, detail or problem)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- keys ----------------------------------------------------------------------

    def _key_files(self) -> list[Path]:
        if not self.keys_dir.is_dir():
            return []
        return sorted(self.keys_dir.glob("*.key"))

    def _read_key(self, path: Path) -> SealedKey:
        """One key file, or a LocalError naming it."""
        if not path.is_file():
            raise LocalError(f"{path} is not a key file (it is a directory or special file)",
                             hint="move it out of the keys directory")
        try:
            return read_sealed(path.read_bytes())
        except LocalError as exc:
            raise LocalError(f"key file {path}: {exc.message}",
                             hint="restore it from a backup, or move it away; other people's keys still work") from None
        except OSError as exc:
            raise LocalError(f"cannot read key file {path}: {exc.strerror}") from None

    def _people_files(self) -> list[tuple[Path, SealedKey]]:
        out: list[tuple[Path, SealedKey]] = []
        for p in self._key_files():
            try:
                out.append((p, self._read_key(p)))
            except LocalError:
                continue
        return out

    def people(self) -> list[SealedKey]:
        """Every readable person's key; a damaged or odd file blocks only its own person
        (:meth:`key_problems` lists them, :meth:`person` names the file)."""
        return [k for _, k in self._people_files()]

    def key_problems(self) -> list[tuple[Path, str]]:
        """``(file, what is wrong)`` for every key file that cannot be read."""
        out: list[tuple[Path, str]] = []
        for p in self._key_files():
            try:
                self._read_key(p)
            except LocalError as exc:
                out.append((p, str(exc)))
        return out

    def new_person(self, name: str, passphrase: str) -> SealedKey:
        if not NAME_RE.match(name):
            raise LocalError(
                f"{name!r} is not a usable name",
                hint="letters, digits, '.', '_' and '-', starting with a letter or digit",
            )
        path = self.keys_dir / f"{name}.key"
        self._refuse_taken(name, path)
        key = new_signing_key()
        sealed = seal(key, name, passphrase)
        try:
            _write_private(path, sealed.blob, exclusive=True)
        except FileExistsError:  # another 'imier key new' made it meanwhile: theirs stays
            self._refuse_taken(name, path)
            raise LocalError(f"a person named {name!r} already has a key on this node ({path})") from None
        self.write_vouch(name, key)
        return sealed

    # -- vouches: a person's signature over this node's public key (syncwire.vouch_message) --

    def _vouch_path(self, name: str) -> Path:
        return self.keys_dir / f"{name}.vouch"

    def write_vouch(self, name: str, key: SigningKey) -> None:
        """``keys/NAME.vouch``: ``name``'s signature saying this node is theirs, shown in
        the sync hello so that peers holding one of their bodies serve this node as a
        neighbour from its first session (nodeapp/inbound.py). Made when the key is
        made, or the first time it is unlocked; a failure to write it is not an error
        (the node is then served as a stranger until it proves itself)."""
        from ..protocol.syncwire import vouch_message

        try:
            sig = key.sign(vouch_message(self.node_public())).signature
            _write_private(self._vouch_path(name), sig)
        except (OSError, LocalError):
            pass

    def vouches(self) -> list[tuple[bytes, bytes]]:
        """``(person public key, signature)`` for every person whose vouch is on file and
        holds for this node's key (one made for another node key is left out)."""
        from ..protocol.syncwire import vouch_valid

        try:
            node = self.node_public()
        except LocalError:
            return []
        out: list[tuple[bytes, bytes]] = []
        for p in self.people():
            try:
                sig = self._vouch_path(p.name).read_bytes()
            except OSError:
                continue
            if len(sig) == 64 and vouch_valid(p.public, sig, node):
                out.append((p.public, sig))
        return out

    def _refuse_taken(self, name: str, path: Path) -> None:
        if path.is_symlink():
            raise LocalError(f"{path} is a symbolic link, not a key file",
                             hint=f"move it out of the keys directory to make a key for {name!r}")
        if path.is_dir():
            raise LocalError(f"{path} is a directory, not a key file",
                             hint=f"move it out of the keys directory to make a key for {name!r}")
        if path.exists() and not path.is_file():
            raise LocalError(f"{path} is a special file, not a key file",
                             hint=f"move it out of the keys directory to make a key for {name!r}")
        if path.exists():
            raise LocalError(f"a person named {name!r} already has a key on this node ({path})",
                             hint="choose another name; 'imier key list' shows the names")

    def person(self, name: str | None) -> SealedKey:
        """The key that signs: ``name``'s, or the only person's. Its file must be private."""
        found = self._people_files()
        people = [k for _, k in found]
        if name is None:
            if len(people) == 1:
                _check_key_mode(found[0][0])
                return people[0]
            if not people:
                raise LocalError("this node holds no person's key", hint="run 'imier key new NAME'")
            raise LocalError(
                "this node holds several people: say who signs",
                hint="--as NAME or IMIER_AS; 'imier key list' shows the names",
            )
        for path, p in found:
            if p.name == name:
                _check_key_mode(path)
                return p
        path = self.keys_dir / f"{name}.key"
        if path.exists() or path.is_symlink():
            self._read_key(path)  # raises, naming the file
        raise LocalError(f"no person named {name!r} on this node", hint="'imier key list' shows the names")

    def unlock(self, sealed: SealedKey, passphrase: str) -> SigningKey:
        key = unseal(sealed.blob, passphrase)
        if sealed.public not in dict(self.vouches()):  # made before vouches, or for another node key
            self.write_vouch(sealed.name, key)
        return key

    def node_key(self, passphrase: str) -> SigningKey:
        return unseal(self._read_key(self.node_key_path).blob, passphrase)

    def node_public(self) -> bytes:
        return self._read_key(self.node_key_path).public


def _quick_check(conn: sqlite3.Connection) -> str | None:
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.Error as exc:
        return str(exc)
    if rows == ["ok"]:
        return None
    line = " ".join("; ".join(rows).split())
    return line if len(line) <= 200 else line[:197] + "..."


def _check_key_mode(p: Path) -> None:
    # (a directory among the keys is reported when someone uses it: see person)
    if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077:
        raise LocalError(f"key file {p} is readable by other users", hint=f"run 'chmod 600 {p}'")


def _write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` (0600) whole or not at all: a temporary file, fsync,
    rename; on failure (a full disk) the temporary file is removed and nothing is left.

    ``exclusive``: never replace an existing ``path``. The temporary file has a name of
    its own and is hard-linked into place (``link`` fails if ``path`` exists), so of two
    processes making the same file exactly one succeeds; the other gets
    :class:`FileExistsError` and ``path`` keeps the first one's bytes.
    """
    if exclusive:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    else:
        tmp = path.with_suffix(path.suffix + ".tmp")
    linking = False
    try:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        _write_file(tmp, flags, data)
        if exclusive:
            linking = True
            try:
                os.link(tmp, path)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                # No hard links here (some network or FAT file systems): O_EXCL is as exclusive.
                try:
                    _write_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, data)
                except FileExistsError:
                    raise
                except OSError:
                    path.unlink(missing_ok=True)
                    raise
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if linking and isinstance(exc, FileExistsError):
            raise
        hint = "free some space and try again" if exc.errno == errno.ENOSPC else None
        raise LocalError(f"cannot write {path}: {exc.strerror}; nothing was written", hint=hint) from None


def _write_file(path: Path, flags: int, data: bytes) -> None:
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
