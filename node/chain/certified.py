"""Certified blocks: the one check that decides whether a block from elsewhere is ours.

A block that did not come through our own consensus (catch-up from a peer, an observer
following the chain, `verify` replaying a node or an archive) is trusted only through its
commit certificate (a quorum of the validators in force at that height signed its hash)
and by re-executing it against our own state. Catch-up, verify and audit all call
`check_certified_block`, so the rule lives here, in the ledger core, with no I/O.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from almoner.consensus import Certificate, CertificateError, Verifier, verify_certificate
from almoner.node.chain.codec import decode, encode, split_stream
from almoner.node.chain.ledger import BlockError, ExecutedBlock, Ledger
from almoner.node.chain.signing import block_hash
from almoner.node.errors import AlmonerError

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
    """Certificate first, then header and txs (docs/spec/08-verify.md order); raise BlockError.

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


BLOCKS_PATH = "/v1/blocks"


def block_range_query(start: int, limit: int) -> dict[str, int]:
    """The query of `GET /v1/blocks` for heights start .. start + limit - 1 (ask for it
    with Accept: MSGPACK to get the stream of items)."""
    return {"from": start, "limit": limit}


def block_range_items(status: int, content: bytes, source: str, start: int) -> list[bytes]:
    """The raw `{"block", "commit"}` items of one `GET /v1/blocks` answer, or SyncError.

    Catch-up (async, in the server) and the audit client (sync) both fetch through this,
    so what counts as a usable answer is decided in one place.
    """
    if status != 200:
        raise SyncError(f"{source} answered HTTP {status} for blocks from {start}")
    if len(content) > MAX_STREAM_BYTES:
        raise SyncError(f"{source} sent an oversized block stream")
    try:
        return split_stream(content)
    except AlmonerError as exc:
        raise SyncError(f"{source} sent a block stream that does not parse: {exc}") from exc


def parse_block_items(raws: list[bytes], source: str) -> list[tuple[Any, Any]]:
    """(block, certificate) pairs of raw stream items, strictly decoded, shape-checked only."""
    items = []
    for raw in raws:
        try:
            item = decode(raw, max_size=MAX_STREAM_BYTES)
        except AlmonerError as exc:
            raise SyncError(f"block stream does not decode: {exc}") from exc
        if not isinstance(item, dict) or set(item) != {"block", "commit"}:
            raise SyncError(f"{source} sent a block stream item of the wrong shape")
        items.append((item["block"], item["commit"]))
    return items


def encode_stream_item(block: dict[str, Any], cert: dict[str, Any]) -> bytes:
    return encode({"block": block, "commit": cert})


def parse_block_stream(data: bytes, source: str) -> list[tuple[Any, Any]]:
    """(block, certificate) pairs of a GET /v1/blocks msgpack stream, shape-checked only."""
    try:
        raws = split_stream(data)
    except AlmonerError as exc:
        raise SyncError(f"block stream does not decode: {exc}") from exc
    return parse_block_items(raws, source)
