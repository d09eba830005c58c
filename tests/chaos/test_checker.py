"""The history checker on chains built in-process: an honest history passes, and each
kind of damage a chaos run could cause (the negative controls) is caught and named."""

from __future__ import annotations

import itertools
from typing import Any

from almoner.node.chain.signing import block_hash, tx_id
from tests.chaos.checker import Chain, check_histories, forge
from tests.chaos.load import Ack
from tests.chaos.schedule import KINDS, build_schedule
from tests.localchain import LocalChain, Workload, local_genesis


def honest() -> tuple[Any, Chain, list[Ack]]:
    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators)
    work = Workload(genesis, keys)
    chain.add_block(work.opening())
    for _ in range(3):
        chain.add_block([work.donation() for _ in range(3)])
    blocks: Chain = list(chain.blocks())
    acks = [
        Ack(tx_id(tx).hex(), h, block_hash(b["header"]).hex(), "validator-0", 0.0)
        for h, (b, _) in enumerate(blocks, start=1)
        for tx in b["txs"]
    ]
    return genesis, blocks, acks


def test_an_honest_history_passes_with_lagging_prefixes() -> None:
    genesis, blocks, acks = honest()
    chains = {"a": blocks, "b": blocks, "c": blocks}
    assert check_histories(chains, genesis, acks) == []
    # A node behind the others is a prefix, fine unless it misses an acknowledged tx.
    early = [a for a in acks if a.height <= 2]
    assert check_histories({"a": blocks, "b": blocks[:2]}, genesis, early) == []
    found = check_histories({"a": blocks, "b": blocks[:2]}, genesis, acks)
    assert found and all("b: acknowledged tx" in v and "missing" in v for v in found)


def test_the_forged_history_is_caught() -> None:
    genesis, blocks, acks = honest()
    forged = forge({"a": blocks, "b": blocks}, acks)
    found = check_histories(forged, genesis, acks)
    assert any(v.startswith("b: acknowledged tx") for v in found), found
    assert any("tx_count does not match" in v for v in found), found
    assert any("do not hash to its txs_root" in v for v in found), found


def test_a_fork_a_bad_certificate_and_a_double_commit_are_caught() -> None:
    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators)
    work = Workload(genesis, keys)
    first = chain.add_block(work.opening())
    fork_block = chain.forge_block([work.donation()])
    weak = chain.certify(fork_block, signers=[0, 1])  # two of four: no quorum
    found = check_histories(
        {
            "a": [first],
            "b": [first, (fork_block, weak)],
            "c": [first, chain.add_block([work.donation()])],
        },
        genesis,
        [],
    )
    assert any(v.startswith("fork: b and c differ at height 2") for v in found), found
    assert any("b: certificate of block 2 does not verify" in v for v in found), found
    block, cert = first
    twice = check_histories(
        {"a": [first, ({**block, "header": block["header"]}, cert)]}, genesis, []
    )
    assert any("committed 2 times" in v for v in twice), twice


def test_missing_equivocation_evidence_is_a_violation() -> None:
    genesis, blocks, acks = honest()
    culprit = "ab" * 32
    found = check_histories({"a": blocks}, genesis, acks, [culprit], {"a": []})
    assert found == [f"a: no committed evidence names equivocator {culprit[:16]}"]
    assert check_histories({"a": blocks}, genesis, acks, [culprit], {"a": [culprit]}) == []


def test_the_schedule_is_seeded_bounded_and_covers_every_kind() -> None:
    names = [f"validator-{i}" for i in range(4)]
    first = build_schedule(7, 120, names)
    assert first == build_schedule(7, 120, names)
    assert first != build_schedule(8, 120, names)
    assert all(f.start + f.length <= 120 for f in first)
    assert all(b.start >= a.start + a.length for a, b in itertools.pairwise(first))
    assert {f.kind for f in build_schedule(3, 3600, names)} == set(KINDS)
