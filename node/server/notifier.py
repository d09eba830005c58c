"""Wake HTTP requests waiting for a commit: `?wait=commit` for its tx, event streams for
any block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class CommitNotifier:
    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[bool]]] = {}
        self._block: asyncio.Event | None = None  # set by the next commit, then replaced

    async def wait(self, tx_id: bytes, timeout_s: float) -> bool:
        """True once `tx_id` is committed, False on timeout (the tx stays pending).

        The future is awaited directly and a timer settles it on timeout: every
        `?wait=commit` request waits here, and `asyncio.wait_for` costs a second future
        and an extra wake-up for each."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiters.setdefault(tx_id, []).append(future)
        timer = loop.call_later(timeout_s, _settle, future, False)
        try:
            return await future
        finally:
            timer.cancel()
            waiters = self._waiters.get(tx_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(future)
                if not waiters:
                    del self._waiters[tx_id]

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
                _settle(future, True)


def _settle(future: asyncio.Future[bool], committed: bool) -> None:
    if not future.done():
        future.set_result(committed)
