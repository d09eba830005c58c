"""The block built ahead (node/server/ahead.py): started only by the next height's
round-0 proposer, filled with the txs admitted while the height before is decided, on the
builder thread when there are many, and dropped when the block it extends loses. Real
LevelDB, a real mempool."""

from __future__ import annotations

import asyncio
from pathlib import Path

from almoner.node.chain.ledger import BlockBuilder, ExecutedBlock
from almoner.node.chain.store import LevelStore
from almoner.node.server.ahead import BlockAhead
from almoner.node.server.mempool import Mempool
from tests.localchain import LocalChain, Workload, local_genesis

INLINE = 4


class Setup:
    def __init__(self, tmp: Path) -> None:
        genesis, self.keys = local_genesis(4)
        self.chain = LocalChain(genesis, self.keys.validators, LevelStore(tmp / "chain"))
        self.work = Workload(genesis, self.keys)
        self.chain.add_block(self.work.opening())
        self.ledger = self.chain.ledger
        self.mempool = Mempool(self.ledger, 10_000, 1 << 26)
        self.ahead = BlockAhead(self.ledger, self.mempool, genesis.params, INLINE)

    def execute_next(self) -> ExecutedBlock:
        """The block being decided: executed, not committed."""
        chain = self.chain
        return self.ledger.build_block(
            [self.work.donation()],
            time_ms=chain.next_time(),
            proposer=chain.proposer(chain.height + 1),
            max_txs=100,
            max_bytes=1 << 22,
        )

    def admit(self, count: int) -> list[bytes]:
        return [self.mempool.add(self.work.donation()).tx_id for _ in range(count)]

    def commit(self, executed: ExecutedBlock) -> None:
        self.ledger.commit(executed, self.chain.certify(executed.block))
        self.mempool.on_commit(executed.tx_ids)
        self.ahead.committed(executed.block_hash)


def proposer_after(setup: Setup, executed: ExecutedBlock) -> bytes:
    return setup.chain.proposer(executed.height + 1)


def test_the_next_proposer_builds_ahead_and_proposes_what_came_meanwhile(tmp_path: Path) -> None:
    async def scenario() -> None:
        setup = Setup(tmp_path)
        first = setup.admit(2)
        executed = setup.execute_next()
        setup.ahead.start(executed, proposer_after(setup, executed))
        later = setup.admit(INLINE + 3)  # more than inline: filled on the builder thread
        setup.ahead.fill()
        setup.commit(executed)
        builder = await setup.ahead.take()
        assert builder.ahead and builder.parent.block_hash == executed.block_hash
        assert builder.tx_ids == first + later
        try:
            built = builder.finish(time_ms=setup.chain.next_time(), proposer=b"\x01" * 32)
            assert built.height == executed.height + 1
        finally:
            await setup.ahead.close()

    asyncio.run(scenario())


async def taken_after(
    setup: Setup, built_on: ExecutedBlock, me: bytes, decided: ExecutedBlock
) -> BlockBuilder:
    """What `me` proposes from, once `decided` commits, having built ahead on `built_on`."""
    setup.ahead.start(built_on, me)
    setup.commit(decided)
    try:
        return await setup.ahead.take()
    finally:
        await setup.ahead.close()


def test_another_validator_builds_nothing_ahead(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.admit(3)
    executed = setup.execute_next()
    proposer = proposer_after(setup, executed)
    other = next(k.public_key for k in setup.keys.validators if k.public_key != proposer)
    builder = asyncio.run(taken_after(setup, executed, other, executed))
    assert not builder.ahead and builder.tx_ids == []


def test_a_block_built_on_a_block_that_lost_is_dropped(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.admit(3)
    lost = setup.execute_next()
    won = setup.execute_next()  # another block for the same height is decided
    assert won.block_hash != lost.block_hash
    builder = asyncio.run(taken_after(setup, lost, proposer_after(setup, lost), won))
    assert not builder.ahead and builder.parent.block_hash == won.block_hash
