"""Wake HTTP requests waiting for a commit: `?wait=commit` for its tx, event streams for
any block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class CommitNotifier:
    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._block: asyncio.Event | None = None  # set by the next commit, then replaced

    async def wait(self, tx_id: bytes, timeout_s: float) -> bool:
        """True once `tx_id` is committed, False on timeout (the tx stays pending)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(tx_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(future)
                if not waiters:
                    del self._waiters[tx_id]
        return True

    async def wait_block(self, timeout_s: float) -> None:
        """Return once the next block is committed, or after `timeout_s` in any case."""
        if self._block is None:
            self._block = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._block.wait(), timeout_s)

    def committed(self, tx_ids: Iterable[bytes]) -> None:
        """Called once per committed block, with its txs."""
        if self._block is not None:
            self._block.set()
            self._block = None
        for tx_id in tx_ids:
            for future in self._waiters.pop(tx_id, []):
                if not future.done():
                    future.set_result(None)
