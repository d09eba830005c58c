"""Real nodes in one process: each node's API, driver, mempool, transport and catch-up, wired
through an in-memory network instead of sockets.

`InProcessNetwork` is an httpx transport that hands each request to the ASGI app of the
node its host names (`http://v0.test` ...), so the real `Transport` (signed envelopes,
batching, retries) and `CatchUp` talk to the real API. A test can cut a node off (both
ways), and the network records every consensus message each validator put on the wire, so
safety (no equivocation, nothing sent that was not durable) is checked on what actually
left.

`FaultyStore` is a real LevelDB store whose backend fails one chosen write, the way a
disk fails: plyvel raises its IOError inside `LevelStore.write`, so the store's own
boundary translates it, as it would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import plyvel

from almoner.consensus import Message, parse_message
from almoner.node.chain.codec import MSGPACK, decode, decode_payload
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.store import KVStore, LevelStore
from almoner.node.server.api import create_app
from almoner.node.server.app import NodeRuntime, assemble_runtime
from almoner.node.server.config import NodeConfig

# Short consensus timeouts: in-process rounds take milliseconds.
FAST_PARAMS = {
    "heartbeat_ms": 600_000,
    "timeout_propose_ms": 400,
    "timeout_prevote_ms": 200,
    "timeout_precommit_ms": 200,
    "timeout_delta_ms": 100,
}


def host(index: int) -> str:
    return f"v{index}.test"


@dataclass
class WireLog:
    """Consensus messages as they crossed the network, per sender, in arrival order."""

    sent: dict[bytes, list[Message]] = field(default_factory=dict)

    def record(self, body: bytes) -> None:
        envelope = decode(body, max_size=len(body))
        for msg in decode_payload(envelope["msgs"]):
            kind = msg.get("type")
            if kind in ("proposal", "vote"):
                parsed = parse_message(msg[kind])
                self.sent.setdefault(envelope["from"], []).append(parsed)

    def of(self, sender: bytes) -> list[Message]:
        """What `sender` put on the wire: its own messages and those it relayed."""
        return list(self.sent.get(sender, []))

    def equivocations(self) -> list[tuple[Message, Message]]:
        """Pairs of different messages one sender signed for one (height, round, kind)."""
        seen: dict[tuple[bytes, int, int, str], Message] = {}
        pairs = []
        for messages in self.sent.values():
            for msg in messages:  # keyed by the signer: validators relay others' votes
                slot = (msg.sender, msg.height, msg.round, msg.kind)
                first = seen.setdefault(slot, msg)
                if first != msg:
                    pairs.append((first, msg))
        return pairs


class InProcessNetwork(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.nodes: dict[str, httpx.ASGITransport] = {}
        self.cut: set[str] = set()
        self.wire = WireLog()
        self.requests: Counter[tuple[str, str]] = Counter()  # (host, path) asked for

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.host
        self.requests[(target, request.url.path)] += 1
        node = self.nodes.get(target)
        if node is None or target in self.cut:
            raise httpx.ConnectError(f"{target} is unreachable", request=request)
        # A network hop is a suspension point: the sender's step ends here, as it would on
        # a socket, and the receiving node handles the request in a step of its own.
        await asyncio.sleep(0)
        if request.url.path == "/v1/p2p/messages":
            body = await request.aread()
            self.wire.record(body)
            await asyncio.sleep(0)
        return await node.handle_async_request(request)


class NodeLink(httpx.AsyncBaseTransport):
    """One node's way onto the network: a node that is cut off reaches nobody either."""

    def __init__(self, net: InProcessNetwork, source: str) -> None:
        self.net = net
        self.source = source

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.source in self.net.cut:
            raise httpx.ConnectError(f"{self.source} is cut off", request=request)
        return await self.net.handle_async_request(request)


class FaultyStore:
    """A LevelStore whose backend raises plyvel.IOError on the first write `fails` picks."""

    def __init__(self, path: Path, fails: Callable[[Mapping[bytes, bytes | None]], bool]) -> None:
        self.inner = LevelStore(path)
        self.fails = fails
        self.refused: Mapping[bytes, bytes | None] | None = None
        self.failed_at: float | None = None
        self._real_db = self.inner._db

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.iterate(prefix, reverse=reverse, start=start)

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if self.refused is None and self.fails(changes):
            self.refused = dict(changes)
            self.failed_at = time.monotonic()
            self.inner._db = _FailingDB()
        self.inner.write(changes, sync=sync)

    def durable(self, key: bytes) -> bytes | None:
        """What the disk really holds under `key` (read past the injected failure)."""
        value: bytes | None = self._real_db.get(key)
        return value

    def close(self) -> None:
        self.inner._db = self._real_db
        self.inner.close()


class _FailingDB:
    """What plyvel does when the disk is gone: every batch write raises its IOError."""

    closed = False

    def write_batch(self, **_: Any) -> Any:
        raise plyvel.IOError("IO error: /data/000042.log: No space left on device")

    def get(self, key: bytes) -> bytes | None:
        raise plyvel.IOError("IO error: read failed")

    def iterator(self, **_: Any) -> Any:
        raise plyvel.IOError("IO error: read failed")

    def close(self) -> None:
        pass


@dataclass
class Node:
    index: int
    key: KeyPair
    runtime: NodeRuntime

    @property
    def url(self) -> str:
        return f"http://{host(self.index)}"


class Network:
    """N validators (all of the genesis), started on the running event loop."""

    def __init__(
        self,
        genesis: Genesis,
        keys: list[KeyPair],
        tmp: Path,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.genesis = genesis
        self.keys = keys
        self.tmp = tmp
        self.settings = dict(settings or {})  # NodeConfig fields every node gets
        self.net = InProcessNetwork()
        self.nodes: dict[int, Node] = {}
        self.client = httpx.AsyncClient(transport=self.net, timeout=30)

    def config(self, index: int) -> NodeConfig:
        peers = {k.public_key.hex(): f"http://{host(i)}" for i, k in enumerate(self.keys)}
        return NodeConfig(
            genesis=self.tmp / "genesis.json",
            data_dir=self.tmp / f"node-{index}",
            peers=peers,
            tick_ms=10,
            p2p_channel=False,  # no sockets here: validators use the signed HTTP envelopes
            wait_commit_timeout_ms=60_000,  # a loaded test machine may take a while
            **self.settings,
        )

    async def start(self, index: int, store: KVStore) -> Node:
        runtime = assemble_runtime(self.config(index), self.genesis, store, self.keys[index])
        runtime.client = httpx.AsyncClient(transport=NodeLink(self.net, host(index)), timeout=10)
        self.net.nodes[host(index)] = httpx.ASGITransport(app=create_app(runtime))
        await runtime.start()
        node = Node(index, self.keys[index], runtime)
        self.nodes[index] = node
        return node

    async def stop(self, index: int) -> None:
        node = self.nodes.pop(index)
        self.net.nodes.pop(host(index), None)
        await node.runtime.stop()

    async def close(self) -> None:
        for index in list(self.nodes):
            await self.stop(index)
        await self.client.aclose()

    async def submit_and_wait(self, raw: bytes, node: int = 0) -> int:
        """`POST /v1/txs?wait=commit` to one node; the height of the answered receipt."""
        response = await self.client.post(
            f"http://{host(node)}/v1/txs?wait=commit",
            content=raw,
            headers={"content-type": MSGPACK},
        )
        assert response.status_code == 200, response.text
        height: int = response.json()["height"]
        return height

    def heights(self) -> dict[int, int]:
        return {i: n.runtime.ledger.head.height for i, n in self.nodes.items()}

    async def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(
    genesis: Genesis,
    keys: list[KeyPair],
    tmp: Path,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[Network]:
    network = Network(genesis, keys, tmp, settings)
    try:
        yield network
    finally:
        await network.close()
