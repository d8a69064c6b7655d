"""Secret keys sealed with a passphrase (pure: bytes in, bytes out).

A sealed key is canonical msgpack::

    {"v": 1, "kdf": "argon2id", "ops": int, "mem": int, "salt": bin16,
     "nonce": bin24, "box": bin, "pub": bin32, "name": str}

``box`` is XSalsa20-Poly1305 (libsodium secretbox) over the 32-byte Ed25519
seed, keyed by Argon2id(passphrase, salt). The parameters are libsodium's
"interactive" ones: unlocking takes ~0.1 s, so `imier vote` stays quick,
while a stolen file still costs an attacker 64 MiB and real time per guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from . import canonical
from .errors import LocalError, Rejected

__all__ = ["SealedKey", "seal", "unseal", "read_sealed", "new_signing_key"]

OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


@dataclass(frozen=True, kw_only=True)
class SealedKey:
    name: str
    public: bytes
    blob: bytes  # the canonical sealed form, as stored on disk


def new_signing_key() -> SigningKey:
    return SigningKey.generate()


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem
    )


def seal(key: SigningKey, name: str, passphrase: str) -> SealedKey:
    if not passphrase:
        raise LocalError("an empty passphrase would leave the key unprotected",
                         hint="set IMIER_PASSPHRASE or type one at the prompt")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, OPS, MEM))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    ct = box.encrypt(bytes(key), nonce).ciphertext
    public = bytes(key.verify_key)
    blob = canonical.pack({
        "v": 1, "kdf": "argon2id", "ops": OPS, "mem": MEM, "salt": salt,
        "nonce": nonce, "box": ct, "pub": public, "name": name,
    })
    return SealedKey(name=name, public=public, blob=blob)


def read_sealed(blob: bytes) -> SealedKey:
    d = _parse(blob)
    return SealedKey(name=d["name"], public=d["pub"], blob=blob)


def _parse(blob: bytes) -> dict[str, Any]:
    try:
        d = canonical.unpack(blob, max_size=4096)
    except Rejected as exc:
        raise LocalError(f"key file is damaged: {exc}") from None
    want = {"v", "kdf", "ops", "mem", "salt", "nonce", "box", "pub", "name"}
    if not isinstance(d, dict) or set(d) != want or d["v"] != 1 or d["kdf"] != "argon2id":
        raise LocalError("key file is damaged or of an unknown version")
    return d


def unseal(blob: bytes, passphrase: str) -> SigningKey:
    """The signing key, or :class:`LocalError` on a wrong passphrase (one clear message)."""
    d = _parse(blob)
    box = nacl.secret.SecretBox(_derive(passphrase, d["salt"], d["ops"], d["mem"]))
    try:
        seed = box.decrypt(d["box"], d["nonce"])
    except CryptoError:
        raise LocalError(
            f"wrong passphrase for key {d['name']!r}",
            hint="check IMIER_PASSPHRASE or retype it",
        ) from None
    key = SigningKey(seed)
    if bytes(key.verify_key) != d["pub"]:
        raise LocalError(f"key file for {d['name']!r} is damaged (public key mismatch)")
    return key
