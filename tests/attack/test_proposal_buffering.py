"""Finding 4 of issue 14: a proposal's block is buffered only after the signature,
proposer, height-window and size checks; evidence seen is pruned once committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from almoner.consensus.messages import Proposal, proposer_index
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.signing import block_hash
from almoner.node.chain.state import evidence_key
from almoner.node.chain.store import LevelStore
from almoner.node.server.driver import Driver
from almoner.node.server.mempool import Mempool
from almoner.node.server.metrics import Metrics
from almoner.node.server.notifier import CommitNotifier
from almoner.node.server.transport import Transport
from tests.localchain import LocalKeys, local_genesis


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[tuple[Driver, LocalKeys]]:
    genesis, keys = local_genesis()
    store = LevelStore(tmp_path / "db")
    try:
        ledger = Ledger(store, genesis)
        client = httpx.AsyncClient()
        transport = Transport(genesis.chain_id, {}, keys.validators[0], client)
        mempool = Mempool(ledger, 100, 1 << 20)
        yield (
            Driver(ledger, mempool, transport, keys.validators[0], CommitNotifier(), Metrics()),
            keys,
        )
    finally:
        store.close()


def _proposal(
    driver: Driver, keys: LocalKeys, height: int, size: int, signer: int | None = None
) -> tuple[Proposal, dict[str, Any]]:
    header: dict[str, Any] = {"height": height, "padding": b"\x00" * 16}
    block: dict[str, Any] = {"header": header, "txs": [b"\x00" * size] if size else []}
    validators = driver.ledger.validators(driver.ledger.head.height + 1)
    index = proposer_index(height, 0, len(validators)) if signer is None else signer
    key = next(k for k in keys.validators if k.public_key == validators[index])
    proposal = Proposal(driver.ledger.chain_id, height, 0, -1, block_hash(header), key.public_key)
    return NodeSigner(key).sign_proposal(proposal), block


def test_unsigned_far_future_and_oversized_blocks_are_not_buffered(
    driver: tuple[Driver, LocalKeys],
) -> None:
    d, keys = driver
    eight_mib = 8 * 1024 * 1024
    # The original attack: height 10**9, 8 MiB, no signature.
    far, block = _proposal(d, keys, 10**9, eight_mib)
    assert not d._keep_block(far, block)
    unsigned, block = _proposal(d, keys, 1, 1024)
    assert not d._keep_block(unsigned.with_sig(b"\x00" * 64), block)
    wrong_proposer, block = _proposal(d, keys, 1, 1024, signer=(proposer_index(1, 0, 4) + 1) % 4)
    assert not d._keep_block(wrong_proposer, block)
    huge, block = _proposal(d, keys, 1, eight_mib)
    assert not d._keep_block(huge, block)
    assert d._blocks == {}
    good, block = _proposal(d, keys, 1, 1024)
    assert d._keep_block(good, block)
    ahead, block = _proposal(d, keys, 2, 1024)
    assert d._keep_block(ahead, block)
    assert len(d._blocks) == 2


def test_seen_evidence_is_pruned_once_committed(driver: tuple[Driver, LocalKeys]) -> None:
    d, keys = driver
    culprit = keys.validators[2].public_key
    for height in (1, 2):
        d.pending_evidence[culprit + bytes([height])] = {
            "validator": culprit,
            "height": height,
            "round": 0,
            "kind": "prevote",
            "votes": [],
        }
    d._prune_evidence()
    assert len(d.pending_evidence) == 2
    d.ledger.store.write({evidence_key(culprit, 1, 0, "prevote"): b"committed"}, sync=True)
    d._prune_evidence()
    assert [r["height"] for r in d.pending_evidence.values()] == [2]


@pytest.mark.parametrize("txs", [5, {"tx": 1}, None, b"\x00" * 8, [b"\x00"] * 3, [1] * 40])
def test_a_credible_proposal_whose_txs_are_not_txs_is_refused_not_an_error(
    driver: tuple[Driver, LocalKeys], txs: Any
) -> None:
    """A real header from the round's proposer, with any value where the txs go: the
    block is refused as a block (a prevote for nil follows), on the event loop or on the
    store worker, and the driver raises nothing."""
    d, keys = driver
    validators = d.ledger.validators(1)
    proposer = next(
        k for k in keys.validators if k.public_key == validators[proposer_index(1, 0, 4)]
    )
    built = d.ledger.build_block(
        [],
        time_ms=d.ledger.head.time + 1,
        proposer=proposer.public_key,
        max_txs=10,
        max_bytes=1 << 20,
    )
    header = built.block["header"]
    block = {"header": header, "txs": txs}
    proposal = Proposal(d.ledger.chain_id, 1, 0, -1, block_hash(header), proposer.public_key)
    signed = NodeSigner(proposer).sign_proposal(proposal)
    assert d._keep_block(signed, block)
    assert asyncio.run(d._validate(1, signed.block_hash)) is False
    refused = {
        labels: n
        for (name, labels), n in d.metrics.counters.items()
        if name.endswith("refused_total")
    }
    assert sum(refused.values()) == 1, refused
