"""Catch-up: fetch certified blocks from peers and check them before they touch the store.

A block from a peer is trusted only through its commit certificate (a quorum of the
validators in force at that height signed its hash) and by re-executing it against our
own state. `check_certified_block` is the single place that decides this, for catch-up
and observers alike.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterator
from typing import Any

import httpx

from consensus import Certificate, CertificateError, Verifier, verify_certificate
from node.codec import decode, encode, split_stream
from node.errors import AlmonerError
from node.ledger import BlockError, ExecutedBlock, Ledger
from node.signing import block_hash

log = logging.getLogger("almoner.sync")

FETCH_LIMIT = 64
MAX_STREAM_BYTES = 256 * 1024 * 1024


class SyncError(AlmonerError):
    """A peer answered something that is not a certified chain segment."""


def check_certified_block(
    ledger: Ledger,
    block: Any,
    cert_map: Any,
    verifier: Verifier,
    verified: Container[bytes] = frozenset(),
) -> ExecutedBlock:
    """Certificate first, then header and txs (PROTOCOL.md §5 order); raise BlockError.

    The certificate must prove this header at the header's own height, so a block that
    does not follow the head (a dropped block) is reported by the header rule it breaks
    (`bad_link`, `bad_height`), not as a certificate problem. `verified` holds tx ids whose
    signatures were already checked (the verifier's worker processes, the mempool).
    """
    if not isinstance(block, dict) or not isinstance(block.get("header"), dict):
        raise BlockError("invalid_field", "a block is a map with a header")
    header = block["header"]
    try:
        claimed = block_hash(header)
    except AlmonerError as exc:
        raise BlockError("invalid_field", f"header does not encode: {exc}") from exc
    height = header.get("height")
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        height = ledger.head.height + 1
    try:
        cert = Certificate.from_map(cert_map)
        verify_certificate(
            cert,
            ledger.chain_id,
            ledger.validators(height),
            verifier,
            height=height,
            block_hash=claimed,
        )
    except (CertificateError, TypeError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, CertificateError) else "malformed"
        raise BlockError("bad_certificate", f"block {height}: certificate {reason}: {exc}") from exc
    return ledger.execute_block(block, verified=verified)


def iter_stream(data: bytes, max_item: int = MAX_STREAM_BYTES) -> Iterator[Any]:
    """Strictly decoded items of a msgpack stream, as sent by GET /v1/blocks."""
    try:
        for raw in split_stream(data):
            yield decode(raw, max_size=max_item)
    except AlmonerError as exc:
        raise SyncError(f"block stream does not decode: {exc}") from exc


def encode_stream_item(block: dict[str, Any], cert: dict[str, Any]) -> bytes:
    return encode({"block": block, "commit": cert})


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


def parse_block_stream(data: bytes, source: str) -> list[tuple[Any, Any]]:
    """(block, certificate) pairs of a GET /v1/blocks msgpack stream, shape-checked only."""
    items = []
    for item in iter_stream(data):
        if not isinstance(item, dict) or set(item) != {"block", "commit"}:
            raise SyncError(f"{source} sent a block stream item of the wrong shape")
        items.append((item["block"], item["commit"]))
    return items


async def fetch_height(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(f"{url}/v1/status")
    if response.status_code != 200:
        raise SyncError(f"{url} answered HTTP {response.status_code} for its status")
    height = response.json().get("height")
    if not isinstance(height, int) or height < 0:
        raise SyncError(f"{url} reported no valid height")
    return height
