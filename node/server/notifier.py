"""Wake HTTP requests waiting (`?wait=commit`) for their tx to be committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class CommitNotifier:
    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}

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

    def committed(self, tx_ids: Iterable[bytes]) -> None:
        for tx_id in tx_ids:
            for future in self._waiters.pop(tx_id, []):
                if not future.done():
                    future.set_result(None)
