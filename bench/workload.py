"""Realistic signed workloads for benchmarks: donations, transfers and disbursements.

Amounts are chosen so every tx is valid in order: donations fill charities' general
funds, transfers and disbursements spend a small part of what is there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.codec import H
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import DEFAULT_PARAMS, Genesis, GenesisParty, Validator
from almoner.node.chain.tx import encode_tx, make_tx

CHAIN = "almoner-bench"


@dataclass
class Parties:
    genesis: Genesis
    validators: list[KeyPair]
    platforms: list[KeyPair]
    charities: list[KeyPair]


def make_parties(n_validators: int = 4, n_platforms: int = 4, n_charities: int = 16) -> Parties:
    seed = 0

    def key() -> KeyPair:
        nonlocal seed
        seed += 1
        return KeyPair.from_seed(H(b"bench-key-%d" % seed))

    validators = [key() for _ in range(n_validators)]
    platforms = [key() for _ in range(n_platforms)]
    charities = [key() for _ in range(n_charities)]
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=1_700_000_000_000,
        validators=tuple(Validator(f"v{i}", k.public_key) for i, k in enumerate(validators)),
        parties=tuple(
            [
                GenesisParty(k.public_key, "platform", f"p{i}", f"P{i}")
                for i, k in enumerate(platforms)
            ]
            + [
                GenesisParty(k.public_key, "charity", f"c{i}", f"C{i}")
                for i, k in enumerate(charities)
            ]
        ),
        params={**DEFAULT_PARAMS, "max_block_txs": 5000},
    )
    return Parties(genesis, validators, platforms, charities)


def mixed_txs(parties: Parties, count: int, seed: int = 7) -> list[bytes]:
    """70% donations, 20% transfers, 10% disbursements, all valid when applied in order."""
    rng = random.Random(seed)
    out: list[bytes] = []
    balance = [0] * len(parties.charities)
    for i in range(count):
        roll = rng.random()
        c = rng.randrange(len(parties.charities))
        charity = parties.charities[c]
        if roll < 0.7 or balance[c] < 1_000:
            platform = parties.platforms[rng.randrange(len(parties.platforms))]
            amount = rng.randrange(1_000, 100_000)
            body: dict[str, Any] = {
                "donation": f"d{i}",
                "donor": H(b"donor%d" % i),
                "charity": charity.public_key,
                "campaign": None,
                "amount": amount,
                "currency": "CNY",
                "received_at": 1_700_000_000_000 + i,
            }
            tx = make_tx(CHAIN, "donation.record", platform, body, i)
            balance[c] += amount
        elif roll < 0.9:
            to = rng.randrange(len(parties.charities))
            # Grants of about a donation's size: charities pass money on in similar sums.
            amount = rng.randrange(1, min(balance[c] // 4, 100_000) + 2)
            body = {
                "transfer": f"t{i}",
                "from_fund": "general",
                "to": parties.charities[to].public_key,
                "to_fund": "general",
                "amount": amount,
                "currency": "CNY",
                "purpose": "program support",
            }
            tx = make_tx(CHAIN, "funds.transfer", charity, body, i)
            balance[c] -= amount
            balance[to] += amount
        else:
            amount = rng.randrange(1, min(balance[c] // 4, 100_000) + 2)
            body = {
                "disbursement": f"s{i}",
                "fund": "general",
                "amount": amount,
                "currency": "CNY",
                "category": rng.choice(["program", "admin", "fundraising"]),
                "payee": "Supplier Ltd",
                "purpose": "school meals",
                "evidence": [H(b"invoice%d" % i)],
            }
            tx = make_tx(CHAIN, "funds.disburse", charity, body, i)
            balance[c] -= amount
        out.append(encode_tx(tx))
    return out
