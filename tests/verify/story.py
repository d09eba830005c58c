"""A small certified chain with every kind of money movement, built once and deterministically,
for the tamper suite, archive tests and CLI tests.

Blocks: 1 opens two campaigns; 2 records three donations; 3 = [confirm, transfer,
disbursement, donation]; 4 and 5 are seeded random mixes; 6 suspends charity-3 and records
one more donation.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.codec import encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import Genesis
from tests.localchain import LocalChain, LocalKeys, Workload, local_genesis

Pair = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class Story:
    genesis: Genesis
    keys: LocalKeys
    block_txs: list[list[bytes]]
    times: list[int]
    frozen_pairs: list[Pair]

    def pairs(self) -> list[Pair]:
        """A fresh deep copy, free to tamper with."""
        return copy.deepcopy(self.frozen_pairs)

    def chain_upto(self, height: int) -> LocalChain:
        """A LocalChain replaying blocks 1..height exactly (same txs, times and certs)."""
        chain = LocalChain(self.genesis, self.keys.validators)
        for txs, time_ms in zip(self.block_txs[:height], self.times[:height], strict=True):
            chain.add_block(txs, time_ms)
        assert chain.ledger.head.block_hash == self.frozen_pairs[height - 1][1]["block_hash"]
        return chain

    def workload(self) -> Workload:
        """A workload whose nonces and ids cannot collide with the story's."""
        return Workload(self.genesis, self.keys, seed=99, nonce=10_000)


def items(pairs: list[Pair]) -> list[bytes]:
    return [encode({"block": block, "commit": cert}) for block, cert in pairs]


@functools.cache
def story() -> Story:
    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators)
    w = Workload(genesis, keys, seed=7)
    blocks: list[list[bytes]] = [
        w.opening(),
        [
            w.donation("platform-1", "charity-1", 10_000, donation_id="d-a"),
            w.donation("platform-2", "charity-2", 20_000, donation_id="d-b"),
            w.donation("platform-1", "charity-1", 5_000, campaign="wells", donation_id="d-c"),
        ],
        [
            w.confirm("platform-1", "d-a", "charity-1"),
            w.transfer("charity-1", "charity-3", 2_000),
            w.disburse("charity-2", 5_000, "program", payee="Village school"),
            w.donation("platform-2", "charity-3", 3_000, donation_id="d-d"),
        ],
        w.mixed(40),
        w.mixed(40),
        [
            w.tx(
                "regulator",
                "party.suspend",
                {"party": keys["charity-3"].public_key, "reason": "licence revoked"},
            ),
            w.donation("platform-1", "charity-1", 1_000, donation_id="d-e"),
        ],
    ]
    times = []
    for txs in blocks:
        times.append(chain.next_time())
        chain.add_block(txs, times[-1])
    return Story(genesis, keys, blocks, times, list(chain.blocks()))


def outsider() -> KeyPair:
    return KeyPair.from_seed(b"\x42" * 32)
