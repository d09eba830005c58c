"""Pipelining: the next height's block, built while the height before it is decided.

A validator that will propose the next height's first round starts that block as soon as
it has executed the block being decided, on a private copy of that block's effects
(`Ledger.builder(on=...)`), while the votes are exchanged and the block commits. Txs
admitted meanwhile are run into it as they come: more than `inline_txs` at once on the
builder thread, fewer on the event loop, where the two thread hand-offs would cost more
than the work. When its turn comes little or nothing is left to run, so the build is off
the height's critical path. If another block is decided, the block built ahead is dropped
unused. The builder only reads the store: while the parent commits on the store worker,
the builder sees the parent's effects in its private copy, and LevelDB serves reads safely
beside a write.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from almoner.consensus.messages import proposer_index
from almoner.node.chain.ledger import BlockBuilder, ExecutedBlock, Ledger
from almoner.node.server.mempool import Mempool

log = logging.getLogger("almoner.driver")  # operators know these lines as the driver's


@dataclass(frozen=True)
class Ahead:
    """The next height's block, started on an executed block not yet committed."""

    builder: BlockBuilder
    filled: asyncio.Future[None]  # its latest fill, run on the builder thread

    @property
    def parent(self) -> bytes:
        """The hash of the block it extends."""
        return self.builder.parent.block_hash


class BlockAhead:
    """At most one block built ahead, and the thread that fills it. Driven by the
    consensus driver's one task: not thread-safe."""

    def __init__(
        self, ledger: Ledger, mempool: Mempool, params: dict[str, Any], inline_txs: int
    ) -> None:
        self._ledger = ledger
        self._mempool = mempool
        self._max_txs: int = params["max_block_txs"]
        self._max_bytes: int = params["max_block_bytes"]
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="almoner-builder")
        self._inline_txs = inline_txs
        self._ahead: Ahead | None = None

    async def close(self) -> None:
        await asyncio.to_thread(self._worker.shutdown, True, cancel_futures=True)

    def start(self, executed: ExecutedBlock, me: bytes) -> None:
        """If `me` proposes the first round after `executed`, start that block now. The
        set for that height may still change with this block: then the guess is wrong and
        costs only the build (`BlockBuilder.finish` checks)."""
        if not len(self._mempool):
            return
        if self._ahead is not None and self._ahead.parent == executed.block_hash:
            return
        height = executed.height + 1
        validators = self._ledger.validators(height)
        if validators[proposer_index(height, 0, len(validators))] != me:
            return
        builder = self._ledger.builder(
            max_txs=self._max_txs, max_bytes=self._max_bytes, on=executed
        )
        self._ahead = Ahead(builder, self._filling(builder))

    def fill(self) -> None:
        """Txs were admitted while the height is decided: into the block built ahead with
        them (one fill at a time; a failed fill drops that block)."""
        ahead = self._ahead
        if ahead is None or not ahead.filled.done() or ahead.builder.full:
            return
        failed = ahead.filled.cancelled() or ahead.filled.exception()
        if failed:
            log.error("the block built ahead failed (%r); it will be built anew", failed)
            self._ahead = None
            return
        self._ahead = Ahead(ahead.builder, self._filling(ahead.builder))

    def keep(self, builder: BlockBuilder) -> None:
        """A builder taken to propose, with nothing to propose yet: fill it further."""
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self._ahead = Ahead(builder, done)

    async def take(self) -> BlockBuilder:
        """The block built ahead on the block that became the head, or a new one."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.parent == self._ledger.head.block_hash:
            try:
                await ahead.filled
            except Exception:  # a bug in the build ahead must not stop proposing
                log.exception("the block built ahead failed; building it again")
            else:
                return ahead.builder
        return self._ledger.builder(max_txs=self._max_txs, max_bytes=self._max_bytes)

    def committed(self, block_hash: bytes) -> None:
        """Drop the block built ahead if it extends a block that lost."""
        if self._ahead is not None and self._ahead.parent != block_hash:
            self._ahead = None

    def _filling(self, builder: BlockBuilder) -> asyncio.Future[None]:
        """Run the pending txs it has not seen into the block built ahead: a few here, more
        on the builder thread. The verified-ids view is live: membership tests only, as
        the store worker does."""
        loop = asyncio.get_running_loop()
        candidates = self._mempool.candidates()
        if builder.unseen(candidates) > self._inline_txs:
            return loop.run_in_executor(
                self._worker, builder.add, candidates, self._mempool.verified_ids()
            )
        filled = loop.create_future()
        try:
            builder.add(candidates, self._mempool.verified_ids())
        except Exception as exc:  # reported where the block built ahead is used
            filled.set_exception(exc)
        else:
            filled.set_result(None)
        return filled
