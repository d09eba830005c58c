"""Mempool admission, limits and eviction, against a real ledger on the in-memory store."""

from __future__ import annotations

import pytest

from almoner.node.chain.codec import H, decode, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.signing import rotation_sign_bytes
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


# -- txs gossiped by a peer: admitted on shape and signature, contract run deferred ------
def test_a_peers_tx_waits_for_its_contract_run_and_a_local_submission_forces_it() -> None:
    """A peer's tx that the contract would refuse (its donation id is taken) is held on
    its signature alone; the next client submission runs the contract on it first, drops
    it, and is itself judged against what remains."""
    _, work, mempool = setup()
    first = work.donation(donation_id="d-1")
    clash = work.donation(donation_id="d-1", amount=5)
    mempool.add(first)
    assert mempool.add(clash, from_peer=True).status == "pending"
    assert mempool.candidates() == [first, clash] and mempool.rejected_total == 0
    later = work.donation()
    mempool.add(later)
    assert mempool.candidates() == [first, later]
    assert mempool.rejected_total == 1 and mempool.size_bytes == len(first) + len(later)


def test_a_client_tx_is_judged_against_the_peer_txs_before_it() -> None:
    _, work, mempool = setup()
    mempool.add(work.donation(donation_id="from-peer"), from_peer=True)
    with pytest.raises(ProtocolError) as refused:
        mempool.add(work.donation(donation_id="from-peer", amount=3))
    assert refused.value.code == "duplicate_id"


@pytest.mark.parametrize("damage", ["signature", "shape"])
def test_a_peers_tx_with_a_bad_signature_or_shape_is_refused_at_once(damage: str) -> None:
    _, work, mempool = setup()
    tx = decode(work.donation())
    if damage == "signature":
        tx["sig"] = bytes(64)
    else:
        tx["body"]["amount"] = -1
    with pytest.raises(ProtocolError) as refused:
        mempool.add(encode(tx), from_peer=True)
    assert refused.value.code == ("bad_signature" if damage == "signature" else "invalid_field")
    assert len(mempool) == 0 and mempool.rejected_total == 1


def test_a_block_of_peer_txs_alone_keeps_the_applied_ones_consistent() -> None:
    """A client's tx is applied here; a peer's later tx to the same fund is deferred and
    then committed without it. The applied tx was judged without that peer tx's effect,
    so the pending state is rebuilt: a disbursement that only both donations cover is
    admitted afterwards."""
    chain, work, mempool = setup()
    local = work.donation(amount=600)
    peer = work.donation(amount=600)
    mempool.add(local)
    mempool.add(peer, from_peer=True)
    chain.add_block([peer])
    assert mempool.on_commit([H(peer)]) == []
    assert mempool.candidates() == [local]
    spend = work.disburse("charity-1", 1_000)
    assert mempool.add(spend).status == "pending"


def test_a_peers_tx_the_contract_refuses_is_dropped_after_two_commits() -> None:
    chain, work, mempool = setup()
    winner = work.donation(donation_id="race")
    loser = work.donation(donation_id="race", amount=9)
    chain.add_block([winner])
    mempool.on_commit([H(winner)])
    mempool.add(loser, from_peer=True)  # its signature is fine: admitted, not yet judged
    chain.add_block([])
    assert mempool.on_commit([]) == [] and mempool.candidates() == [loser]
    chain.add_block([])
    assert mempool.on_commit([]) == [H(loser)]
    assert len(mempool) == 0 and mempool.rejected_total == 1


def test_a_peers_tx_from_a_key_no_party_holds_is_refused_at_once() -> None:
    """Junk signed by fresh keys never waits in the pool: the signer is checked on
    admission even when the business rules are deferred."""
    _, work, mempool = setup()
    stranger = KeyPair.from_seed(b"\x07" * 32)
    work.keys.parties["stranger"] = stranger
    with pytest.raises(ProtocolError) as refused:
        mempool.add(work.donation(platform="stranger"), from_peer=True)
    assert refused.value.code == "unknown_signer" and len(mempool) == 0


def test_a_peers_tx_signed_with_a_key_rotated_in_a_deferred_tx_is_admitted() -> None:
    chain, work, mempool = setup()
    fresh = KeyPair.from_seed(b"\x31" * 32)
    work.keys.parties["platform-1-new"] = fresh
    party = work.pub("platform-1")
    proof = fresh.sign(rotation_sign_bytes(chain.genesis.chain_id, party, fresh.public_key))
    rotate = work.tx(
        "platform-1", "party.rotate_key", {"new_key": fresh.public_key, "new_sig": proof}
    )
    mempool.add(rotate, from_peer=True)
    after = work.donation(platform="platform-1-new")
    assert mempool.add(after, from_peer=True).status == "pending"
    assert mempool.candidates() == [rotate, after]
    chain.add_block([rotate, after])
    assert mempool.on_commit([H(rotate), H(after)]) == [] and len(mempool) == 0
