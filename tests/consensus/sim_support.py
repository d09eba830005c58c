"""Deterministic randomness and stand-in signatures for `consensus.testing`.

The import rule (no `random`, no `time`) holds for the whole package, tests included, so
the simulation draws from its own SplitMix64 generator: the same seed gives the same run on
every machine and Python version. Signatures are keyed SHA-256 tags: as unforgeable inside
the simulation as Ed25519 (a Byzantine node is only ever handed its own signer) and two
orders of magnitude cheaper, which is what lets the suite decide thousands of heights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from almoner.consensus.messages import Proposal, Vote

_MASK = (1 << 64) - 1
T = TypeVar("T")


class SplitMix64:
    """Steele, Lea and Flood's SplitMix64: tiny, fast, and good enough for scheduling."""

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def chance(self, p: float) -> bool:
        return (self.next() >> 11) < p * (1 << 53)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def hash32(self) -> bytes:
        return b"".join(self.next().to_bytes(8, "big") for _ in range(4))

    def fork(self) -> SplitMix64:
        return SplitMix64(self.next())


def validator_key(i: int, salt: bytes = b"") -> bytes:
    return hashlib.sha256(b"sim-validator/" + salt + i.to_bytes(4, "big")).digest()


def _secret(public_key: bytes) -> bytes:
    return hashlib.sha256(b"sim-secret/" + public_key).digest()


def _sign_bytes(tag: bytes, data: dict[str, Any]) -> bytes:
    body = sorted((k, v) for k, v in data.items() if k != "sig")
    return tag + b"\x00" + repr(body).encode()


def _tag(public_key: bytes, message: bytes) -> bytes:
    digest = hashlib.sha256(_secret(public_key) + message).digest()
    return digest + digest


class SimSigner:
    def __init__(self, public_key: bytes) -> None:
        self._public_key = public_key

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign_vote(self, vote: Vote) -> Vote:
        return vote.with_sig(_tag(self._public_key, _sign_bytes(b"vote", vote.to_map())))

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        return proposal.with_sig(
            _tag(self._public_key, _sign_bytes(b"proposal", proposal.to_map()))
        )


class SimVerifier:
    def __init__(self) -> None:
        self.calls = 0

    def verify_vote(self, vote: Vote) -> bool:
        self.calls += 1
        if not isinstance(vote.validator, bytes):
            return False
        return vote.sig == _tag(vote.validator, _sign_bytes(b"vote", vote.to_map()))

    def verify_proposal(self, proposal: Proposal) -> bool:
        self.calls += 1
        if not isinstance(proposal.proposer, bytes):
            return False
        expected = _tag(proposal.proposer, _sign_bytes(b"proposal", proposal.to_map()))
        return proposal.sig == expected
