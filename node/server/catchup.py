"""Catch-up: fetch certified blocks from peers over HTTP and hand them to the driver.

What is fetched is only shape-checked here; the driver runs
`almoner.node.chain.certified.check_certified_block` before a block touches the store.
The loop lives here, not in the composition root, so it can be tested over a fake network.

A peer's height is its own unauthenticated claim, so no single peer is trusted with the
catch-up: peers are tried from the highest claim down, and one that errs, stalls, sends
nothing or sends blocks the driver refuses gets a strike and is backed off (exponentially)
while the next peer is tried in the same round. Only peers without strikes count for
readiness, so a peer claiming height 10**12 cannot keep /readyz at 503. Every fetch is
bounded in bytes and in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from almoner.node.chain.certified import (
    BLOCKS_PATH,
    MAX_STREAM_BYTES,
    SyncError,
    block_range_items,
    block_range_query,
    parse_block_items,
)
from almoner.node.chain.codec import MSGPACK
from almoner.node.chain.ledger import Head
from almoner.node.server.tasks import cancel_all
from almoner.node.server.transport import PeerState

log = logging.getLogger("almoner.catchup")

FETCH_LIMIT = 64
SYNC_INTERVAL_S = 0.5
LAGGING_AFTER_S = 2.0
APPLY_TIMEOUT_S = 10.0
FETCH_TIMEOUT_S = 20.0
STATUS_TIMEOUT_S = 3.0
MAX_STATUS_BYTES = 64 * 1024
FETCH_MAX_BYTES = 64 * 1024 * 1024
BACKOFF_MAX_S = 30.0
# A peer heard on the consensus channel within this long is not polled for its status.
HEARD_FRESH_S = 1.0


async def _get_bounded(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    timeout_s: float,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A GET whose answer must be 200, at most `max_bytes`, and complete within `timeout_s`
    in total (httpx's own timeouts are per read: a peer trickling bytes passes them)."""
    async with asyncio.timeout(timeout_s):
        async with client.stream("GET", url, params=params, headers=headers) as response:
            if response.status_code != 200:
                raise SyncError(f"{url} answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SyncError(f"{url} sent over {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)


async def fetch_blocks(
    client: httpx.AsyncClient, url: str, start: int, limit: int = FETCH_LIMIT
) -> list[tuple[Any, Any]]:
    """Fetch [start, start + limit) from a peer; shape-checked, not yet verified."""
    try:
        data = await _get_bounded(
            client,
            url + BLOCKS_PATH,
            min(FETCH_MAX_BYTES, MAX_STREAM_BYTES),
            FETCH_TIMEOUT_S,
            params=block_range_query(start, limit),
            headers={"accept": MSGPACK},
        )
    except TimeoutError as exc:
        raise SyncError(f"{url} did not send blocks from {start} in time") from exc
    raws = block_range_items(200, data, url, start)
    return parse_block_items(raws, url)


async def fetch_height(client: httpx.AsyncClient, url: str) -> int:
    try:
        data = await _get_bounded(client, f"{url}/v1/status", MAX_STATUS_BYTES, STATUS_TIMEOUT_S)
    except TimeoutError as exc:
        raise SyncError(f"{url} did not answer its status in time") from exc
    try:
        height = json.loads(data).get("height")
    except (ValueError, AttributeError) as exc:
        raise SyncError(f"{url} answered a status that is not a JSON map") from exc
    if not isinstance(height, int) or isinstance(height, bool) or height < 0:
        raise SyncError(f"{url} reported no valid height")
    return height


class BlockSink(Protocol):
    """Where fetched blocks go: the consensus driver, which checks and commits them. It
    also says whether this node validates now (governance can change that at any height)."""

    @property
    def is_validator(self) -> bool: ...

    def deliver_blocks(self, items: list[tuple[Any, Any]], source: str) -> bool:
        """Queue the blocks, all or none; False if they were not queued (the sink is
        busy or halted, which is no fault of the peer)."""
        ...

    def sync_refusals(self, source: str) -> int:
        """How many blocks from `source` the driver has refused so far."""
        ...


class _SinkBusy(Exception):
    """The sink did not queue a fetched batch (its inbox is full, or it has halted)."""


class HeadReader(Protocol):
    @property
    def head(self) -> Head: ...


@dataclass
class PeerScore:
    """How far this node trusts a peer's catch-up service: strikes and a back-off."""

    strikes: int = 0
    backoff_until: float = 0.0
    served: int = 0  # blocks this peer delivered that were committed
    last_failure: str = ""

    def fail(self, reason: str, now: float) -> None:
        self.strikes += 1
        self.last_failure = reason
        self.backoff_until = now + min(BACKOFF_MAX_S, 2.0 ** (self.strikes - 1))

    def succeed(self, blocks: int) -> None:
        self.strikes = 0
        self.backoff_until = 0.0
        self.served += blocks


class CatchUp:
    """Polls the peers' heights and fetches what this node is missing, falling back from
    peer to peer.

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
        interval_s: float = SYNC_INTERVAL_S,
    ) -> None:
        self.client = client
        self.peers = peers
        self.ledger = ledger
        self.sink = sink
        self.interval_s = interval_s
        self.scores: dict[bytes, PeerScore] = {key: PeerScore() for key in peers}
        self._probes: dict[bytes, asyncio.Task[None]] = {}
        self._ahead_since: float | None = None

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.sync_once()
                except Exception:  # a peer must never be able to kill catch-up
                    log.exception("catch-up round failed")
                await asyncio.sleep(self.interval_s)
        finally:
            await self.stop()

    def credible_height(self) -> int | None:
        """The highest height claimed by an answering peer with no strikes, or None."""
        heights = [
            peer.height
            for key, peer in self.peers.items()
            if peer.up and self.scores.setdefault(key, PeerScore()).strikes == 0
        ]
        return max(heights) if heights else None

    async def sync_once(self) -> None:
        """Fetch from unstruck peers, highest claim first, until one delivers all it claims.

        Struck peers whose back-off has passed are retried in a probe of their own, beside
        this loop: a peer that stalls for the whole fetch time must not hold up catch-up
        from the honest ones again each time its back-off ends.
        """
        await self._poll_heights()
        now = time.monotonic()
        head = self.ledger.head.height
        ahead = [(k, p) for k, p in self.peers.items() if p.up and p.height > head]
        for key, peer in ahead:
            score = self.scores.setdefault(key, PeerScore())
            if score.strikes and score.backoff_until <= now and key not in self._probes:
                self._probes[key] = asyncio.create_task(self._probe(key, peer))
        trusted = sorted(
            ((k, p) for k, p in ahead if self.scores[k].strikes == 0),
            key=lambda item: -item[1].height,
        )
        if not trusted or not self._should_fetch(trusted[0][1].height):
            return
        try:
            for key, peer in trusted:
                while peer.height > self.ledger.head.height:
                    if not await self._fetch_and_apply(key, peer):
                        break
                else:
                    return  # this peer delivered everything it claimed
        except _SinkBusy:
            return  # the next peer's blocks would not be taken either: next round

    async def _probe(self, key: bytes, peer: PeerState) -> None:
        """One batch from a struck peer: success clears its strikes, failure adds one."""
        try:
            await self._fetch_and_apply(key, peer)
        except _SinkBusy:
            pass  # no verdict on the peer: it is probed again after its back-off
        except Exception:  # a probe must not leave an exception unretrieved
            log.exception("catch-up probe of %s failed", peer.url)
        finally:
            self._probes.pop(key, None)

    async def stop(self) -> None:
        await cancel_all(list(self._probes.values()))

    async def _poll_heights(self) -> None:
        """Ask the peers not heard from lately for their height over HTTP. A validator
        that sent its own consensus message within HEARD_FRESH_S already told us (the
        driver records it, `PeerState.heard`), so while consensus runs no status request is
        made: those polls were a sixth of an idle validator's event-loop time at one
        client, per height, for nothing new."""

        async def poll(peer: PeerState) -> None:
            try:
                peer.height = await fetch_height(self.client, peer.url)
                peer.up = True
            except (httpx.HTTPError, SyncError, ValueError) as exc:
                peer.up = False
                peer.last_error = str(exc)

        stale = time.monotonic() - HEARD_FRESH_S
        await asyncio.gather(*(poll(p) for p in self.peers.values() if p.heard_at < stale))

    def _should_fetch(self, best_height: int) -> bool:
        now = asyncio.get_running_loop().time()
        head = self.ledger.head.height
        if best_height <= head:
            self._ahead_since = None
            return False
        if self.sink.is_validator and best_height == head + 1:
            if self._ahead_since is None:
                self._ahead_since = now
            if now - self._ahead_since < LAGGING_AFTER_S:
                return False
        self._ahead_since = None
        return True

    async def _fetch_and_apply(self, key: bytes, peer: PeerState) -> bool:
        """One batch from `peer`, handed to the driver; True if the head moved past it.

        False is the peer's strike (an error, a stall, an empty answer while it claims
        more, or blocks the driver refused). _SinkBusy when the driver could not take the
        batch at all: that is no fault of the peer, and no other peer's batch would be
        taken either, so the round ends there and the next one tries again.
        """
        score = self.scores.setdefault(key, PeerScore())
        start = self.ledger.head.height + 1
        try:
            items = await fetch_blocks(self.client, peer.url, start)
        except (httpx.HTTPError, SyncError) as exc:
            return self._strike(score, peer, f"fetch failed: {exc}")
        if not items:
            return self._strike(score, peer, f"claims height {peer.height} but sent no blocks")
        refused_before = self.sink.sync_refusals(peer.url)
        if not self.sink.deliver_blocks(items, peer.url):
            raise _SinkBusy(peer.url)
        await self._applied(start + len(items) - 1, peer.url, refused_before)
        if self.ledger.head.height < start:
            return self._strike(score, peer, "its blocks were refused or not applied")
        score.succeed(self.ledger.head.height - start + 1)
        return True

    async def _applied(self, last: int, source: str, refused_before: int) -> None:
        """Wait until the head reaches `last` (the batch's end), the driver refuses a block
        from `source`, or the head stops moving for APPLY_TIMEOUT_S.

        Not merely until the batch's first block: fetching again then asks the peer for
        the whole batch once per block it holds, which under load is a catch-up that the
        peer's serving, not the chain, holds back."""
        loop = asyncio.get_running_loop()
        seen = self.ledger.head.height
        deadline = loop.time() + APPLY_TIMEOUT_S
        while self.ledger.head.height < last and loop.time() < deadline:
            if self.sink.sync_refusals(source) > refused_before:
                return
            await asyncio.sleep(0.01)
            if self.ledger.head.height > seen:
                seen = self.ledger.head.height
                deadline = loop.time() + APPLY_TIMEOUT_S

    def _strike(self, score: PeerScore, peer: PeerState, reason: str) -> bool:
        score.fail(reason, time.monotonic())
        log.warning(
            "catch-up from %s: %s (strike %d, backing off %.0f s)",
            peer.url,
            reason,
            score.strikes,
            score.backoff_until - time.monotonic(),
        )
        return False
