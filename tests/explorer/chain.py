"""A certified chain in a real LevelDB for the explorer tests: the verify story (every kind
of money movement) plus a refund, an audit opinion, a campaign transfer and spending, and
a block in a later month, so every list, filter, total and timeline step has data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from almoner.node.chain.codec import H
from almoner.node.chain.genesis import dump_genesis
from almoner.node.chain.store import LevelStore
from tests.localchain import LocalChain, LocalKeys, Workload
from tests.verify.story import story

DAY_MS = 86_400_000


@dataclass(frozen=True)
class ExplorerChain:
    home: Path
    genesis_path: Path
    keys: LocalKeys
    times: list[int]
    height: int


def build_chain(home: Path) -> ExplorerChain:
    """Write the chain into home/data and the genesis into home/genesis.json."""
    s = story()
    store = LevelStore(home / "data")
    chain = LocalChain(s.genesis, s.keys.validators, store)
    times = []
    for txs, time_ms in zip(s.block_txs, s.times, strict=True):
        chain.add_block(txs, time_ms)
        times.append(time_ms)
    w = Workload(s.genesis, s.keys, seed=5, nonce=50_000)
    extra = [
        [
            w.tx(
                "charity-1",
                "donation.refund",
                {
                    "refund": "r-1",
                    "platform": w.pub("platform-1"),
                    "donation": "d-c",
                    "amount": 1_000,
                },
            ),
            w.tx(
                "regulator",
                "audit.attest",
                {
                    "attestation": "a-2026",
                    "charity": w.pub("charity-1"),
                    "period": "2026",
                    "opinion": "clean",
                    "report": H(b"report-2026"),
                    "note": "账目清楚 Books in order",
                },
            ),
            w.tx(
                "charity-1",
                "funds.transfer",
                {
                    "transfer": "t-wells",
                    "from_fund": "general",
                    "to": w.pub("charity-1"),
                    "to_fund": "wells",
                    "amount": 3_000,
                    "currency": "USD",
                    "purpose": "top up the wells campaign",
                },
            ),
        ],
        [
            w.donation("platform-1", "charity-1", 7_000, campaign="wells", donation_id="d-late"),
            w.confirm("platform-1", "d-c", "charity-1"),
            w.tx(
                "charity-1",
                "funds.disburse",
                {
                    "disbursement": "dis-wells",
                    "fund": "wells",
                    "amount": 6_000,
                    "currency": "USD",
                    "category": "program",
                    "payee": "井队 Drilling Co.",
                    "purpose": "a well in Gansu",
                    "evidence": [H(b"invoice-well")],
                },
            ),
        ],
    ]
    for index, txs in enumerate(extra):
        # The last block lands about 40 days later: a second month in the totals.
        time_ms = chain.next_time() + (40 * DAY_MS if index == len(extra) - 1 else 0)
        chain.add_block(txs, time_ms)
        times.append(time_ms)
    height = chain.height
    store.close()
    dump_genesis(s.genesis, home / "genesis.json")
    return ExplorerChain(home, home / "genesis.json", s.keys, times, height)
