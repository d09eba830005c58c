"""Commit certificates (docs/spec/05-chain.md): a quorum of precommits, kept as (validator, sig).

`verify_certificate` is a standalone pure function so that `verify`, `trace` and the
regulator tools check certificates with exactly the rule the machine produced them by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from almoner.consensus.crypto import Verifier
from almoner.consensus.messages import (
    HASH_LEN,
    KEY_LEN,
    MAX_INT,
    PRECOMMIT,
    SIG_LEN,
    Vote,
    quorum,
)

CERT_KEYS = frozenset({"height", "round", "block_hash", "votes"})
COMMIT_SIG_KEYS = frozenset({"validator", "sig"})


class CertificateError(ValueError):
    """A certificate that does not prove a commit; `reason` is a stable short code."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CommitSig:
    validator: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class Certificate:
    height: int
    round: int
    block_hash: bytes
    votes: tuple[CommitSig, ...]

    def to_map(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "votes": [{"validator": v.validator, "sig": v.sig} for v in self.votes],
        }

    @classmethod
    def from_map(cls, data: Mapping[str, Any]) -> Certificate:
        """Shape check only; `verify_certificate` decides whether it proves anything."""
        if not isinstance(data, Mapping) or set(data) != CERT_KEYS:
            raise CertificateError("malformed", "certificate keys differ from the protocol's")
        votes = data["votes"]
        if not isinstance(votes, list | tuple):
            raise CertificateError("malformed", "votes is not an array")
        entries = []
        for entry in votes:
            if not isinstance(entry, Mapping) or set(entry) != COMMIT_SIG_KEYS:
                raise CertificateError("malformed", "a vote entry is not {validator, sig}")
            entries.append(CommitSig(validator=entry["validator"], sig=entry["sig"]))
        cert = cls(
            height=data["height"],
            round=data["round"],
            block_hash=data["block_hash"],
            votes=tuple(entries),
        )
        _check_shape(cert)
        return cert

    def precommits(self, chain: str) -> list[Vote]:
        """The signed precommit votes this certificate stands for (e.g. to re-gossip them)."""
        return [
            Vote(PRECOMMIT, chain, self.height, self.round, self.block_hash, v.validator, v.sig)
            for v in self.votes
        ]


def _is_int(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT


def _check_shape(cert: Certificate) -> None:
    if not _is_int(cert.height, 1) or not _is_int(cert.round, 0):
        raise CertificateError("malformed", "height or round out of range")
    if not isinstance(cert.block_hash, bytes) or len(cert.block_hash) != HASH_LEN:
        raise CertificateError("malformed", "block_hash is not 32 bytes")
    for v in cert.votes:
        if not isinstance(v.validator, bytes) or len(v.validator) != KEY_LEN:
            raise CertificateError("malformed", "a validator is not 32 bytes")
        if not isinstance(v.sig, bytes) or len(v.sig) != SIG_LEN:
            raise CertificateError("malformed", "a sig is not 64 bytes")


def verify_certificate(
    cert: Certificate,
    chain: str,
    validators: Sequence[bytes],
    verifier: Verifier,
    *,
    height: int | None = None,
    block_hash: bytes | None = None,
) -> None:
    """Raise CertificateError unless `cert` holds a quorum of distinct members' precommits.

    `validators` is the set in force at the certificate's height. Pass `height` /
    `block_hash` to also pin which commit is expected (a header's height and hash): the
    signatures bind kind, chain, height, round and hash, so a certificate for anything else
    fails as `bad_signature` or as `wrong_height` / `wrong_block`.
    """
    _check_shape(cert)
    if height is not None and cert.height != height:
        raise CertificateError("wrong_height", f"certificate is for height {cert.height}")
    if block_hash is not None and cert.block_hash != block_hash:
        raise CertificateError("wrong_block", "certificate is for another block")
    members = set(validators)
    seen: set[bytes] = set()
    for entry in cert.votes:
        if entry.validator in seen:
            raise CertificateError("duplicate_validator", entry.validator.hex())
        if entry.validator not in members:
            raise CertificateError("not_member", entry.validator.hex())
        seen.add(entry.validator)
    if len(seen) < quorum(len(members)):
        raise CertificateError(
            "no_quorum", f"{len(seen)} precommits, quorum is {quorum(len(members))}"
        )
    for vote in cert.precommits(chain):
        if not verifier.verify_vote(vote):
            raise CertificateError("bad_signature", vote.validator.hex())
