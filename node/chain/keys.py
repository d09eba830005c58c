"""Key files (docs/spec/02): JSON, mode 0600, optionally sealed with a passphrase.

A validator's or a party's seed is the one secret that lets someone speak for an
organisation, so loading refuses files that other users can read, and a wrong passphrase
is reported as such rather than as a generic decryption failure.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from almoner.node.chain.crypto import SEED_LEN, KeyPair
from almoner.node.errors import AlmonerError


class KeyFileError(AlmonerError):
    """A key file is missing, unreadable, too open, malformed, or the passphrase is wrong."""


_KDF = nacl.pwhash.argon2id


def _seal(
    seed: bytes, passphrase: str, salt: bytes | None = None, nonce: bytes | None = None
) -> dict[str, Any]:
    """Fixed `salt`/`nonce` are only for reproducible conformance vectors."""
    salt = nacl.utils.random(_KDF.SALTBYTES) if salt is None else salt
    opslimit, memlimit = _KDF.OPSLIMIT_INTERACTIVE, _KDF.MEMLIMIT_INTERACTIVE
    key = _KDF.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE) if nonce is None else nonce
    ciphertext = nacl.secret.SecretBox(key).encrypt(seed, nonce).ciphertext
    return {
        "kdf": "argon2id",
        "salt": salt.hex(),
        "opslimit": opslimit,
        "memlimit": memlimit,
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }


def key_file_document(
    key: KeyPair,
    passphrase: str | None = None,
    *,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "ed25519", "public_key": key.public_key.hex()}
    if passphrase is None:
        doc["secret_key"] = key.seed.hex()
    else:
        doc.update(_seal(key.seed, passphrase, salt, nonce))
    return doc


def write_key_file(
    path: str | Path, key: KeyPair, passphrase: str | None = None, *, overwrite: bool = False
) -> None:
    """Create the file with mode 0600 from the start, so the secret is never exposed."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{target} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {target}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(key_file_document(key, passphrase), handle, indent=2)
        handle.write("\n")


def _hex_field(doc: dict[str, Any], name: str, length: int | None, path: Path) -> bytes:
    value = doc.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (length is not None and len(raw) != length):
        raise KeyFileError(f"key file {path}: field {name!r} is missing or not valid hex")
    return raw


def load_key_file(path: str | Path, passphrase: str | None = None) -> KeyPair:
    source = Path(path)
    try:
        mode = source.stat().st_mode
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {source} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {source}: {exc.strerror}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(
            f"key file {source} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {source}"
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {source} is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("type") != "ed25519":
        raise KeyFileError(f"key file {source} is not an ed25519 key file")
    public = _hex_field(doc, "public_key", 32, source)
    if "secret_key" in doc:
        seed = _hex_field(doc, "secret_key", SEED_LEN, source)
    elif doc.get("kdf") == "argon2id":
        if passphrase is None:
            raise KeyFileError(f"key file {source} is encrypted; a passphrase is required")
        seed = _unseal(doc, passphrase, source)
    else:
        raise KeyFileError(f"key file {source} has neither a secret_key nor an argon2id seal")
    key = KeyPair.from_seed(seed)
    if key.public_key != public:
        raise KeyFileError(f"key file {source}: public_key does not match the secret key")
    return key


def _unseal(doc: dict[str, Any], passphrase: str, path: Path) -> bytes:
    salt = _hex_field(doc, "salt", _KDF.SALTBYTES, path)
    nonce = _hex_field(doc, "nonce", nacl.secret.SecretBox.NONCE_SIZE, path)
    ciphertext = _hex_field(doc, "ciphertext", None, path)
    opslimit, memlimit = doc.get("opslimit"), doc.get("memlimit")
    if not isinstance(opslimit, int) or not isinstance(memlimit, int):
        raise KeyFileError(f"key file {path}: opslimit and memlimit must be integers")
    try:
        key = _KDF.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        seed: bytes = nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError(f"wrong passphrase for key file {path}") from exc
    except (nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise KeyFileError(f"key file {path}: invalid encryption parameters: {exc}") from exc
    if len(seed) != SEED_LEN:
        raise KeyFileError(f"key file {path}: the sealed seed is not 32 bytes")
    return seed


def load_public_key(path: str | Path) -> bytes:
    """The public key alone, without needing the passphrase."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise KeyFileError(f"key file {path} is not a JSON object")
    return _hex_field(doc, "public_key", 32, Path(path))
