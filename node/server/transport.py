"""Outbound traffic to peers: one bounded queue and one worker per peer.

A peer that is down or slow only fills its own queue (oldest messages are dropped; the
consensus machine re-broadcasts what matters), so it never blocks the others. Each
worker drains its queue into one signed envelope per POST over a persistent httpx
connection, retrying a failed POST with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from almoner.node.chain.codec import MSGPACK, array_header, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.server.p2p import seal
from almoner.node.server.tasks import cancel_all

log = logging.getLogger("almoner.transport")

P2P_PATH = "/v1/p2p/messages"
BATCH_MAX_MSGS = 512
BATCH_MAX_BYTES = 8 * 1024 * 1024
QUEUE_MAX = 20_000
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
SEND_ATTEMPTS = 4


@dataclass
class PeerState:
    """What this node knows of a peer; the status endpoint shows it."""

    url: str
    up: bool = False
    height: int = 0
    sent: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str = ""
    queue: asyncio.Queue[tuple[dict[str, Any], int]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX)
    )


class Transport:
    """Validators send envelopes to /v1/p2p/messages; observers forward txs to the public
    /v1/txs/batch of the validators (they hold no validator key to sign envelopes with)."""

    def __init__(
        self,
        chain: str,
        peers: dict[bytes, str],
        key: KeyPair | None,
        client: httpx.AsyncClient,
    ) -> None:
        self.chain = chain
        self.key = key
        self.client = client
        self.peers = {pk: PeerState(url.rstrip("/")) for pk, url in peers.items()}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for pubkey, peer in self.peers.items():
            self._tasks.append(
                asyncio.create_task(self._worker(peer), name=f"peer-{pubkey.hex()[:8]}")
            )

    async def stop(self) -> None:
        await cancel_all(self._tasks)

    def broadcast(self, msg: dict[str, Any]) -> None:
        size = len(encode(msg)) if msg.get("type") != "vote" else 200
        for peer in self.peers.values():
            self._enqueue(peer, msg, size)

    def send_to(self, pubkey: bytes, msg: dict[str, Any]) -> None:
        peer = self.peers.get(pubkey)
        if peer is not None:
            self._enqueue(peer, msg, len(encode(msg)))

    def _enqueue(self, peer: PeerState, msg: dict[str, Any], size: int) -> None:
        if self.key is None and msg.get("type") != "txs":
            return
        if peer.queue.full():
            peer.queue.get_nowait()
            peer.dropped += 1
        peer.queue.put_nowait((msg, size))

    async def _worker(self, peer: PeerState) -> None:
        while True:
            first = await peer.queue.get()
            batch, size = [first[0]], first[1]
            while not peer.queue.empty() and len(batch) < BATCH_MAX_MSGS and size < BATCH_MAX_BYTES:
                msg, msg_size = peer.queue.get_nowait()
                batch.append(msg)
                size += msg_size
            try:
                await self._deliver(peer, batch)
            except Exception:  # one bad batch must not silence this peer for good
                log.exception("dropped a batch of %d messages to %s", len(batch), peer.url)
                peer.dropped += len(batch)

    async def _deliver(self, peer: PeerState, batch: list[dict[str, Any]]) -> None:
        if self.key is not None:
            url, body = peer.url + P2P_PATH, seal(self.key, self.chain, batch)
        else:
            txs = [raw for msg in batch for raw in msg["txs"]]
            url, body = peer.url + "/v1/txs/batch", array_header(len(txs)) + b"".join(txs)
        delay = BACKOFF_START_S
        for attempt in range(SEND_ATTEMPTS):
            try:
                response = await self.client.post(
                    url, content=body, headers={"content-type": MSGPACK}
                )
            except httpx.HTTPError as exc:
                peer.up = False
                peer.failures += 1
                peer.last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    peer.up = True
                    peer.sent += len(batch)
                    if response.status_code >= 400:
                        peer.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                        log.warning("peer %s refused a batch: %s", peer.url, peer.last_error)
                    return
                peer.failures += 1
                peer.last_error = f"HTTP {response.status_code}"
            if attempt + 1 < SEND_ATTEMPTS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        peer.dropped += len(batch)
