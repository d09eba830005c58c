"""Applies blocks to a LevelDB ledger forever, printing each committed height.

Run by tests/test_crash_safety.py, which SIGKILLs it at arbitrary moments.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from almoner.consensus import Certificate, CommitSig, Vote
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from bench.workload import make_parties, mixed_txs

BLOCK_TXS = 200
TOTAL_TXS = 20_000


def certify(parties: Any, height: int, block_hash: bytes, chain: str) -> dict[str, Any]:
    votes = []
    for key in parties.validators[:3]:
        vote = Vote("precommit", chain, height, 0, block_hash, key.public_key, b"")
        votes.append(CommitSig(key.public_key, NodeSigner(key).sign_vote(vote).sig))
    return Certificate(height, 0, block_hash, tuple(votes)).to_map()


def main(path: str) -> None:
    parties = make_parties()
    txs = mixed_txs(parties, TOTAL_TXS)
    store = LevelStore(Path(path))
    ledger = Ledger(store, parties.genesis)
    position = ledger.head.log_size
    while position < len(txs):
        executed = ledger.build_block(
            txs[position : position + BLOCK_TXS],
            time_ms=ledger.head.time + 1,
            proposer=parties.validators[0].public_key,
            max_txs=BLOCK_TXS,
            max_bytes=1 << 30,
        )
        assert not executed.rejected, executed.rejected[0]
        cert = certify(parties, executed.height, executed.block_hash, ledger.chain_id)
        ledger.commit(executed, cert)
        position += len(executed.tx_ids)
        print(ledger.head.height, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
