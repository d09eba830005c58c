"""The composition root: one function builds a node from its typed config.

`build_runtime` opens the store, the ledger, the mempool, the transport and the consensus
driver and wires them; `run_node` serves the API with uvicorn and starts the background
tasks in the app's lifespan, so SIGTERM/SIGINT stop everything in order: the driver
(after the event it is handling, so a block being committed is finished), the peers'
connections, then LevelDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from almoner.node.chain.codec import H
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import Genesis, load_genesis
from almoner.node.chain.keys import load_key_file
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import KVStore, LevelStore
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.validator_sets import SUPPORTED_VERSION
from almoner.node.errors import AlmonerError
from almoner.node.server.api import create_app
from almoner.node.server.catchup import CatchUp
from almoner.node.server.channel import ChannelServer
from almoner.node.server.config import NodeConfig
from almoner.node.server.docs_assets import install_docs
from almoner.node.server.driver import Driver
from almoner.node.server.explorer import install_explorer
from almoner.node.server.governance_api import governance_routes
from almoner.node.server.heap import freeze_startup_heap
from almoner.node.server.http_server import (
    guarded_app,
    install_log_rate_limit,
    peer_tls_context,
    raise_open_file_limit,
    server_config,
)
from almoner.node.server.mempool import Mempool
from almoner.node.server.metrics import Metrics
from almoner.node.server.notifier import CommitNotifier
from almoner.node.server.services import ApiLimits
from almoner.node.server.supervision import SupervisionService
from almoner.node.server.supervision_api import supervision_routes
from almoner.node.server.tasks import cancel_all
from almoner.node.server.transport import Transport

log = logging.getLogger("almoner.node")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class NodeRuntime:
    """The node's parts, wired; it provides the API's `NodeServices`."""

    config: NodeConfig
    genesis: Genesis
    store: KVStore
    ledger: Ledger
    mempool: Mempool
    notifier: CommitNotifier
    metrics: Metrics
    key: KeyPair | None
    client: httpx.AsyncClient | None = None
    transport: Transport | None = None
    channel: ChannelServer | None = None
    driver: Driver | None = None
    catchup: CatchUp | None = None
    node_id: str = ""
    genesis_hash: str = field(init=False, default="")
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.genesis_hash = self.genesis.hash.hex()  # /v1/status shows it on every call

    @property
    def peers(self) -> dict[bytes, str]:
        me = self.key.public_key if self.key else None
        return {bytes.fromhex(k): v for k, v in self.config.peers.items() if bytes.fromhex(k) != me}

    @property
    def is_validator(self) -> bool:
        return self.driver is not None and self.driver.is_validator

    async def start(self) -> None:
        """Start the driver, the peers' workers and catch-up; `client` (HTTP to the peers)
        is made here unless one was given (a test's in-process network)."""
        if self.client is None:
            self.client = httpx.AsyncClient(
                verify=peer_tls_context(
                    self.config.tls_peer_ca, self.config.tls_cert, self.config.tls_key
                ),
                timeout=httpx.Timeout(10.0, connect=2.0),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
        if self.key is not None and self.config.p2p_channel:
            await self._open_channel(self.key)
        self.transport = Transport(self.ledger.chain_id, self.peers, self.key, self.client)
        self.transport.start()
        self.driver = Driver(
            self.ledger,
            self.mempool,
            self.transport,
            self.key,
            self.notifier,
            self.metrics,
            self.config.tick_ms,
            self.config.propose_gather_ms,
        )
        self.driver.start()
        self.catchup = catchup = CatchUp(
            self.client,
            self.transport.peers,
            self.ledger,
            self.driver,
        )
        self._tasks.append(asyncio.create_task(catchup.run(), name="catch-up"))
        log.info(
            "node %s up: chain %s, height %d, %s",
            self.node_id,
            self.ledger.chain_id,
            self.ledger.head.height,
            "validator" if self.driver.is_validator else "observer",
        )

    async def _open_channel(self, key: KeyPair) -> None:
        def deliver(sender: bytes, msgs: list[dict[str, Any]]) -> int:
            return sum(self.driver.deliver(sender, m) for m in msgs) if self.driver else 0

        self.channel = ChannelServer(
            key,
            self.ledger.chain_id,
            lambda: frozenset(self.ledger.validators(self.ledger.head.height + 1)),
            deliver,
            lambda: self.driver.inbox.qsize() if self.driver else 0,
            self.metrics,
            self.config.max_body_bytes,
        )
        await self.channel.start(*self.config.p2p_address)

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        if self.driver is not None:
            await self.driver.stop()
        if self.channel is not None:
            await self.channel.stop()
        if self.transport is not None:
            await self.transport.stop()
        if self.client is not None:
            await self.client.aclose()
        self.store.close()
        log.info("node %s stopped cleanly at height %d", self.node_id, self.ledger.head.height)

    # -- what the API reads (NodeServices) -------------------------------------------
    @property
    def limits(self) -> ApiLimits:
        return ApiLimits(self.config.max_body_bytes, self.config.wait_commit_timeout_ms / 1000)

    @property
    def consensus(self) -> Driver | None:
        return self.driver

    def unhealthy(self) -> str | None:
        return self.driver.fatal if self.driver is not None else None

    def gossip_txs(self, raws: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.broadcast({"type": "txs", "txs": raws})
        if self.driver is not None:
            self.driver.nudge()

    def peer_series(self, attribute: str) -> dict[tuple[tuple[str, str], ...], float]:
        if self.transport is None:
            return {}
        return {
            (("peer", pk.hex()[:16]),): float(getattr(peer, attribute))
            for pk, peer in self.transport.peers.items()
        }

    def syncing(self) -> bool:
        if self.transport is None:
            return True
        # Only peers whose claims were never disproved count: a liar claiming height
        # 10**12 must not keep the node "syncing" (and /readyz at 503) forever.
        credible = self.catchup.credible_height() if self.catchup is not None else None
        return credible is not None and credible > self.ledger.head.height + 1

    def status(self) -> dict[str, Any]:
        peers = {}
        if self.transport is not None:
            peers = {
                pk.hex(): {"url": p.url, "height": p.height, "up": p.up}
                for pk, p in self.transport.peers.items()
            }
        return {
            "node": self.node_id,
            "chain_id": self.ledger.chain_id,
            "genesis_hash": self.genesis_hash,
            "height": self.ledger.head.height,
            "validator": self.is_validator,
            "peers": peers,
            "syncing": self.syncing(),
            "round": self.driver.round if self.driver else 0,
            "mempool": len(self.mempool),
            "p2p_port": self.channel.port if self.channel else None,
        }


def build_runtime(config: NodeConfig) -> NodeRuntime:
    genesis = load_genesis(config.genesis)
    key = None
    if config.key is not None:
        passphrase = os.environ.get(config.passphrase_env) if config.passphrase_env else None
        key = load_key_file(config.key, passphrase)
    store = LevelStore(config.data_dir)
    try:
        return assemble_runtime(config, genesis, store, key)
    except AlmonerError:
        store.close()
        raise


def assemble_runtime(
    config: NodeConfig, genesis: Genesis, store: KVStore, key: KeyPair | None
) -> NodeRuntime:
    """Wire a node from an open store (tests pass an in-memory or fault-injecting one)."""
    ledger = Ledger(store, genesis, max_version=config.max_protocol_version or SUPPORTED_VERSION)
    mempool = Mempool(
        ledger,
        config.mempool_max_txs,
        config.mempool_max_bytes,
        config.mempool_max_per_party,
        config.mempool_reserved_txs,
    )
    metrics = Metrics()
    node_id = (
        key.public_key.hex() if key else "observer-" + H(str(config.data_dir).encode()).hex()[:16]
    )
    rt = NodeRuntime(
        config, genesis, store, ledger, mempool, CommitNotifier(), metrics, key, node_id=node_id
    )
    metrics.gauge("almoner_height", lambda: ledger.head.height, "newest committed height")
    metrics.gauge("almoner_log_size", lambda: ledger.head.log_size, "txs in the Merkle log")
    metrics.gauge("almoner_mempool_txs", lambda: len(mempool), "pending txs")
    metrics.gauge("almoner_mempool_bytes", lambda: mempool.size_bytes, "pending tx bytes")
    metrics.gauge(
        "almoner_mempool_rejected", lambda: mempool.rejected_total, "txs refused at admission"
    )
    metrics.gauge("almoner_round", lambda: rt.driver.round if rt.driver else 0, "consensus round")
    metrics.gauge(
        "almoner_peers_up",
        lambda: sum(p.up for p in rt.transport.peers.values()) if rt.transport else 0,
        "peers answering",
    )
    metrics.gauge_family("almoner_peer_up", lambda: rt.peer_series("up"), "peer answering (1/0)")
    metrics.gauge_family("almoner_peer_height", lambda: rt.peer_series("height"), "peer height")
    metrics.gauge_family(
        "almoner_peer_dropped_messages", lambda: rt.peer_series("dropped"), "messages dropped"
    )
    return rt


def create_node_app(rt: NodeRuntime) -> FastAPI:
    supervision = SupervisionService(
        rt.ledger,
        rt.genesis,
        rt.node_id,
        granularity=rt.config.supervision_period,
        settings=thresholds.load(rt.config.supervision_rules),
    )
    supervision.install_metrics(rt.metrics)
    app = create_app(rt, extra=(governance_routes(rt), supervision_routes(supervision)))
    install_docs(app)
    install_explorer(app, rt, supervision)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await asyncio.to_thread(supervision.stop)  # it reads the store: stop it first
            await rt.stop()

    app.router.lifespan_context = lifespan
    return app


class NodeServer(uvicorn.Server):
    """uvicorn, but a graceful SIGTERM/SIGINT shutdown exits 0.

    uvicorn re-raises the captured signal once it has shut down, so the process dies by
    that signal (status -15) and a supervisor cannot tell a clean stop from a kill.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_node(config: NodeConfig) -> None:
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rt = build_runtime(config)
    app = create_node_app(rt)
    server = NodeServer(server_config(guarded_app(app, config), config))
    install_log_rate_limit()
    raise_open_file_limit()
    freeze_startup_heap()
    server.run()
