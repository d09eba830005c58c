"""Byzantine behaviours for `consensus.testing`: filters on an otherwise honest machine.

A Byzantine validator runs the real machine (so it stays in step with the network) and
rewrites what it sends. It only ever holds its own signer: everything it does, a real
attacker holding one key could do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from almoner.consensus.crypto import Signer
from almoner.consensus.messages import Proposal, Vote
from almoner.consensus.ready import Outbound
from tests.consensus.sim_support import SimSigner, SplitMix64, validator_key

# silent: sends nothing. equivocate: as proposer, two proposals; votes split between two
# values. double_vote: every vote plus a conflicting one, to everyone. garbage: votes for
# values nobody proposed. malformed: honest, plus junk of every kind. split: the collusion
# attack -- one world for half the honest validators, a shadow world for the other half.
STRATEGIES = ("silent", "equivocate", "double_vote", "garbage", "malformed", "split")

Send = tuple[bytes | None, Any]  # (recipient or None for everyone, payload)


class Byzantine:
    def __init__(
        self,
        strategy: str,
        signer: Signer,
        rng: SplitMix64,
        chain: str,
        groups: tuple[Sequence[bytes], Sequence[bytes]],
        register_value: Callable[[bytes], None],
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown Byzantine strategy {strategy!r}")
        self.strategy = strategy
        self.signer = signer
        self.rng = rng
        self.chain = chain
        self.groups = groups
        self.register_value = register_value
        self.outsider = SimSigner(validator_key(999, b"outsider"))

    def shadow(self, block_hash: bytes) -> bytes:
        """The value shown to the second group in place of `block_hash`."""
        value = bytes(b ^ 0x5A for b in block_hash)
        self.register_value(value)  # a valid block too: the attack is on agreement only
        return value

    def outgoing(self, out: Outbound) -> list[Send]:
        msg = out.message
        s = self.strategy
        if s == "silent":
            return []
        if s == "malformed":
            return [(out.to, msg), (None, self._junk(msg))]
        if s == "garbage":
            if isinstance(msg, Vote) and msg.block_hash is not None:
                msg = self.signer.sign_vote(replace(msg, block_hash=self.rng.hash32()))
            return [(out.to, msg)]
        if s == "double_vote":
            if isinstance(msg, Vote):
                other = None if msg.block_hash and self.rng.chance(0.5) else self.rng.hash32()
                return [
                    (out.to, msg),
                    (out.to, self.signer.sign_vote(replace(msg, block_hash=other))),
                ]
            return [(out.to, msg)]
        # equivocate and split: each group gets its own consistent story.
        first, second = self.groups
        if isinstance(msg, Proposal):
            alt = self.shadow(msg.block_hash)
            twin: Any = self.signer.sign_proposal(replace(msg, block_hash=alt, valid_round=-1))
        elif msg.block_hash is not None:
            twin = self.signer.sign_vote(replace(msg, block_hash=self.shadow(msg.block_hash)))
        else:
            return [(out.to, msg)]
        if s == "equivocate" and self.rng.chance(0.5):
            first, second = second, first
        sends: list[Send] = [(k, msg) for k in first] + [(k, twin) for k in second]
        if out.to is not None:
            sends = [(k, m) for k, m in sends if k == out.to] or [(out.to, msg)]
        return sends

    def _junk(self, msg: Proposal | Vote) -> Any:
        kind = self.rng.below(9)
        if kind == 0:
            return replace(msg, chain=self.chain + "-other")  # wrong chain
        if kind == 1:
            return replace(msg, sig=bytes(64))  # bad signature
        if kind == 2 and isinstance(msg, Vote):
            return self.outsider.sign_vote(replace(msg, validator=self.outsider.public_key))
        if kind == 3:
            data = msg.to_map()
            data.pop("round")
            return data  # missing key
        if kind == 4:
            data = msg.to_map()
            data["round"] = "one"
            return data  # wrong type
        if kind == 5:
            return replace(msg, height=0)
        if kind == 6:
            data = msg.to_map()
            data["block_hash"] = b"short"
            return data
        if kind == 7:
            # far-future rounds: must not make anyone skip (line 55 needs f+1 senders)
            return self.signer.sign_vote(
                Vote(
                    "prevote",
                    self.chain,
                    msg.height,
                    msg.round + 1 + self.rng.below(10**6),
                    None,
                    self.signer.public_key,
                )
            )
        return self.rng.pick([42, "x", [1, 2], None, {"kind": "proposal"}])
