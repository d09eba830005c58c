"""The signing and verification interface the machine needs, and nothing more.

The machine never sees keys or sign-bytes: the node implements these Protocols with
docs/spec/06's domain-tagged canonical bytes (`node/consensus_crypto.py`), and the
simulation with a cheap stand-in. Verifiers answer a bool so that a bad signature from the
network is an ordinary drop, never an exception on the hot path.
"""

from __future__ import annotations

from typing import Protocol

from almoner.consensus.messages import Proposal, Vote


class Signer(Protocol):
    """The local validator's key. It signs whatever it is given; the machine decides what."""

    @property
    def public_key(self) -> bytes: ...

    def sign_vote(self, vote: Vote) -> Vote:
        """Return `vote` with `sig` set over its protocol map (without `sig`)."""
        ...

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """Return `proposal` with `sig` set over its protocol map (without `sig`)."""
        ...


class Verifier(Protocol):
    """Checks a message's signature against the key named inside it (validator/proposer)."""

    def verify_vote(self, vote: Vote) -> bool: ...

    def verify_proposal(self, proposal: Proposal) -> bool: ...
