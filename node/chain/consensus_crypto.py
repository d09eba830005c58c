"""The node's side of `consensus.crypto`: Ed25519 over docs/spec/06's sign-bytes.

The consensus package defines what it needs signed and verified; this module supplies the
bytes (`node.signing`) and the keys (`node.crypto`), so the machine never learns either.
"""

from __future__ import annotations

from almoner.consensus.messages import Proposal, Vote
from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.chain.signing import proposal_sign_bytes, vote_sign_bytes


class NodeVerifier:
    """Checks signatures against the key named in the message itself."""

    def verify_vote(self, vote: Vote) -> bool:
        return verify(vote.validator, vote_sign_bytes(vote.to_map()), vote.sig)

    def verify_proposal(self, proposal: Proposal) -> bool:
        return verify(proposal.proposer, proposal_sign_bytes(proposal.to_map()), proposal.sig)


class NodeSigner:
    """This validator's key; signs whatever the machine hands it."""

    def __init__(self, key: KeyPair) -> None:
        self._key = key

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    def sign_vote(self, vote: Vote) -> Vote:
        return vote.with_sig(self._key.sign(vote_sign_bytes(vote.to_map())))

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        return proposal.with_sig(self._key.sign(proposal_sign_bytes(proposal.to_map())))
