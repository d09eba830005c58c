"""The per-peer transport over the in-process network: batching into signed envelopes, a
peer that is down, and a full queue, against a real node's API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from almoner.node.chain.codec import encode
from almoner.node.chain.store import MemoryStore
from almoner.node.server import transport as transport_module
from almoner.node.server.transport import Transport, _coalesce_txs
from tests.localchain import Workload, local_genesis
from tests.server.innet import InProcessNetwork, Network


def test_messages_reach_a_live_peer_as_signed_batches_and_a_dead_one_costs_nothing(
    tmp_path: Path,
) -> None:
    genesis, keys = local_genesis(4)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        net = Network(genesis, keys.validators, tmp_path)
        receiver = await net.start(1, MemoryStore())
        client = httpx.AsyncClient(transport=net.net, timeout=5)
        peers = {
            keys.validators[1].public_key: receiver.url,
            keys.validators[2].public_key: "http://v2.test",  # never started: unreachable
        }
        sender = Transport(genesis.chain_id, peers, keys.validators[0], client)
        sender.start()
        raws = [work.donation() for _ in range(5)]
        for raw in raws:
            sender.broadcast({"type": "txs", "txs": [raw]})
        mempool = receiver.runtime.mempool
        await net.wait_for(lambda: len(mempool) == 5, 10, "the gossiped txs")
        live = sender.peers[keys.validators[1].public_key]
        dead = sender.peers[keys.validators[2].public_key]
        await net.wait_for(lambda: dead.dropped == 5, 10, "the dead peer's batch to be dropped")
        assert live.up and live.sent == 5 and live.dropped == 0
        assert not dead.up and dead.failures == transport_module.SEND_ATTEMPTS
        assert "unreachable" in dead.last_error
        await sender.stop()
        await client.aclose()
        await net.close()

    asyncio.run(scenario())


def test_a_full_queue_drops_the_oldest_message() -> None:
    genesis, keys = local_genesis(4)

    async def scenario() -> None:
        client = httpx.AsyncClient(transport=InProcessNetwork())
        peer = keys.validators[1].public_key
        sender = Transport(genesis.chain_id, {peer: "http://v1.test"}, keys.validators[0], client)
        state = sender.peers[peer]  # not started: nothing drains the queue
        for i in range(transport_module.QUEUE_MAX + 3):
            sender.send_to(peer, {"type": "txs", "txs": [bytes([i % 256])]})
        assert state.queue.qsize() == transport_module.QUEUE_MAX and state.dropped == 3
        first, _ = state.queue.get_nowait()
        assert first["txs"] == [bytes([3])]
        await client.aclose()

    asyncio.run(scenario())


def test_gossiped_txs_of_a_batch_travel_as_one_message_after_the_consensus_ones() -> None:
    vote_a: dict[str, Any] = {"type": "vote", "vote": {"n": 1}}
    vote_b: dict[str, Any] = {"type": "vote", "vote": {"n": 2}}
    batch: list[tuple[dict[str, Any], bytes]] = [
        ({"type": "txs", "txs": [b"t1"]}, b""),
        (vote_a, encode(vote_a)),
        ({"type": "txs", "txs": [b"t2", b"t3"]}, b""),
        (vote_b, encode(vote_b)),
    ]
    merged = _coalesce_txs(batch)
    assert [msg for msg, _ in merged] == [
        vote_a,
        vote_b,
        {"type": "txs", "txs": [b"t1", b"t2", b"t3"]},
    ]
    assert [raw for _, raw in merged] == [encode(msg) for msg, _ in merged]
    single: list[tuple[dict[str, Any], bytes]] = [
        ({"type": "txs", "txs": [b"t1"]}, b"x"),
        (vote_a, encode(vote_a)),
    ]
    assert _coalesce_txs(single) == single  # nothing to merge: the batch as queued
