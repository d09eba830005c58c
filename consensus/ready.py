"""What goes into and out of the machine besides messages: parameters and the Ready record.

The Ready record is the whole contract with the driver: it persists `persist` (fsync),
then sends `send`, then hands `decided`, `evidence` and `requests` to the application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.consensus.certificate import Certificate
from almoner.consensus.messages import Message, Proposal, Vote


@dataclass(frozen=True, slots=True)
class Params:
    """Timeouts in logical milliseconds; round r waits base + r * delta (paper §4)."""

    timeout_propose_ms: int = 3000
    timeout_prevote_ms: int = 1000
    timeout_precommit_ms: int = 1000
    timeout_delta_ms: int = 500
    # Re-send own messages of the current height this often: the paper assumes reliable
    # gossip after GST, a lossy transport only gets it by retransmission.
    rebroadcast_ms: int = 2000
    # Bound on messages buffered for later heights while this height is still running.
    max_buffered: int = 1024
    # Messages for up to this many heights past the current one are buffered, not
    # dropped: a validator that falls a few heights behind (a pause, a slow disk) then
    # decides those heights from what it already holds, in milliseconds, instead of
    # losing them and waiting for catch-up, which made it late for its own turn to propose
    # and cost the whole network a round (a second).
    heights_ahead: int = 4
    # Messages more than this many rounds ahead are dropped, so a Byzantine sender cannot
    # fill memory with far-future rounds; honest validators that far ahead are followed by
    # repeated line-55 skips, each within the horizon, as their re-sends arrive.
    max_rounds_ahead: int = 64
    # TEST ONLY: ignore the lock in lines 22/28, to prove the simulation catches it.
    broken_lock_rule: bool = False

    def timeout_propose(self, round_: int) -> int:
        return self.timeout_propose_ms + round_ * self.timeout_delta_ms

    def timeout_prevote(self, round_: int) -> int:
        return self.timeout_prevote_ms + round_ * self.timeout_delta_ms

    def timeout_precommit(self, round_: int) -> int:
        return self.timeout_precommit_ms + round_ * self.timeout_delta_ms

    @classmethod
    def from_genesis(cls, params: dict[str, Any]) -> Params:
        return cls(
            timeout_propose_ms=params["timeout_propose_ms"],
            timeout_prevote_ms=params["timeout_prevote_ms"],
            timeout_precommit_ms=params["timeout_precommit_ms"],
            timeout_delta_ms=params["timeout_delta_ms"],
        )


@dataclass(frozen=True, slots=True)
class ProposalRequest:
    """getValue() of line 18: the app builds a block and answers `propose_value`."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValidityRequest:
    """valid(v): the app checks the block behind `block_hash` and answers `on_validity`."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class Decision:
    """Line 49 fired: the block is committed; `proposal` lets the driver serve catch-up."""

    height: int
    round: int
    block_hash: bytes
    certificate: Certificate
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two validly signed votes of one validator for one (height, round, kind), differing."""

    first: Vote
    second: Vote

    @property
    def culprit(self) -> bytes:
        return self.first.validator


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to broadcast to every validator (to=None) or to one."""

    message: Message
    to: bytes | None = None


@dataclass(slots=True)
class Ready:
    persist: dict[str, Any] | None = None
    # The own messages `persist` holds, as the machine's objects: a driver that tracks
    # which of its messages are durable need not parse the record back for them.
    persist_own: tuple[Message, ...] = ()
    send: list[Outbound] = field(default_factory=list)
    decided: list[Decision] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    requests: list[ProposalRequest | ValidityRequest] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.persist or self.send or self.decided or self.evidence or self.requests)
