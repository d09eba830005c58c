"""Everything heard at one height: proposals and votes by round, counted as they arrive.

Counts are kept incrementally so each `upon` rule is a dictionary lookup, not a scan of
the messages. `count(round, kind, v)` is the number of distinct validators with a vote for
v; an equivocator's votes for two values count for each. That is what quorum intersection
needs (two quorums share an honest validator, and honest validators vote once), and it is
what lets a validator that first heard an equivocator's other vote still recognise a commit
that the equivocator's vote helped to make.
"""

from __future__ import annotations

from collections.abc import Iterator

from almoner.consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote

Slot = tuple[int, str]  # (round, kind)


class Tally:
    def __init__(self) -> None:
        self._votes: dict[Slot, dict[bytes, list[Vote]]] = {}
        self._counts: dict[Slot, dict[bytes | None, int]] = {}
        self._proposals: dict[int, dict[bytes, Proposal]] = {}
        self._senders: dict[int, set[bytes]] = {}
        self._support: dict[bytes, int] = {}
        self._proposed: set[bytes] = set()

    # -- lookups -------------------------------------------------------------------------

    def votes_of(self, round_: int, kind: str, validator: bytes) -> list[Vote]:
        return self._votes.get((round_, kind), {}).get(validator, [])

    def count(self, round_: int, kind: str, block_hash: bytes | None) -> int:
        return self._counts.get((round_, kind), {}).get(block_hash, 0)

    def total(self, round_: int, kind: str) -> int:
        return len(self._votes.get((round_, kind), {}))

    def votes_for(self, round_: int, kind: str, block_hash: bytes) -> list[Vote]:
        slot = self._votes.get((round_, kind), {})
        return [v for votes in slot.values() for v in votes if v.block_hash == block_hash]

    def proposals(self, round_: int) -> Iterator[Proposal]:
        """In arrival order, so the first proposal heard is the one rule 22 acts on."""
        return iter(self._proposals.get(round_, {}).values())

    def proposal(self, round_: int, block_hash: bytes) -> Proposal | None:
        return self._proposals.get(round_, {}).get(block_hash)

    def proposal_count(self, round_: int) -> int:
        return len(self._proposals.get(round_, {}))

    def proposed(self, block_hash: bytes) -> bool:
        return block_hash in self._proposed

    def supported(self, block_hash: bytes) -> int:
        """How many votes at this height name the hash: a proposal for a value others vote
        for is always worth keeping, however many junk proposals came first."""
        return self._support.get(block_hash, 0)

    def senders(self, round_: int) -> int:
        return len(self._senders.get(round_, ()))

    def rounds_heard(self) -> list[int]:
        return list(self._senders)

    def quorums(self, kind: str, q: int) -> Iterator[tuple[int, bytes]]:
        """(round, value) pairs with at least q votes of `kind` for a non-nil value."""
        for (round_, slot_kind), counts in self._counts.items():
            if slot_kind != kind:
                continue
            for block_hash, c in counts.items():
                if block_hash is not None and c >= q:
                    yield round_, block_hash

    # -- updates -------------------------------------------------------------------------

    def _heard(self, sender: bytes, round_: int) -> None:
        self._senders.setdefault(round_, set()).add(sender)

    def add_vote(self, vote: Vote) -> None:
        """Count a verified vote; the caller has checked its validator has none for its hash."""
        slot = (vote.round, vote.kind)
        self._votes.setdefault(slot, {}).setdefault(vote.validator, []).append(vote)
        counts = self._counts.setdefault(slot, {})
        counts[vote.block_hash] = counts.get(vote.block_hash, 0) + 1
        if vote.block_hash is not None:
            self._support[vote.block_hash] = self._support.get(vote.block_hash, 0) + 1
        self._heard(vote.validator, vote.round)

    def add_proposal(self, proposal: Proposal) -> None:
        self._proposals.setdefault(proposal.round, {})[proposal.block_hash] = proposal
        self._proposed.add(proposal.block_hash)
        self._heard(proposal.proposer, proposal.round)


__all__ = ["PRECOMMIT", "PREVOTE", "Tally"]
