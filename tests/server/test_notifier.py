"""`?wait=commit` waiters: woken by their tx's commit, released by the timeout, and
never left behind (a waiter per request that outlived it would grow without bound)."""

from __future__ import annotations

import asyncio

import pytest

from almoner.node.server.notifier import CommitNotifier

TX_A, TX_B = b"a" * 32, b"b" * 32


def test_a_commit_wakes_every_waiter_of_its_tx_only() -> None:
    async def scenario() -> None:
        notifier = CommitNotifier()
        first = asyncio.create_task(notifier.wait(TX_A, 5.0))
        second = asyncio.create_task(notifier.wait(TX_A, 5.0))
        other = asyncio.create_task(notifier.wait(TX_B, 0.05))
        await asyncio.sleep(0)
        notifier.committed([TX_A])
        assert await first is True
        assert await second is True
        assert await other is False  # its tx never committed: the timeout answers
        assert notifier._waiters == {}

    asyncio.run(scenario())


def test_a_timed_out_or_cancelled_waiter_is_removed() -> None:
    async def scenario() -> None:
        notifier = CommitNotifier()
        assert await notifier.wait(TX_A, 0.01) is False
        assert notifier._waiters == {}
        waiting = asyncio.create_task(notifier.wait(TX_B, 5.0))
        await asyncio.sleep(0)
        assert len(notifier._waiters[TX_B]) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert notifier._waiters == {}
        notifier.committed([TX_B])  # a commit after the waiter left is harmless

    asyncio.run(scenario())


def test_a_commit_racing_the_timeout_still_reads_as_committed() -> None:
    async def scenario() -> None:
        notifier = CommitNotifier()
        waiting = asyncio.create_task(notifier.wait(TX_A, 0.0))
        await asyncio.sleep(0)  # the waiter is registered; its timer is due now
        notifier.committed([TX_A])  # settles first: the timer then finds it done
        assert await waiting is True

    asyncio.run(scenario())
