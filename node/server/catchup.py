"""Catch-up: fetch certified blocks from peers over HTTP.

What is fetched is only shape-checked here; `almoner.node.chain.certified` decides whether
a block is ours before it touches the store.
"""

from __future__ import annotations

from typing import Any

import httpx

from almoner.node.chain.certified import MAX_STREAM_BYTES, SyncError, parse_block_stream

FETCH_LIMIT = 64


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
