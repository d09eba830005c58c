"""Key files: mode 0600, optional argon2id sealing, clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.chain.keys import KeyFileError, load_key_file, load_public_key, write_key_file


def test_plain_key_round_trip_and_mode(tmp_path: Path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "k.key"
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc == {
        "type": "ed25519",
        "public_key": key.public_key.hex(),
        "secret_key": key.seed.hex(),
    }
    loaded = load_key_file(path)
    assert loaded == key
    assert verify(key.public_key, b"m", loaded.sign(b"m"))
    assert load_public_key(path) == key.public_key


def test_encrypted_key_needs_the_right_passphrase(tmp_path: Path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "k.key"
    write_key_file(path, key, "correct horse")
    doc = json.loads(path.read_text())
    assert set(doc) == {
        "type",
        "public_key",
        "kdf",
        "salt",
        "opslimit",
        "memlimit",
        "nonce",
        "ciphertext",
    }
    assert key.seed.hex() not in path.read_text()
    assert load_key_file(path, "correct horse") == key
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_key_file(path, "battery staple")
    with pytest.raises(KeyFileError, match="passphrase is required"):
        load_key_file(path)
    assert load_public_key(path) == key.public_key


def test_world_readable_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_key_file(path, KeyPair.generate())
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key_file(path)


def test_no_overwrite_without_asking(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = KeyPair.generate()
    write_key_file(path, first)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, KeyPair.generate())
    assert load_key_file(path) == first
    second = KeyPair.generate()
    write_key_file(path, second, overwrite=True)
    assert load_key_file(path) == second


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "rsa"}', "not an ed25519"),
        ('{"type": "ed25519", "public_key": "zz"}', "public_key"),
    ],
)
def test_broken_key_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "k.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path)


def test_mismatched_public_key(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    a, b = KeyPair.generate(), KeyPair.generate()
    path.write_text(
        json.dumps(
            {"type": "ed25519", "public_key": a.public_key.hex(), "secret_key": b.seed.hex()}
        )
    )
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="does not match"):
        load_key_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key_file(tmp_path / "nope.key")
