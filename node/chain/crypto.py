"""Ed25519 through libsodium (PyNaCl), in the few shapes the protocol needs.

The hot path of a node is verifying signatures, so `verify` calls libsodium directly and
answers a bool instead of raising; callers turn False into their own error code.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.signing

PUBKEY_LEN = 32
SIG_LEN = 64
SEED_LEN = 32


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair held in memory; `seed` is the secret."""

    seed: bytes
    public_key: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        key = nacl.signing.SigningKey.generate()
        return cls(seed=bytes(key), public_key=bytes(key.verify_key))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != SEED_LEN:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = nacl.signing.SigningKey(seed)
        return cls(seed=seed, public_key=bytes(key.verify_key))

    def sign(self, message: bytes) -> bytes:
        return sign(self._secret, message)

    @property
    def _secret(self) -> bytes:
        # libsodium's 64-byte secret key is seed || public key.
        return self.seed + self.public_key

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key.hex()})"


def sign(secret_key64: bytes, message: bytes) -> bytes:
    signed: bytes = nacl.bindings.crypto_sign(message, secret_key64)
    return signed[:SIG_LEN]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != PUBKEY_LEN or len(signature) != SIG_LEN:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True
