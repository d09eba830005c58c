"""A bug met by the driver costs one group of events, never the validator: the node keeps
voting after it; and if a driver task ends anyway, the node says so on /healthz instead
of answering 200 while it never votes again (three of four then stall without a word)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from almoner.node.chain.store import LevelStore
from almoner.node.server.driver import Driver, PeerMessage, Tick
from tests.localchain import Workload, local_genesis
from tests.server.innet import FAST_PARAMS, Network, running

MSGPACK = {"content-type": "application/msgpack"}


@contextlib.asynccontextmanager
async def four_validators(tmp_path: Path) -> AsyncIterator[tuple[Network, Workload]]:
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    async with running(genesis, keys.validators, tmp_path) as net:
        for i in range(4):
            await net.start(i, LevelStore(tmp_path / f"store-{i}"))
        yield net, Workload(genesis, keys)


def driver_of(net: Network, index: int) -> Driver:
    driver = net.nodes[index].runtime.driver
    assert driver is not None
    return driver


async def commit_on(net: Network, node: int, raw: bytes) -> int:
    response = await net.client.post(
        f"http://v{node}.test/v1/txs?wait=commit", content=raw, headers=MSGPACK
    )
    assert response.status_code == 200, response.text
    height: int = response.json()["height"]
    return height


def test_an_error_in_a_group_of_events_costs_that_group_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with four_validators(tmp_path) as (net, work):
            net.net.cut.add("v3.test")  # node 1 is then needed for every quorum
            driver = driver_of(net, 1)
            real_admit = driver._admit_gossip
            failures: list[Any] = []

            def admit_once_broken(event: PeerMessage) -> None:
                if not failures:
                    failures.append(event)
                    raise RuntimeError("a bug reached by gossiped txs")
                real_admit(event)

            driver._admit_gossip = admit_once_broken  # type: ignore[method-assign]
            for _ in range(3):
                await commit_on(net, 0, work.donation())
            assert failures, "the broken admission was reached"
            counters = net.nodes[1].runtime.metrics.counters
            assert counters.get(("almoner_driver_errors_total", ()), 0) >= 1
            assert driver.fatal is None
            health = await net.client.get("http://v1.test/healthz")
            assert health.status_code == 200

    asyncio.run(scenario())


class _BrokenInbox(asyncio.Queue[Tick | PeerMessage]):
    async def get(self) -> Tick | PeerMessage:
        raise RuntimeError("the inbox broke")


def test_a_driver_task_that_ends_turns_healthz_unhealthy(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with four_validators(tmp_path) as (net, _):
            driver = driver_of(net, 2)
            inbox = driver.inbox
            driver.inbox = _BrokenInbox()  # type: ignore[assignment]
            inbox.put_nowait(Tick())  # the loop takes this one, then meets the broken inbox
            await net.wait_for(lambda: driver.fatal is not None, 10, "the driver to stop")
            assert "the driver task ended" in (driver.fatal or "")
            assert "the inbox broke" in (driver.fatal or "")
            health = await net.client.get("http://v2.test/healthz")
            assert health.status_code == 503
            assert "the inbox broke" in health.json()["error"]["message"]
            assert driver.machine is None  # nothing more is signed
            healthy = await net.client.get("http://v0.test/healthz")
            assert healthy.status_code == 200

    asyncio.run(scenario())


def test_a_fetched_batch_is_queued_whole_or_not_at_all(tmp_path: Path) -> None:
    """Catch-up hands the driver a batch of blocks. Without room for all of it, none is
    queued: a batch cut short would leave its later blocks unlinkable, refused, and
    counted against the honest peer that sent them."""

    async def scenario() -> None:
        async with four_validators(tmp_path) as (net, work):
            await commit_on(net, 0, work.donation())
            ledger = net.nodes[0].runtime.ledger
            item = (ledger.block_at(1), ledger.certificate_at(1))
            driver = driver_of(net, 3)
            await net.stop(3)  # its tasks no longer take from the inbox
            for _ in range(driver.inbox.maxsize - driver.inbox.qsize() - 2):
                driver.inbox.put_nowait(Tick())
            assert not driver.deliver_blocks([item] * 3, "http://v0.test")
            assert driver.inbox.qsize() == driver.inbox.maxsize - 2
            assert driver.deliver_blocks([item] * 2, "http://v0.test")
            assert driver.inbox.full()

    asyncio.run(scenario())
