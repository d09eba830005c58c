"""Mempool admission, limits and eviction, against a real ledger on the in-memory store."""

from __future__ import annotations

import pytest

from almoner.node.chain.codec import H
from almoner.node.errors import ProtocolError
from almoner.node.server.mempool import Mempool
from tests.localchain import LocalChain, Workload, local_genesis


def setup(
    max_txs: int = 100, max_bytes: int = 1 << 20, max_per_party: int | None = None
) -> tuple[LocalChain, Workload, Mempool]:
    genesis, keys = local_genesis(4)
    chain = LocalChain(genesis, keys.validators)
    mempool = Mempool(chain.ledger, max_txs, max_bytes, max_per_party)
    return chain, Workload(genesis, keys), mempool


def test_admission_is_once_and_knows_what_is_committed() -> None:
    chain, work, mempool = setup()
    raw = work.donation()
    first = mempool.add(raw)
    assert (first.status, first.tx_id) == ("pending", H(raw))
    assert mempool.add(raw).status == "pending"  # again: still one copy
    assert len(mempool) == 1 and mempool.size_bytes == len(raw)
    assert mempool.get(H(raw)) == raw and H(raw) in mempool.verified_ids()
    chain.add_block([raw])
    assert mempool.on_commit([H(raw)]) == []
    assert len(mempool) == 0 and mempool.size_bytes == 0
    assert mempool.add(raw).status == "committed"


def test_a_tx_the_contract_refuses_is_rejected_with_its_code_and_counted() -> None:
    _, work, mempool = setup()
    mempool.add(work.donation(donation_id="d-1"))
    with pytest.raises(ProtocolError) as refused:
        mempool.add(work.donation(donation_id="d-1"))  # same id, checked against pending
    assert refused.value.code == "duplicate_id"
    assert mempool.rejected_total == 1 and len(mempool) == 1


@pytest.mark.parametrize("limit", ["txs", "bytes"])
def test_a_full_mempool_answers_busy_and_keeps_what_it_has(limit: str) -> None:
    _, work, _ = setup()
    raws = [work.donation() for _ in range(3)]
    chain, _, mempool = setup(  # one platform signs them all: its quota is not the limit here
        max_txs=2 if limit == "txs" else 100,
        max_bytes=len(raws[0]) + len(raws[1]) if limit == "bytes" else 1 << 20,
        max_per_party=100,
    )
    for raw in raws[:2]:
        mempool.add(raw)
    with pytest.raises(ProtocolError) as full:
        mempool.add(raws[2])
    assert full.value.code == "busy" and full.value.http_status == 503
    assert [H(r) for r in mempool.candidates()] == [H(r) for r in raws[:2]]
    assert chain.height == 0


def test_an_oversized_tx_is_too_large_before_any_check() -> None:
    _, _, mempool = setup()
    with pytest.raises(ProtocolError) as big:
        mempool.add(b"\x00" * (1 << 20))
    assert big.value.code == "too_large"


def test_a_block_with_a_conflicting_tx_evicts_the_pending_one() -> None:
    """A tx this node never saw wins the race: the pending tx it invalidates is dropped,
    the others stay, and the pending state is rebuilt from the new head."""
    chain, work, mempool = setup()
    loser = work.donation(donation_id="race", amount=5)
    bystander = work.donation()
    mempool.add(loser)
    mempool.add(bystander)
    winner = work.donation(donation_id="race", amount=7)
    chain.add_block([winner])
    assert mempool.on_commit([H(winner)]) == [H(loser)]
    assert mempool.candidates() == [bystander]
    assert mempool.size_bytes == len(bystander)
    with pytest.raises(ProtocolError) as again:
        mempool.add(loser)
    assert again.value.code == "duplicate_id"


def test_dropped_txs_leave_and_the_rest_are_rechecked() -> None:
    chain, work, mempool = setup()
    raws = [work.donation() for _ in range(3)]
    for raw in raws:
        mempool.add(raw)
    assert mempool.on_commit([], dropped=[H(raws[1])]) == []
    assert mempool.candidates() == [raws[0], raws[2]]
    chain.add_block([raws[0], raws[2]])
    assert mempool.on_commit([H(raws[0]), H(raws[2])]) == []
    assert len(mempool) == 0
