"""The tamper suite: each way of rewriting a good chain is caught at the right height with
the rule docs/spec/08-verify.md names. Blocks that only the contract should reject are built with
real keys and certified by a quorum, so the contract rule is what fails."""

from __future__ import annotations

from typing import Any

import pytest

from almoner.node.audit.verify import VerifyReport, verify_pairs
from almoner.node.chain.codec import decode
from almoner.node.chain.signing import block_hash
from almoner.node.chain.tx import encode_tx, make_tx
from tests.localchain import local_genesis
from tests.verify.story import Pair, Story, outsider, story


@pytest.fixture(scope="module")
def s() -> Story:
    return story()


def check(
    report: VerifyReport, height: int, rule: str, tx_index: int | None = None, text: str = ""
) -> None:
    assert report.violation is not None, "the tampered chain passed"
    v = report.violation
    assert (v.height, v.tx_index, v.rule) == (height, tx_index, rule), v
    assert text in v.message
    # The report's head is the last block that passed.
    assert (report.head or {}).get("height", 0) == height - 1


def tx_at(pairs: list[Pair], height: int, index: int) -> dict[str, Any]:
    tx: dict[str, Any] = pairs[height - 1][0]["txs"][index]
    return tx


def test_the_untampered_chain_passes(s: Story) -> None:
    report = verify_pairs(s.genesis, s.pairs())
    assert report.ok, report.violation
    assert report.head is not None and report.head["height"] == 6
    assert report.txs == sum(len(txs) for txs in s.block_txs) == report.head["log_size"]
    assert sum(report.tx_types.values()) == report.txs
    assert report.tx_types["party.suspend"] == 1


def test_changed_amount_is_that_txs_bad_signature(s: Story) -> None:
    pairs = s.pairs()
    tx_at(pairs, 2, 1)["body"]["amount"] += 1
    check(verify_pairs(s.genesis, pairs), 2, "bad_signature", 1)


def test_changed_payee_is_that_txs_bad_signature(s: Story) -> None:
    pairs = s.pairs()
    assert tx_at(pairs, 3, 2)["type"] == "funds.disburse"
    tx_at(pairs, 3, 2)["body"]["payee"] = "Cousin's company"
    check(verify_pairs(s.genesis, pairs), 3, "bad_signature", 2)


def test_dropped_tx_is_bad_txs_root(s: Story) -> None:
    pairs = s.pairs()
    pairs[2][0]["txs"].pop()
    check(verify_pairs(s.genesis, pairs), 3, "bad_txs_root")


def test_two_swapped_txs_are_bad_txs_root(s: Story) -> None:
    pairs = s.pairs()
    txs = pairs[1][0]["txs"]
    txs[0], txs[1] = txs[1], txs[0]
    check(verify_pairs(s.genesis, pairs), 2, "bad_txs_root")


def test_dropped_block_is_bad_link_at_its_height(s: Story) -> None:
    pairs = s.pairs()
    del pairs[2]
    check(verify_pairs(s.genesis, pairs), 3, "bad_link")


@pytest.mark.parametrize("signers", [[0, 1], [3], []], ids=["f+1", "one", "none"])
def test_block_resigned_by_f_plus_1_or_fewer_is_bad_certificate(
    s: Story, signers: list[int]
) -> None:
    chain = s.chain_upto(2)
    # A rewritten block 3 (its last donation left out), valid in itself.
    forged = chain.add_block(s.block_txs[2][:-1], s.times[2], signers=signers)
    pairs = [*s.pairs()[:2], forged]
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="no_quorum")


def test_duplicated_validator_signature_is_bad_certificate(s: Story) -> None:
    pairs = s.pairs()
    votes = pairs[2][1]["votes"]
    pairs[2][1]["votes"] = [votes[0], votes[0], votes[1]]
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="duplicate_validator")


def test_certificate_for_another_round_is_bad_certificate(s: Story) -> None:
    pairs = s.pairs()
    pairs[2][1]["round"] += 1
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="bad_signature")


def test_certificate_of_the_next_block_is_bad_certificate(s: Story) -> None:
    pairs = s.pairs()
    pairs[2] = (pairs[2][0], pairs[3][1])
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="wrong_height")


def test_certificate_of_another_block_at_the_height_is_bad_certificate(s: Story) -> None:
    chain = s.chain_upto(2)
    other, other_cert = chain.add_block(s.block_txs[2][:-1], s.times[2])
    assert block_hash(other["header"]) != s.frozen_pairs[2][1]["block_hash"]
    pairs = s.pairs()
    pairs[2] = (pairs[2][0], other_cert)
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="wrong_block")


def test_prevotes_passed_off_as_precommits_are_bad_certificate(s: Story) -> None:
    chain = s.chain_upto(2)
    pairs = s.pairs()
    pairs[2] = (pairs[2][0], chain.certify(pairs[2][0], kind="prevote"))
    check(verify_pairs(s.genesis, pairs), 3, "bad_certificate", text="bad_signature")


def _forged(s: Story, at: int, txs: list[bytes]) -> list[Pair]:
    """The good chain up to `at` - 1, then a quorum-certified block `at` holding `txs`."""
    chain = s.chain_upto(at - 1)
    block = chain.forge_block(txs, s.times[at - 1] if at <= len(s.times) else None)
    return [*s.pairs()[: at - 1], (block, chain.certify(block))]


def test_tx_from_an_unregistered_signer_is_unknown_signer(s: Story) -> None:
    w = s.workload()
    good = w.donation("platform-1", "charity-1", 500)
    body = decode(good)["body"] | {"donation": "d-outsider"}
    bad = encode_tx(make_tx(s.genesis.chain_id, "donation.record", outsider(), body, 1))
    check(verify_pairs(s.genesis, _forged(s, 4, [good, bad])), 4, "unknown_signer", 1)


def test_tx_from_a_suspended_signer_is_signer_suspended(s: Story) -> None:
    w = s.workload()
    bad = w.disburse("charity-3", 100)
    check(verify_pairs(s.genesis, _forged(s, 7, [bad])), 7, "signer_suspended", 0)


def test_replayed_tx_is_duplicate_tx(s: Story) -> None:
    replay = s.block_txs[1][0]
    check(verify_pairs(s.genesis, _forged(s, 4, [replay])), 4, "duplicate_tx", 0)


def test_replayed_tx_within_one_block_is_duplicate_tx(s: Story) -> None:
    w = s.workload()
    fresh = w.donation("platform-2", "charity-2", 700)
    check(verify_pairs(s.genesis, _forged(s, 4, [fresh, fresh])), 4, "duplicate_tx", 1)


def test_overdraft_is_insufficient_funds(s: Story) -> None:
    w = s.workload()
    w.held[("charity-1", "general", "USD")] = 10**12
    bad = w.disburse("charity-1", 10**12)
    check(verify_pairs(s.genesis, _forged(s, 4, [bad])), 4, "insufficient_funds", 0)


def test_chain_of_another_genesis_does_not_link(s: Story) -> None:
    # Without a genesis declared by the source, block 1 simply does not link to ours.
    other, _ = local_genesis(extra_parties=[("charity-9", "charity")])
    report = verify_pairs(other, s.pairs())
    check(report, 1, "bad_link")
