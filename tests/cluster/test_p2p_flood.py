"""Issue 14, item 5: one validator floods another over the p2p channel with junk votes
(the original: 12 MB envelopes of 700k votes, 10 of 10 commits failed). Now frames hold at
most 512 messages and a backlogged node stops reading a flooder, so the node stays
responsive and commits go on while the flood lasts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
import time
from pathlib import Path

import httpx

from almoner.consensus import Vote
from almoner.node.chain.codec import encode
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.server.channel import dial, frame, tls_context
from almoner.node.server.p2p import MAX_FRAME_MSGS
from tests.cluster.harness import Cluster, running_cluster

FLOOD_S = 8.0


def flood(c: Cluster, target: str, stop: threading.Event, sent: list[int]) -> None:
    """As validator-3 (its own key: the flood comes from inside the validator set), junk
    prevotes for random blocks, each a distinct message the node must check."""
    culprit = c.key("validator-3")
    signer = NodeSigner(culprit)
    port = c.status(target)["p2p_port"]
    height = c.height(target) + 1
    votes = [
        encode(
            {
                "type": "vote",
                "vote": signer.sign_vote(
                    Vote("prevote", c.chain_id, height, r, os.urandom(32), culprit.public_key)
                ).to_map(),
            }
        )
        for r in range(2 * MAX_FRAME_MSGS)
    ]
    frames = [frame(votes[i : i + MAX_FRAME_MSGS]) for i in (0, MAX_FRAME_MSGS)]

    async def run() -> None:
        context = tls_context(culprit, c.chain_id, server=False)
        node = c.key(target).public_key
        _, writer = await dial("127.0.0.1", port, context, node)
        deadline = time.monotonic() + FLOOD_S
        while not stop.is_set() and time.monotonic() < deadline:
            writer.write(frames[sent[0] % 2])
            await asyncio.wait_for(writer.drain(), 30)
            sent[0] += 1
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)

    asyncio.run(run())


def test_a_flooding_validator_neither_stalls_the_node_nor_stops_commits(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "net") as c:
        # validator-3 turns Byzantine: its process is replaced by the flooder (a node keeps
        # one inbound stream per validator; the real one would keep reclaiming it).
        assert c.stop("validator-3") == 0
        stop, sent = threading.Event(), [0]
        flooder = threading.Thread(target=flood, args=(c, "validator-0", stop, sent))
        flooder.start()
        health: list[float] = []
        committed = 0
        try:
            with httpx.Client(timeout=30) as http:
                started = time.monotonic()
                while time.monotonic() - started < FLOOD_S:
                    t = time.monotonic()
                    assert http.get(c.url("validator-0") + "/healthz").status_code == 200
                    health.append(time.monotonic() - t)
                    raw = c.donation("platform-1", "charity-1")
                    answer = http.post(c.url("validator-0") + "/v1/txs?wait=commit", content=raw,
                                       headers={"content-type": "application/msgpack"})  # fmt: skip
                    committed += answer.status_code == 200
        finally:
            stop.set()
            flooder.join(60)
        assert sent[0] >= 4, "the flood never got going"
        assert max(health) < 1.0, health
        assert committed >= 2, f"only {committed} commits during the flood"
