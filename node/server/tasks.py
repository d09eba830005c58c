"""Stopping the node's background tasks, the one way every component does it."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel, then wait for each task to finish unwinding, then forget them.

    Tasks are cancelled only at their await points, so work between two awaits (a block
    commit is one synchronous call) always completes first.
    """
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
