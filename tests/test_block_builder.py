"""A block built ahead, on a parent that is executed but not committed, is exactly the
block built after that parent commits; one built on a parent that lost is never
finished. Real LevelDB stores, compared key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from almoner.node.chain import ledger as ledger_module
from almoner.node.chain.codec import H
from almoner.node.chain.ledger import BlockError, ExecutedBlock
from almoner.node.chain.store import LevelStore
from tests.localchain import LocalChain, Workload, local_genesis

MAX_TXS, MAX_BYTES = 1000, 1 << 22


def two_chains(tmp_path: Path) -> tuple[LocalChain, LocalChain, Workload]:
    genesis, keys = local_genesis(4)
    chains = [
        LocalChain(genesis, keys.validators, LevelStore(tmp_path / name)) for name in ("a", "b")
    ]
    return chains[0], chains[1], Workload(genesis, keys)


def execute_next(chain: LocalChain, raws: list[bytes]) -> ExecutedBlock:
    executed = chain.ledger.build_block(
        raws,
        time_ms=chain.next_time(),
        proposer=chain.proposer(chain.height + 1),
        max_txs=MAX_TXS,
        max_bytes=MAX_BYTES,
    )
    assert not executed.rejected
    return executed


def commit(chain: LocalChain, executed: ExecutedBlock) -> None:
    chain.ledger.commit(executed, chain.certify(executed.block))


def everything(chain: LocalChain) -> list[tuple[bytes, bytes]]:
    return list(chain.ledger.store.iterate(b""))


def test_a_block_built_ahead_is_the_block_built_after_its_parent_commits(tmp_path: Path) -> None:
    ahead_chain, plain_chain, work = two_chains(tmp_path)
    opening = work.opening() + [work.donation(amount=5_000) for _ in range(3)]
    for chain in (ahead_chain, plain_chain):
        commit(chain, execute_next(chain, opening))
    # The parent records a donation; the next block confirms it and spends from the fund
    # the parent filled, and one tx reuses the parent's donation id (refused in both).
    recorded = work.donation(donation_id="ahead-1", amount=9_000)
    parent_txs = [recorded, work.donation()]
    children = [
        work.confirm("platform-1", "ahead-1", "charity-1"),
        work.disburse("charity-1", 20_000),
        work.donation(donation_id="ahead-1", amount=1),
        *work.mixed(40),
    ]
    parent = execute_next(ahead_chain, parent_txs)
    builder = ahead_chain.ledger.builder(max_txs=MAX_TXS, max_bytes=MAX_BYTES, on=parent)
    builder.add(children[:10] + parent_txs)  # the parent's own txs are skipped
    commit(ahead_chain, parent)  # writes the parent's indexes while the builder holds a copy
    builder.add(children)  # topped up after the commit; the first ten are not run twice
    time_ms, proposer = ahead_chain.next_time(), ahead_chain.proposer(ahead_chain.height + 1)
    ahead = builder.finish(time_ms=time_ms, proposer=proposer)

    commit(plain_chain, execute_next(plain_chain, parent_txs))
    plain = plain_chain.ledger.build_block(
        children, time_ms=time_ms, proposer=proposer, max_txs=MAX_TXS, max_bytes=MAX_BYTES
    )
    assert ahead.block == plain.block and ahead.block_hash == plain.block_hash
    assert [tid for tid, _ in ahead.rejected] == [H(children[2])]
    assert [e.code for _, e in ahead.rejected] == [e.code for _, e in plain.rejected]
    assert builder.ahead and len(ahead.tx_ids) == len(children) - 1
    commit(ahead_chain, ahead)
    commit(plain_chain, plain)
    assert everything(ahead_chain) == everything(plain_chain)


def test_a_block_built_on_a_parent_that_lost_is_never_finished(tmp_path: Path) -> None:
    chain, _, work = two_chains(tmp_path)
    commit(chain, execute_next(chain, work.opening()))
    loser = execute_next(chain, [work.donation()])
    builder = chain.ledger.builder(max_txs=MAX_TXS, max_bytes=MAX_BYTES, on=loser)
    builder.add([work.donation()])
    commit(chain, execute_next(chain, [work.donation()]))  # another block won the height
    with pytest.raises(BlockError) as refused:
        builder.finish(time_ms=chain.next_time(), proposer=chain.proposer(chain.height + 1))
    assert refused.value.rule == "bad_link"
    with pytest.raises(BlockError):  # nor can one start on a block that does not extend it
        chain.ledger.builder(max_txs=MAX_TXS, max_bytes=MAX_BYTES, on=loser)


def test_a_builder_stops_when_full_and_reports_each_refusal_once(tmp_path: Path) -> None:
    chain, _, work = two_chains(tmp_path)
    commit(chain, execute_next(chain, work.opening()))
    builder = chain.ledger.builder(max_txs=3, max_bytes=1 << 20)
    twice = work.donation(donation_id="same")
    raws = [work.donation(), twice, work.donation(donation_id="same", amount=2), work.donation()]
    builder.add(raws[:3])
    builder.add(raws)
    assert len(builder.tx_ids) == 3 and builder.full
    assert [tid for tid, _ in builder.take_rejected()] == [H(raws[2])]
    assert builder.take_rejected() == []


def test_a_fill_looks_only_at_candidates_it_has_not_seen(tmp_path: Path) -> None:
    """Refilling with the whole pending pool hashes only the new candidates: a fill's
    work follows what arrived, not what is pending (it was O(pending) per fill)."""
    chain, _, work = two_chains(tmp_path)
    commit(chain, execute_next(chain, work.opening()))
    txs = [work.donation() for _ in range(40)]
    builder = chain.ledger.builder(max_txs=MAX_TXS, max_bytes=MAX_BYTES)
    builder.add(txs[:30])
    assert builder.unseen(txs) == 10
    hashed: list[bytes] = []

    def counting_h(data: bytes) -> bytes:
        hashed.append(data)
        return H(data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_module, "H", counting_h)
        builder.add(txs[:31])
    assert hashed[0] == txs[30] and txs[0] not in hashed  # the 30 seen: not hashed again
    assert builder.unseen(txs) == 9 and len(builder.tx_ids) == 31
