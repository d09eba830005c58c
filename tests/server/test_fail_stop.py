"""The double-sign hazard: a write that fails stops the validator before anything that
depends on it is sent, /healthz says so, and a restart on a healthy store resumes
without signing two different messages for one (height, round, kind).

The store is real LevelDB; its backend is made to fail at one chosen write (the consensus
state save, or the block commit), the way a full or failing disk does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

from almoner.consensus import Message, PersistedState, parse_message
from almoner.node.chain import schema
from almoner.node.chain.codec import H, decode
from almoner.node.chain.store import LevelStore, MemoryStore
from almoner.node.server.driver import CONSENSUS_STATE_KEY
from tests.localchain import Workload, local_genesis
from tests.server.innet import FAST_PARAMS, FaultyStore, Network, Node, running

MSGPACK = {"content-type": "application/msgpack"}
RESEND_PERIOD_S = 2.0  # consensus.Params.rebroadcast_ms


def own_messages(record_bytes: bytes | None) -> set[Message]:
    if record_bytes is None:
        return set()
    return set(PersistedState.from_record(decode(record_bytes)).own)


def precommit_save_at(height: int) -> Callable[[Mapping[bytes, bytes | None]], bool]:
    def fails(changes: Mapping[bytes, bytes | None]) -> bool:
        raw = changes.get(CONSENSUS_STATE_KEY)
        if raw is None:
            return False
        record = decode(raw)
        own = [parse_message(m) for m in record["own"]]
        return record["height"] >= height and any(m.kind == "precommit" for m in own)

    return fails


def first_block_commit(changes: Mapping[bytes, bytes | None]) -> bool:
    """Any block commit: whether a heartbeat block comes before the donation's is timing."""
    return any(key.startswith(schema.BLOCK) for key in changes)


def refused_height(store: FaultyStore) -> int:
    assert store.refused is not None
    (key,) = [k for k in store.refused if k.startswith(schema.BLOCK)]
    return int.from_bytes(key[len(schema.BLOCK) :], "big")


async def assert_stopped_and_silent(net: Network, node: Node, store: FaultyStore) -> None:
    """The driver stopped, /healthz is 503, and nothing more leaves this validator."""
    runtime = node.runtime
    driver, transport = runtime.driver, runtime.transport
    assert driver is not None and transport is not None
    await net.wait_for(lambda: driver.fatal is not None, 20, "the driver to stop")
    assert "No space left on device" in (driver.fatal or "")
    health = await net.client.get(node.url + "/healthz")
    assert health.status_code == 503
    assert health.json()["error"]["code"] == "unhealthy"
    assert (await net.client.get(node.url + "/v1/status")).status_code == 200  # still serves
    await net.wait_for(
        lambda: all(p.queue.empty() for p in transport.peers.values()), 10, "queues to drain"
    )
    await asyncio.sleep(0.3)
    before = net.net.wire.of(node.key.public_key)
    await asyncio.sleep(RESEND_PERIOD_S + 1.0)  # a live machine would have re-sent by now
    assert net.net.wire.of(node.key.public_key) == before, "a message left after the failure"
    # Everything it sent at the failing height is in the record that reached the disk.
    durable = own_messages(store.durable(CONSENSUS_STATE_KEY))
    height = runtime.ledger.head.height + 1
    me = node.key.public_key
    sent_now = {m for m in before if m.height == height and m.sender == me}
    assert sent_now <= durable


def test_a_failed_state_save_stops_before_the_precommit_leaves_and_a_restart_resumes(
    tmp_path: Path,
) -> None:
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in (0, 2, 3):
                await net.start(i, MemoryStore())
            store = FaultyStore(tmp_path / "v1", precommit_save_at(2))
            node = await net.start(1, store)
            await net.wait_for(lambda: min(net.heights().values()) >= 1, 20, "height 1")
            # Without validator 3, height 2 needs validator 1: it cannot be decided while
            # validator 1 is down, so the restart must resume height 2 from its record.
            net.net.cut.add("v3.test")
            tx = work.donation()
            response = await net.client.post("http://v0.test/v1/txs", content=tx, headers=MSGPACK)
            assert response.status_code == 202, response.text
            await assert_stopped_and_silent(net, node, store)
            assert store.refused is not None
            refused = own_messages(store.refused[CONSENSUS_STATE_KEY])
            never_durable = refused - own_messages(store.durable(CONSENSUS_STATE_KEY))
            assert {m.kind for m in never_durable} == {"precommit"}
            assert not never_durable & set(net.net.wire.of(node.key.public_key))
            assert {m.kind for m in own_messages(store.durable(CONSENSUS_STATE_KEY))} >= {"prevote"}
            assert net.nodes[0].runtime.ledger.head.height == 1  # stalled without it

            await net.stop(1)
            restarted = await net.start(1, LevelStore(tmp_path / "v1"))
            machine = restarted.runtime.driver.machine if restarted.runtime.driver else None
            assert machine is not None and machine.height == 2
            await net.wait_for(
                lambda: all(net.nodes[i].runtime.ledger.head.height >= 2 for i in (0, 1, 2)),
                30,
                "height 2 decided after the restart",
            )
            assert net.net.wire.equivocations() == []
            response = await net.client.get(f"http://v1.test/v1/txs/{work_tx_id(tx)}")
            assert response.json()["status"] == "committed"
            assert (await net.client.get("http://v1.test/healthz")).status_code == 200

    asyncio.run(scenario())


def test_a_failed_block_commit_stops_the_validator_and_a_restart_catches_up(
    tmp_path: Path,
) -> None:
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in (0, 1, 3):
                await net.start(i, MemoryStore())
            store = FaultyStore(tmp_path / "v2", first_block_commit)
            node = await net.start(2, store)
            response = await net.client.post(
                "http://v0.test/v1/txs?wait=commit", content=work.donation(), headers=MSGPACK
            )
            assert response.status_code == 200, response.text
            await assert_stopped_and_silent(net, node, store)
            # the failed batch left nothing: the head is the block before it
            assert node.runtime.ledger.head.height == refused_height(store) - 1

            await net.stop(2)
            await net.start(2, LevelStore(tmp_path / "v2"))
            response = await net.client.post(
                "http://v2.test/v1/txs?wait=commit", content=work.donation(), headers=MSGPACK
            )
            assert response.status_code == 200, response.text
            height = response.json()["height"]
            await net.wait_for(
                lambda: min(net.heights().values()) >= height, 30, "all at the new block"
            )
            assert net.net.wire.equivocations() == []
            assert (await net.client.get("http://v2.test/healthz")).status_code == 200

    asyncio.run(scenario())


def work_tx_id(raw: bytes) -> str:
    return H(raw).hex()
