"""Catch-up: fetch certified blocks from peers over HTTP and hand them to the driver.

What is fetched is only shape-checked here; the driver runs
`almoner.node.chain.certified.check_certified_block` before a block touches the store.
The loop lives here, not in the composition root, so it can be tested over a fake network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from almoner.node.chain.certified import MAX_STREAM_BYTES, SyncError, parse_block_stream
from almoner.node.chain.ledger import Head
from almoner.node.server.transport import PeerState

log = logging.getLogger("almoner.catchup")

FETCH_LIMIT = 64
SYNC_INTERVAL_S = 0.5
LAGGING_AFTER_S = 2.0
APPLY_TIMEOUT_S = 30.0


async def fetch_blocks(
    client: httpx.AsyncClient, url: str, start: int, limit: int = FETCH_LIMIT
) -> list[tuple[Any, Any]]:
    """Fetch [start, start + limit) from a peer; shape-checked, not yet verified."""
    response = await client.get(
        f"{url}/v1/blocks",
        params={"from": start, "limit": limit},
        headers={"accept": "application/msgpack"},
    )
    if response.status_code != 200:
        raise SyncError(f"{url} answered HTTP {response.status_code} for blocks from {start}")
    if len(response.content) > MAX_STREAM_BYTES:
        raise SyncError(f"{url} sent an oversized block stream")
    return parse_block_stream(response.content, url)


async def fetch_height(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(f"{url}/v1/status")
    if response.status_code != 200:
        raise SyncError(f"{url} answered HTTP {response.status_code} for its status")
    height = response.json().get("height")
    if not isinstance(height, int) or height < 0:
        raise SyncError(f"{url} reported no valid height")
    return height


class BlockSink(Protocol):
    """Where fetched blocks go: the consensus driver, which checks and commits them."""

    def deliver_blocks(self, items: list[tuple[Any, Any]], source: str) -> None: ...


class HeadReader(Protocol):
    @property
    def head(self) -> Head: ...


class CatchUp:
    """Polls the peers' heights and fetches what this node is missing from the best one.

    A peer one block ahead is normal mid-consensus for a validator, so a validator fetches
    only when a peer is two or more ahead, or has stayed ahead for a while (it missed a
    decision that no later traffic will repeat). Observers always fetch.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        peers: Mapping[bytes, PeerState],
        ledger: HeadReader,
        sink: BlockSink,
        *,
        is_validator: bool,
        interval_s: float = SYNC_INTERVAL_S,
    ) -> None:
        self.client = client
        self.peers = peers
        self.ledger = ledger
        self.sink = sink
        self.is_validator = is_validator
        self.interval_s = interval_s
        self._ahead_since: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except Exception:  # a peer must never be able to kill catch-up
                log.exception("catch-up round failed")
            await asyncio.sleep(self.interval_s)

    async def sync_once(self) -> None:
        await self._poll_heights()
        best = max(self.peers.values(), key=lambda p: p.height if p.up else -1, default=None)
        if best is None or not self._should_fetch(best):
            return
        while best.height > self.ledger.head.height:
            if not await self._fetch_and_apply(best):
                return

    async def _poll_heights(self) -> None:
        for peer in self.peers.values():
            try:
                peer.height = await fetch_height(self.client, peer.url)
                peer.up = True
            except (httpx.HTTPError, SyncError, ValueError) as exc:
                peer.up = False
                peer.last_error = str(exc)

    def _should_fetch(self, best: PeerState) -> bool:
        now = asyncio.get_running_loop().time()
        head = self.ledger.head.height
        if not best.up or best.height <= head:
            self._ahead_since = None
            return False
        if self.is_validator and best.height == head + 1:
            if self._ahead_since is None:
                self._ahead_since = now
            if now - self._ahead_since < LAGGING_AFTER_S:
                return False
        self._ahead_since = None
        return True

    async def _fetch_and_apply(self, best: PeerState) -> bool:
        """One batch from `best`, handed to the driver; True if the head moved past it."""
        start = self.ledger.head.height + 1
        try:
            items = await fetch_blocks(self.client, best.url, start)
        except (httpx.HTTPError, SyncError) as exc:
            log.warning("catch-up from %s failed: %s", best.url, exc)
            return False
        if not items:
            return False
        self.sink.deliver_blocks(items, best.url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPLY_TIMEOUT_S
        while self.ledger.head.height < start and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.ledger.head.height >= start  # refused: logged by the driver; retry later
