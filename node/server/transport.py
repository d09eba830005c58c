"""Outbound traffic to peers: one bounded queue, one worker and one stream per peer.

A peer that is down or slow only fills its own queue (oldest messages are dropped; the
consensus machine re-broadcasts what matters), so it never blocks the others. A
validator's worker keeps one TLS channel open to each peer (channel.py) and writes
whatever is queued for that peer as one frame: under load many votes and txs share one
write and one TLS record, and nothing is re-encoded per peer (a message is encoded once
when it is broadcast). A broken channel is re-dialled for the next batch; the batch whose
write failed goes by HTTP instead. Where to dial is learnt from the peer's public
`/v1/status` (`p2p_port`, at the host of its configured URL); a wrong answer there costs
nothing but a failed handshake, since the channel is pinned to the peer's genesis key.

A peer that offers no channel (`p2p_channel` off, or an in-process test network), or
whose channel cannot be opened right now, gets the batch as one signed envelope POSTed
to its /v1/p2p/messages (p2p.py), the v1 route every validator serves, retried with
capped backoff and then dropped. A peer that answered "no channel" is asked again after
NO_CHANNEL_RECHECK_S.

Observers hold no validator key: they forward txs to the validators' public
`/v1/txs/batch` over HTTP instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from almoner.node.chain.codec import MSGPACK, array_header, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.server.channel import ChannelError, dial, frame, tls_context
from almoner.node.server.p2p import MAX_FRAME_MSGS, seal
from almoner.node.server.tasks import cancel_all

log = logging.getLogger("almoner.transport")

P2P_PATH = "/v1/p2p/messages"
NO_CHANNEL_RECHECK_S = 30.0
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
    queue: asyncio.Queue[tuple[dict[str, Any], bytes]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX)
    )
    writer: asyncio.StreamWriter | None = None
    no_channel_until: float = 0.0  # monotonic time before which HTTP is used unasked
    heard_at: float = 0.0  # monotonic time of its last own consensus message, 0 if none

    def heard(self, height: int, now: float) -> None:
        """It sent its own consensus message for `height`: it is up, and its head is at
        least the height before (catch-up then needs no status poll to know it)."""
        self.up = True
        self.height = max(self.height, height - 1)
        self.heard_at = now


class Transport:
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
        self.context: ssl.SSLContext | None = (
            tls_context(key, chain, server=False) if key is not None else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for pubkey, peer in self.peers.items():
            self._tasks.append(
                asyncio.create_task(self._worker(pubkey, peer), name=f"peer-{pubkey.hex()[:8]}")
            )

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for peer in self.peers.values():
            self._hang_up(peer)

    def broadcast(self, msg: dict[str, Any]) -> None:
        if self.key is None and msg.get("type") != "txs":
            return
        raw = encode(msg) if self.key is not None else b""
        for peer in self.peers.values():
            self._enqueue(peer, msg, raw)

    def send_to(self, pubkey: bytes, msg: dict[str, Any]) -> None:
        peer = self.peers.get(pubkey)
        if peer is not None and self.key is not None:
            self._enqueue(peer, msg, encode(msg))

    def heard_from(self, pubkey: bytes, height: int) -> None:
        peer = self.peers.get(pubkey)
        if peer is not None:
            peer.heard(height, time.monotonic())

    def _enqueue(self, peer: PeerState, msg: dict[str, Any], raw: bytes) -> None:
        if peer.queue.full():
            peer.queue.get_nowait()
            peer.dropped += 1
        peer.queue.put_nowait((msg, raw))

    async def _next_batch(self, peer: PeerState) -> list[tuple[dict[str, Any], bytes]]:
        batch = [await peer.queue.get()]
        size = len(batch[0][1])
        while not peer.queue.empty() and len(batch) < MAX_FRAME_MSGS and size < BATCH_MAX_BYTES:
            item = peer.queue.get_nowait()
            batch.append(item)
            size += len(item[1])
        return batch

    async def _worker(self, pubkey: bytes, peer: PeerState) -> None:
        while True:
            queued = await self._next_batch(peer)
            batch = _coalesce_txs(queued)  # counted below as the messages queued
            try:
                if self.key is None:
                    sent = await self._forward_txs(
                        peer, [t for msg, _ in batch for t in msg["txs"]]
                    )
                elif await self._channel_open(pubkey, peer) and await self._send_frame(
                    peer, frame([raw for _, raw in batch])
                ):
                    sent = True
                else:
                    body = seal(self.key, self.chain, [msg for msg, _ in batch])
                    sent = await self._post(peer, peer.url + P2P_PATH, body)
            except Exception:  # one bad batch must not silence this peer for good
                log.exception("dropped a batch of %d messages to %s", len(queued), peer.url)
                sent = False
            if sent:
                peer.sent += len(queued)
            else:
                peer.dropped += len(queued)

    # -- validators: the TLS channel -----------------------------------------------
    async def _channel_open(self, pubkey: bytes, peer: PeerState) -> bool:
        """Whether this batch can go on the channel, dialling it if the peer offers one.
        False sends it by HTTP instead: the peer offers no channel, or cannot be reached
        or authenticated right now (the HTTP attempts then count as its failures)."""
        if peer.writer is not None and not peer.writer.is_closing():
            return True
        if time.monotonic() < peer.no_channel_until:
            return False
        try:
            await self._connect(pubkey, peer)
        except ChannelError as exc:
            if exc.code == "no_channel":
                peer.no_channel_until = time.monotonic() + NO_CHANNEL_RECHECK_S
            self._hang_up(peer)
            peer.last_error = str(exc)
            return False
        except (OSError, ssl.SSLError, TimeoutError, httpx.HTTPError, ValueError) as exc:
            self._hang_up(peer)
            peer.last_error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    async def _send_frame(self, peer: PeerState, data: bytes) -> bool:
        """Write one frame on the open channel; False (and the channel closed) if the
        write failed, so the caller sends the batch by HTTP and the next batch re-dials."""
        writer = peer.writer
        if writer is None:
            return False
        try:
            writer.write(data)
            await writer.drain()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            self._hang_up(peer)
            peer.failures += 1
            peer.last_error = f"{type(exc).__name__}: {exc}"
            return False
        peer.up = True
        return True

    async def _connect(self, pubkey: bytes, peer: PeerState) -> asyncio.StreamWriter:
        assert self.context is not None
        status = await self.client.get(f"{peer.url}/v1/status")
        if status.status_code != 200:
            raise ChannelError(
                503, "status_unavailable", f"{peer.url}/v1/status: HTTP {status.status_code}"
            )
        body = status.json()
        port = body.get("p2p_port") if isinstance(body, dict) else None
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ChannelError(503, "no_channel", f"{peer.url} offers no p2p channel")
        host = urlsplit(peer.url).hostname or "127.0.0.1"
        _, writer = await dial(host, port, self.context, pubkey)
        peer.writer = writer
        log.info("p2p channel to %s (%s:%d) open", pubkey.hex()[:16], host, port)
        return writer

    def _hang_up(self, peer: PeerState) -> None:
        if peer.writer is not None:
            peer.writer.close()
            peer.writer = None

    # -- HTTP: observers to the public API, validators without a channel ---------------
    async def _forward_txs(self, peer: PeerState, txs: list[bytes]) -> bool:
        body = array_header(len(txs)) + b"".join(txs)
        return await self._post(peer, peer.url + "/v1/txs/batch", body)

    async def _post(self, peer: PeerState, url: str, body: bytes) -> bool:
        """POST with capped backoff; True once the peer answered (a 4xx is logged: the
        batch was judged, retrying it would be judged the same)."""
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
                    if response.status_code >= 400:
                        peer.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                        log.warning("peer %s refused a batch: %s", peer.url, peer.last_error)
                    return True
                peer.failures += 1
                peer.last_error = f"HTTP {response.status_code}"
            if attempt + 1 < SEND_ATTEMPTS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        return False


def _coalesce_txs(batch: list[tuple[dict[str, Any], bytes]]) -> list[tuple[dict[str, Any], bytes]]:
    """All gossiped txs of a batch as one message at its end: the receiver admits them as
    one event (one wake-up of its driver, not one per tx). Consensus messages keep their
    order and come first."""
    gossip = [item for item in batch if item[0].get("type") == "txs"]
    if len(gossip) < 2:
        return batch
    txs = [raw for msg, _ in gossip for raw in msg["txs"]]
    merged: dict[str, Any] = {"type": "txs", "txs": txs}
    rest = [item for item in batch if item[0].get("type") != "txs"]
    return [*rest, (merged, encode(merged))]
