"""An event stream is woken by the commit itself: with the stream's periodic recheck pushed
out to a minute, a block committed while the stream waits still reaches it at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from almoner.node.chain.codec import H
from almoner.node.chain.store import MemoryStore
from almoner.node.server import events
from tests.localchain import Workload, local_genesis
from tests.server.innet import FAST_PARAMS, running

MSGPACK = {"content-type": "application/msgpack"}


def test_a_waiting_stream_gets_the_next_block_when_it_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "RECHECK_S", 60.0)
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(4):
                await net.start(i, MemoryStore())
            first = await net.client.post(
                "http://v0.test/v1/txs?wait=commit", content=work.donation(), headers=MSGPACK
            )
            assert first.status_code == 200, first.text
            head = first.json()["height"]
            await net.wait_for(lambda: min(net.heights().values()) >= head, 30, "all at head")
            params = {"from": str(head + 1), "until": str(head + 1)}
            stream = asyncio.create_task(net.client.get("http://v0.test/v1/events", params=params))
            await asyncio.sleep(0.3)
            assert not stream.done()  # nothing committed yet: the stream is waiting
            raw = work.donation()
            second = await net.client.post(
                "http://v1.test/v1/txs?wait=commit", content=raw, headers=MSGPACK
            )
            assert second.status_code == 200, second.text
            assert second.json()["height"] == head + 1
            # Far sooner than the 60 s recheck: only the commit's wake-up can end it.
            response = await asyncio.wait_for(stream, 10)
            assert response.status_code == 200
            assert f"id: {head + 1}\nevent: block\n" in response.text
            assert H(raw).hex() in response.text

    asyncio.run(scenario())
