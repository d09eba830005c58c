"""Four real validators in one process decide blocks over the in-memory network: driver,
transport, p2p envelopes, mempool gossip, catch-up and the API, without sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from almoner.node.chain.certified import BLOCKS_PATH
from almoner.node.chain.codec import MSGPACK, H, array_header
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore, MemoryStore
from almoner.node.server.catchup import CatchUp
from almoner.node.server.transport import PeerState
from tests.localchain import Workload, local_genesis
from tests.server.innet import FAST_PARAMS, Network, host, running


def test_four_validators_commit_the_same_blocks(tmp_path: Path) -> None:
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(4):
                await net.start(i, MemoryStore())
            # A tx submitted to one node is gossiped, proposed by whoever's turn it is,
            # and committed everywhere; wait=commit answers with the receipt.
            height = await net.submit_and_wait(work.donation(), node=2)
            await net.wait_for(
                lambda: min(net.heights().values()) >= height, 20, "every node at the tx's block"
            )
            blocks = [n.runtime.ledger.block_at(height) for n in net.nodes.values()]
            assert blocks[0] is not None and all(b == blocks[0] for b in blocks)
            status = (await net.client.get("http://v0.test/v1/status")).json()
            assert status["validator"] is True and status["height"] >= height
            assert all(p["up"] for p in status["peers"].values())
            assert net.net.wire.equivocations() == []

    asyncio.run(scenario())


def test_a_node_cut_off_catches_up_when_it_returns(tmp_path: Path) -> None:
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(4):
                await net.start(i, LevelStore(tmp_path / f"store-{i}"))
            net.net.cut.add("v3.test")  # three of four still make a quorum
            for _ in range(12):
                await net.submit_and_wait(work.donation())
            target = net.nodes[0].runtime.ledger.head.height
            behind = target - net.nodes[3].runtime.ledger.head.height
            assert behind >= 12
            net.net.cut.clear()
            await net.wait_for(
                lambda: net.nodes[3].runtime.ledger.head.height >= target, 30, "node 3 to catch up"
            )
            # One batch fetch covers them all (at most one more, if a height is decided
            # meanwhile), not a fetch per block: the driver is given time to apply a batch.
            fetches = sum(net.net.requests[(host(i), BLOCKS_PATH)] for i in range(3))
            assert 1 <= fetches <= 2, fetches
            assert net.nodes[3].runtime.ledger.block_at(target) == net.nodes[
                0
            ].runtime.ledger.block_at(target)

    asyncio.run(scenario())


def test_blocks_are_built_ahead_while_the_height_before_is_decided(tmp_path: Path) -> None:
    """Under a steady stream of submissions the next proposer starts its block before the
    block it extends commits (pipelining). Whether a block was built ahead or not, every
    node commits the same blocks, every acknowledged tx is in them, and nobody signs two
    votes for one step."""
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    def built_ahead(net: Network) -> float:
        return sum(
            n.runtime.metrics.counters.get(("almoner_blocks_built_ahead_total", ()), 0)
            for n in net.nodes.values()
        )

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(4):
                await net.start(i, LevelStore(tmp_path / f"store-{i}"))
            heights: list[int] = []
            for _ in range(30):  # bounded: a working pipeline shows up in the first waves
                wave = [net.submit_and_wait(work.donation(), node=i % 4) for i in range(12)]
                heights += await asyncio.gather(*wave)
                if built_ahead(net) >= 2:
                    break
            assert built_ahead(net) >= 2
            top = max(heights)
            await net.wait_for(lambda: min(net.heights().values()) >= top, 20, "all at the top")
            for height in range(1, top + 1):
                blocks = [n.runtime.ledger.block_at(height) for n in net.nodes.values()]
                assert blocks[0] is not None and all(b == blocks[0] for b in blocks)
            assert net.nodes[0].runtime.ledger.head.log_size >= len(heights)
            assert net.net.wire.equivocations() == []

    asyncio.run(scenario())


def test_catch_up_asks_the_status_only_of_peers_not_heard_in_consensus(tmp_path: Path) -> None:
    """While consensus runs, each validator's own votes tell its peers its height, so
    catch-up sends no status request to it; a peer that has gone quiet is still asked."""
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(4):
                await net.start(i, MemoryStore())
            await net.stop(3)  # quiet from now on; three of four still decide
            await net.submit_and_wait(work.donation())
            peers = net.nodes[0].runtime.transport.peers  # type: ignore[union-attr]
            head = net.nodes[0].runtime.ledger.head.height
            for i in (1, 2):
                assert peers[keys.validators[i].public_key].height >= head - 1
            net.net.requests.clear()
            loop = asyncio.get_running_loop()
            until = loop.time() + 2.5  # five catch-up rounds, each well inside 1 s of a vote
            while loop.time() < until:
                await net.submit_and_wait(work.donation())
            asked = {h: n for (h, path), n in net.net.requests.items() if path == "/v1/status"}
            assert asked.get("v3.test", 0) >= 3 * 3, asked  # three nodes, a round each 0.5 s
            assert {h: n for h, n in asked.items() if h != "v3.test"} == {}, asked
            assert not peers[keys.validators[3].public_key].up

    asyncio.run(scenario())


def test_a_proposer_waits_for_the_clients_its_last_commit_answered(tmp_path: Path) -> None:
    """After a commit of n txs the proposer holds the next proposal until n more txs have
    arrived (node/server/gather.py), so clients answered together ride in one block. The
    window here is long (10 s), so what ends each wait below is an arrival, not the clock."""
    genesis, keys = local_genesis(1, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    async def scenario() -> None:
        settings = {"propose_gather_ms": 10_000}
        async with running(genesis, keys.validators, tmp_path, settings) as net:
            runtime = (await net.start(0, MemoryStore())).runtime
            ledger, loop = runtime.ledger, asyncio.get_running_loop()

            def tx_count(height: int) -> int:
                block = ledger.block_at(height)
                assert block is not None
                return len(block["txs"])

            # A lone client: its next tx is the one arrival its commit waits for.
            for height in (1, 2):
                started = loop.time()
                assert await net.submit_and_wait(work.donation()) == height
                assert loop.time() - started < 5, "a lone client waited for the window"
                assert tx_count(height) == 1
            # Two txs in one request: the first arrival ends the wait, both ride together.
            pair = [work.donation(), work.donation()]
            body = array_header(len(pair)) + b"".join(pair)
            answer = await net.client.post(
                "http://v0.test/v1/txs/batch",
                content=body,
                headers={"content-type": MSGPACK},
            )
            assert answer.status_code == 200, answer.text
            await net.wait_for(lambda: ledger.head.height >= 3, 5, "the pair's block")
            assert tx_count(3) == 2
            # Two clients answered by that block: the first one back waits for the second.
            first, second = work.donation(), work.donation()
            waiting = asyncio.create_task(net.submit_and_wait(first))
            await net.wait_for(lambda: H(first) in runtime.mempool, 5, "the first tx pending")
            await asyncio.sleep(0.3)
            assert ledger.head.height == 3 and ledger.tx_location(H(first)) is None
            assert await net.submit_and_wait(second) == 4
            assert await waiting == 4 and tx_count(4) == 2
            # Only that proposal was held, for at least the 0.3 s slept above.
            held = runtime.metrics.histograms[("almoner_propose_gather_seconds", ())]
            assert held.count == 1 and held.total >= 0.3

    asyncio.run(scenario())


def test_catch_up_ends_its_round_when_the_driver_cannot_take_a_batch(tmp_path: Path) -> None:
    """A driver whose inbox is full takes no batch, from any peer: catch-up fetches once,
    ends the round (no other peer is asked for the same blocks) and strikes nobody."""
    genesis, keys = local_genesis(4, params=FAST_PARAMS)
    work = Workload(genesis, keys)

    class BusySink:
        is_validator = False
        offered = 0

        def deliver_blocks(self, items: list[tuple[Any, Any]], source: str) -> bool:
            self.offered += 1
            return False

        def sync_refusals(self, source: str) -> int:
            return 0

    async def scenario() -> None:
        async with running(genesis, keys.validators, tmp_path) as net:
            for i in range(3):  # three of four decide
                await net.start(i, MemoryStore())
            for _ in range(3):
                await net.submit_and_wait(work.donation())
            behind = Ledger(MemoryStore(), genesis)
            peers = {
                keys.validators[i].public_key: PeerState(f"http://{host(i)}") for i in range(3)
            }
            sink = BusySink()
            catchup = CatchUp(net.client, peers, behind, sink)
            net.net.requests.clear()
            await catchup.sync_once()
            fetches = sum(net.net.requests[(host(i), BLOCKS_PATH)] for i in range(3))
            assert (fetches, sink.offered) == (1, 1)
            assert all(score.strikes == 0 for score in catchup.scores.values())
            assert behind.head.height == 0

    asyncio.run(scenario())
