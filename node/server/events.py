"""Commit events: `GET /v1/events`, committed txs as server-sent events, resumable by height.

A platform that submitted thousands of donations should not poll each one; it opens one
stream, filtered to its own key and the types it cares about, and learns of every commit.
Each event is one block's matching txs with `id: <height>`, so a client that reconnects
with `Last-Event-ID` (browsers' EventSource do it by themselves) resumes exactly after the
last block it saw, with nothing lost and nothing repeated. The stream reads committed
blocks from the ledger — the same bytes a receipt proves — never the mempool.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from almoner.node.chain.codec import H, encode, to_json_view
from almoner.node.chain.signing import block_hash
from almoner.node.chain.tx import TX_TYPES
from almoner.node.errors import ProtocolError, invalid_field
from almoner.node.server.services import NodeServices

# A stream waits for the next commit (the notifier wakes it); at least this often it also
# checks whether its client left and whether a keepalive is due.
RECHECK_S = 1.0
KEEPALIVE_S = 15.0
MAX_STREAMS = 64
REPLAY_SLICE = 64
BIN32_BODY_FIELDS = ("party", "charity", "platform", "to", "donor")


@dataclass(frozen=True)
class EventFilter:
    """Which txs a stream carries: by party (signer or a party named in the body), by type."""

    party: bytes | None
    types: frozenset[str] | None

    def matches(self, tx: dict[str, Any]) -> bool:
        if self.types is not None and tx["type"] not in self.types:
            return False
        if self.party is None:
            return True
        body = tx["body"]
        return tx["signer"] == self.party or any(
            body.get(name) == self.party for name in BIN32_BODY_FIELDS
        )


def parse_filter(request: Request) -> EventFilter:
    party_hex = request.query_params.get("party")
    party = None
    if party_hex is not None:
        try:
            party = bytes.fromhex(party_hex)
        except ValueError:
            party = b""
        if len(party) != 32 or party.hex() != party_hex:
            raise invalid_field("party", "must be 64 lowercase hex characters")
    types_text = request.query_params.get("type")
    types = None
    if types_text is not None:
        types = frozenset(t for t in types_text.split(",") if t)
        unknown = sorted(types - set(TX_TYPES))
        if unknown or not types:
            raise invalid_field("type", f"must be tx types separated by commas: {TX_TYPES}")
    return EventFilter(party, types)


def _height(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) >= 2**63:
        raise invalid_field(field, "must be a height (an integer >= 0)")
    return int(value)


def first_height(request: Request, head: int) -> int:
    """`Last-Event-ID: H` resumes after H; else `?from=H` starts at H; else only new blocks."""
    last = _height(request.headers.get("last-event-id"), "Last-Event-ID")
    if last is not None:
        return last + 1
    start = _height(request.query_params.get("from"), "from")
    return head + 1 if start is None else max(start, 1)


def block_event(services: NodeServices, height: int, wanted: EventFilter) -> str | None:
    """The SSE text of one block's matching txs, or None when none match."""
    block = services.ledger.block_at(height)
    if block is None:
        return None
    txs = [
        {
            "tx_id": H(encode(tx)),
            "index_in_block": index,
            "type": tx["type"],
            "signer": tx["signer"],
            "tx": tx,
        }
        for index, tx in enumerate(block["txs"])
        if wanted.matches(tx)
    ]
    if not txs:
        return None
    header = block["header"]
    data = {
        "height": height,
        "block_hash": block_hash(header),
        "time": header["time"],
        "txs": txs,
    }
    text = json.dumps(to_json_view(data), ensure_ascii=False, separators=(",", ":"))
    return f"id: {height}\nevent: block\ndata: {text}\n\n"


class StreamCounter:
    """Open streams are bounded: each holds a connection and a wait for the next commit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


async def stream(
    services: NodeServices,
    request: Request,
    start: int,
    until: int | None,
    wanted: EventFilter,
    counter: StreamCounter,
) -> AsyncIterator[str]:
    height = start
    quiet_since = time.monotonic()
    counter.open += 1  # counted here, so a stream that never starts holds no slot
    try:
        yield "retry: 1000\n\n"
        while until is None or height <= until:
            if height <= services.ledger.head.height:
                event = block_event(services, height, wanted)
                height += 1
                if event is not None:
                    quiet_since = time.monotonic()
                    yield event
                elif height % REPLAY_SLICE == 0:
                    await asyncio.sleep(0)  # a long replay matching nothing must not hog the loop
                continue
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            await services.notifier.wait_block(RECHECK_S)
    finally:
        counter.open -= 1


def event_routes(services: NodeServices) -> APIRouter:
    router = APIRouter()
    counter = StreamCounter(MAX_STREAMS)

    @router.get("/v1/events")
    async def events(request: Request) -> StreamingResponse:
        wanted = parse_filter(request)
        start = first_height(request, services.ledger.head.height)
        until = _height(request.query_params.get("until"), "until")
        if counter.open >= counter.limit:
            raise ProtocolError(
                "busy", f"{counter.limit} event streams are open", {"limit": counter.limit}
            )
        return StreamingResponse(
            stream(services, request, start, until, wanted, counter),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return router
