"""The two signed consensus messages of docs/spec/06, and the arithmetic of quorums.

Messages are frozen dataclasses so a verified message can be shared between the tally, the
persisted state and the outbox without anyone mutating it behind the machine's back.
`to_map()` gives exactly the protocol map (bytes as bytes), which is what gets signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

PROPOSAL: Literal["proposal"] = "proposal"
PREVOTE: Literal["prevote"] = "prevote"
PRECOMMIT: Literal["precommit"] = "precommit"
VoteKind = Literal["prevote", "precommit"]

HASH_LEN = 32
KEY_LEN = 32
SIG_LEN = 64
MAX_INT = 2**63 - 1

PROPOSAL_KEYS = frozenset(
    {"kind", "chain", "height", "round", "valid_round", "block_hash", "proposer", "sig"}
)
VOTE_KEYS = frozenset({"kind", "chain", "height", "round", "block_hash", "validator", "sig"})


class MessageError(ValueError):
    """A message that is not a well-formed proposal or vote; the machine drops it."""


def quorum(n: int) -> int:
    """floor(2n/3) + 1: any two quorums share at least one honest validator."""
    return 2 * n // 3 + 1


def max_faulty(n: int) -> int:
    """f = floor((n-1)/3), the number of Byzantine validators tolerated."""
    return (n - 1) // 3


def proposer_index(height: int, round_: int, n: int) -> int:
    """Round-robin in genesis order, shifted by height so heights do not all start alike."""
    return (height + round_) % n


@dataclass(frozen=True, slots=True)
class Proposal:
    chain: str
    height: int
    round: int
    valid_round: int
    block_hash: bytes
    proposer: bytes
    sig: bytes = b""
    kind: Literal["proposal"] = "proposal"

    def to_map(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain": self.chain,
            "height": self.height,
            "round": self.round,
            "valid_round": self.valid_round,
            "block_hash": self.block_hash,
            "proposer": self.proposer,
            "sig": self.sig,
        }

    def with_sig(self, sig: bytes) -> Proposal:
        return replace(self, sig=sig)

    @property
    def sender(self) -> bytes:
        return self.proposer


@dataclass(frozen=True, slots=True)
class Vote:
    kind: VoteKind
    chain: str
    height: int
    round: int
    block_hash: bytes | None
    validator: bytes
    sig: bytes = b""

    def to_map(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain": self.chain,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "validator": self.validator,
            "sig": self.sig,
        }

    def with_sig(self, sig: bytes) -> Vote:
        return replace(self, sig=sig)

    @property
    def sender(self) -> bytes:
        return self.validator


Message = Proposal | Vote


def _int(value: object, low: int, field: str) -> int:
    # bool is an int subclass; a protocol int never is a bool.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_INT:
        raise MessageError(f"{field} is not an int in [{low}, 2^63)")
    return value


def _bin(value: object, length: int, field: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise MessageError(f"{field} is not {length} bytes")
    return value


def check_message(msg: object) -> Message:
    """Re-check every field's type and range: a Byzantine peer can build any object."""
    if isinstance(msg, Proposal):
        if msg.kind != PROPOSAL or not isinstance(msg.chain, str):
            raise MessageError("bad kind or chain")
        _int(msg.height, 1, "height")
        _int(msg.round, 0, "round")
        _int(msg.valid_round, -1, "valid_round")
        if msg.valid_round >= msg.round:
            raise MessageError("valid_round must be below round")
        _bin(msg.block_hash, HASH_LEN, "block_hash")
        _bin(msg.proposer, KEY_LEN, "proposer")
        _bin(msg.sig, SIG_LEN, "sig")
        return msg
    if isinstance(msg, Vote):
        if msg.kind not in (PREVOTE, PRECOMMIT) or not isinstance(msg.chain, str):
            raise MessageError("bad kind or chain")
        _int(msg.height, 1, "height")
        _int(msg.round, 0, "round")
        if msg.block_hash is not None:
            _bin(msg.block_hash, HASH_LEN, "block_hash")
        _bin(msg.validator, KEY_LEN, "validator")
        _bin(msg.sig, SIG_LEN, "sig")
        return msg
    raise MessageError(f"not a consensus message: {type(msg).__name__}")


def parse_message(data: Mapping[str, Any]) -> Message:
    """Build a message from a decoded protocol map, with exactly the protocol's keys."""
    if not isinstance(data, Mapping):
        raise MessageError("a message is a map")
    kind = data.get("kind")
    if kind == PROPOSAL:
        if set(data) != PROPOSAL_KEYS:
            raise MessageError("proposal keys differ from the protocol's")
        msg: Message = Proposal(
            chain=data["chain"],
            height=data["height"],
            round=data["round"],
            valid_round=data["valid_round"],
            block_hash=data["block_hash"],
            proposer=data["proposer"],
            sig=data["sig"],
        )
    elif kind in (PREVOTE, PRECOMMIT):
        if set(data) != VOTE_KEYS:
            raise MessageError("vote keys differ from the protocol's")
        msg = Vote(
            kind=kind,
            chain=data["chain"],
            height=data["height"],
            round=data["round"],
            block_hash=data["block_hash"],
            validator=data["validator"],
            sig=data["sig"],
        )
    else:
        raise MessageError(f"unknown kind {kind!r}")
    return check_message(msg)
