"""The HTTP API of docs/spec/07-http-api.md, served by every node.

Handlers are thin: they parse, call the ledger/mempool/driver, and render. Every failure
is a `{"error": {code, message, details}}` body with the status docs/spec/04-errors.md
gives for the code; no input can produce a 500, commit anything, or stop the node.

The API depends only on `NodeServices` (services.py). Routes come in groups, one
`APIRouter` each (writes, reads, health, validators); `create_app` includes them in that
order and then any `extra` routers, which is how other parts of the node add endpoints.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from almoner.node.chain.certified import encode_stream_item
from almoner.node.chain.codec import MSGPACK, H, encode, split_array, to_json_view
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.state import business_id_key
from almoner.node.chain.tx import MAX_TX_BYTES, decode_tx
from almoner.node.chain.views import (
    TRACE_HOPS_MAX,
    block_view,
    committed_evidence,
    committed_tx,
    funds_view,
    head_view,
    not_found,
    party_view,
    receipt,
    trace_view,
)
from almoner.node.errors import CodecError, ProtocolError, StoreError, invalid_field
from almoner.node.server.events import event_routes
from almoner.node.server.metrics import Metrics
from almoner.node.server.openapi import install_openapi
from almoner.node.server.p2p import P2PError, open_envelope
from almoner.node.server.services import NodeServices
from almoner.node.server.signatures import checked_ids

log = logging.getLogger("almoner.api")

# Tx types whose body carries a business id, unique per (party, type).
BUSINESS_ID_TYPES = (
    "campaign.open",
    "donation.record",
    "funds.transfer",
    "funds.disburse",
    "donation.refund",
    "audit.attest",
)
BLOCK_RANGE_MAX = 1000
# Bytes of blocks in one range answer (a page: the client asks again from the next height).
BLOCK_STREAM_MAX_BYTES = 16 * 1024 * 1024
# Block-range answers streaming at once (catch-up of a few peers, an export or two).
RANGE_READS_MAX = 4
RANGE_READ_HOLD_S = 120.0
JSON = "application/json"
# A batch admits this many txs between yields to the event loop (~10-20 ms of work).
BATCH_YIELD_EVERY = 100


def wants_msgpack(request: Request) -> bool:
    return MSGPACK in request.headers.get("accept", "")


def render(request: Request, value: Any, status: int = 200) -> Response:
    if wants_msgpack(request):
        return Response(encode(value), status_code=status, media_type=MSGPACK)
    return JSONResponse(to_json_view(value), status_code=status)


def error_response(exc: ProtocolError) -> JSONResponse:
    headers = {"retry-after": "1"} if exc.code == "busy" else None
    return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)


def http_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": {}}}, status_code=status
    )


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; a larger body is `too_large` before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise CodecError("too_large", f"body is over the {limit}-byte limit", {"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise CodecError("too_large", f"body is over the {limit}-byte limit", {"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def refuse_json(request: Request, body: bytes) -> None:
    """A JSON body where signed MessagePack is expected gets an answer that says so.

    Still `malformed` (what the bytes are, as MessagePack), but a developer who posted the
    JSON view of a tx learns what to send instead of reading "trailing bytes". A body
    starting with `{` or `[` is never valid here: as MessagePack it is one small int
    followed by trailing bytes.
    """
    looks_json = len(body) > 1 and body[:1] in (b"{", b"[")
    if looks_json or ("json" in request.headers.get("content-type", "") and _is_json(body)):
        raise CodecError(
            "malformed",
            "the body is JSON, but this route takes MessagePack: send the signed tx's "
            "canonical MessagePack bytes with Content-Type: application/msgpack "
            "(docs/spec/02-keys-and-signing.md, docs/platforms.md)",
            {"expected": MSGPACK, "got": "json"},
        )


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def parse_hex(value: str, field: str, length: int = 32) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != length or raw.hex() != value:
        raise invalid_field(field, f"must be {2 * length} lowercase hex characters")
    return raw


def parse_int(value: str | None, field: str, default: int | None = None, low: int = 0) -> int:
    if value is None:
        if default is None:
            raise invalid_field(field, "is required")
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < low or int(value) >= 2**63:
        raise invalid_field(field, f"must be an integer >= {low}")
    return int(value)


class RangeReads:
    """At most `limit` block-range answers streaming at once: each costs CPU for as long
    as it streams, so more would starve every other request. One more is `busy`.

    A slot is freed when its stream ends, or after RANGE_READ_HOLD_S in any case (a
    stream that never started, because its client left first, frees nothing itself)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: dict[object, float] = {}

    def enter(self) -> object:
        now = time.monotonic()
        for token, started in list(self._active.items()):
            if now - started > RANGE_READ_HOLD_S:
                del self._active[token]
        if len(self._active) >= self.limit:
            raise ProtocolError(
                "busy",
                f"{self.limit} block ranges are being read; retry shortly",
                {"retry_after_s": 1},
            )
        token = object()
        self._active[token] = now
        return token

    async def hold(self, token: object, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                yield chunk
        finally:
            self._active.pop(token, None)


async def stream_blocks(ledger: Ledger, start: int, end: int) -> AsyncIterator[bytes]:
    """Blocks [start, end) one at a time, up to BLOCK_STREAM_MAX_BYTES (always at least one):
    memory stays one block per request, and the event loop runs between blocks. A client
    that wants more asks again from the next height, as catch-up does."""
    sent = 0
    for height in range(start, end):
        block, cert = ledger.block_at(height), ledger.certificate_at(height)
        if block is None or cert is None:
            return
        item = encode_stream_item(block, cert)
        if sent and sent + len(item) > BLOCK_STREAM_MAX_BYTES:
            return
        sent += len(item)
        yield item
        await asyncio.sleep(0)


async def stream_block_views(ledger: Ledger, start: int, end: int) -> AsyncIterator[bytes]:
    """The JSON list of block views, streamed like `stream_blocks` and as JSONResponse
    would render it; the list is cut short at BLOCK_STREAM_MAX_BYTES."""
    yield b"["
    sent = 0
    for height in range(start, end):
        if ledger.block_at(height) is None:
            break
        item = json_bytes(to_json_view(block_view(ledger, height)))
        if sent and sent + len(item) > BLOCK_STREAM_MAX_BYTES:
            break
        yield (b"," if sent else b"") + item
        sent += len(item)
        await asyncio.sleep(0)
    yield b"]"


def json_bytes(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def _without_otel() -> dict[str, Any]:
    """FastAPI's built-in OpenTelemetry hooks off, where this FastAPI has them (0.16x):
    even with no OpenTelemetry set up they look the providers up in the environment on
    every request, 3% of the time of the validator that takes the clients' submissions
    (py-spy, 64 connections). The node reports its own metrics at /metrics."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(services: NodeServices, extra: tuple[APIRouter, ...] = ()) -> FastAPI:
    app = FastAPI(
        title="Almoner node", version="1", docs_url=None, redoc_url=None, **_without_otel()
    )
    install_error_handlers(app)
    app.add_middleware(SubmitFastPath, services=services)  # inside the request metrics
    install_request_metrics(app, services)
    for router in (
        write_routes(services),
        read_routes(services),
        health_routes(services),
        validator_routes(services),
        event_routes(services),
        *extra,
    ):
        app.include_router(router)
    install_openapi(app)
    return app


def exception_response(request: Request, exc: Exception) -> JSONResponse:
    """Every failure as the protocol's error body; a bug is a 500 that says the node lives.
    The app's exception handlers and the submission fast path both answer with this."""
    if isinstance(exc, ProtocolError):
        return error_response(exc)
    if isinstance(exc, StoreError):
        # Not the request's fault and not a bug: the disk failed. Same answer as /healthz.
        log.error("store failure on %s %s: %s", request.method, request.url.path, exc)
        return http_error(503, "unhealthy", f"the node's store failed: {exc}")
    if isinstance(exc, ClientDisconnect):  # the client left: nothing failed here
        log.debug("client left during %s %s", request.method, request.url.path)
        return http_error(400, "client_disconnected", "the client closed the connection")
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return http_error(500, "internal", "internal error; the node is still running")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProtocolError)
    async def _protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        return exception_response(request, exc)

    @app.exception_handler(StoreError)
    async def _store_failed(request: Request, exc: StoreError) -> JSONResponse:
        return exception_response(request, exc)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return exception_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return http_error(404, "not_found", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            return http_error(405, "method_not_allowed", f"{request.method} is not allowed here")
        return http_error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["request"], "msg": "invalid"}
        field = ".".join(str(p) for p in first["loc"][1:]) or "request"
        return error_response(invalid_field(field, str(first["msg"])))


def install_request_metrics(app: FastAPI, services: NodeServices) -> None:
    app.add_middleware(RequestMetrics, metrics=services.metrics)


class SubmitFastPath:
    """`POST /v1/txs` straight to its handler, past the router, the dependency solver and
    the exception middleware: on the validator that takes the clients' submissions those
    layers were a third of its event loop's time (py-spy, 64 connections). The handler,
    the error bodies (`exception_response`) and the metrics (RequestMetrics, outside this)
    are the app's own; the route stays registered, for the OpenAPI document and for every
    other method."""

    ROUTE = SimpleNamespace(path="/v1/txs")  # what RequestMetrics labels the request by

    def __init__(self, app: ASGIApp, services: NodeServices) -> None:
        self.app = app
        self.submit = submit_tx_handler(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.ROUTE.path
            and not scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.ROUTE
        request = Request(scope, receive)
        try:
            response = await self.submit(request)
        except Exception as exc:  # mapped as the app maps it (a bug alone is a 500)
            response = exception_response(request, exc)
        await response(scope, receive, send)


class RequestMetrics:
    """Per-route request counts and latencies, as plain ASGI middleware: Starlette's
    BaseHTTPMiddleware (`@app.middleware`) runs each request through an extra task and
    memory streams, which cost a fifth of a validator's time under client load."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(
                "almoner_http_request_seconds", time.monotonic() - started, path=path
            )
            self.metrics.inc("almoner_http_requests_total", path=path, status=str(status))


def submit_tx_handler(services: NodeServices) -> Callable[[Request], Awaitable[Response]]:
    """`POST /v1/txs`: admission by the mempool, gossip, and the wait for the commit."""
    ledger = services.ledger

    async def submit_tx(request: Request) -> Response:
        raw = await read_body(request, MAX_TX_BYTES)
        refuse_json(request, raw)
        admission = services.mempool.add(raw)
        if admission.status == "pending":
            services.gossip_txs([raw])
        if admission.status == "committed":
            return render(request, receipt(ledger, admission.tx_id))
        if request.query_params.get("wait") == "commit":
            timeout = services.limits.wait_commit_timeout_s
            if await services.notifier.wait(admission.tx_id, timeout) or ledger.tx_location(
                admission.tx_id
            ):
                return render(request, receipt(ledger, admission.tx_id))
            raise ProtocolError(
                "timeout",
                "the tx was not committed in time; it stays pending",
                {"tx_id": admission.tx_id.hex()},
            )
        return render(request, {"tx_id": admission.tx_id, "status": "pending"}, 202)

    return submit_tx


def write_routes(services: NodeServices) -> APIRouter:
    """Submitting txs: admission by the mempool, then gossip to the validators."""
    router = APIRouter()
    router.post("/v1/txs")(submit_tx_handler(services))

    @router.post("/v1/txs/batch")
    async def submit_batch(request: Request) -> Response:
        body = await read_body(request, services.limits.max_body_bytes)
        refuse_json(request, body)
        results: list[dict[str, Any]] = []
        accepted: list[bytes] = []
        raws = split_array(body)
        checked = await checked_ids(raws)  # on worker threads, both cores
        for index, raw in enumerate(raws):
            if index and index % BATCH_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let health checks and consensus run mid-batch
            try:
                admission = services.mempool.add(raw, signature_checked=H(raw) in checked)
            except ProtocolError as exc:
                results.append({"index": index, "status": "rejected", **exc.to_json()})
                continue
            if admission.status == "pending":
                accepted.append(raw)
            results.append({"index": index, "tx_id": admission.tx_id, "status": admission.status})
        if accepted:
            services.gossip_txs(accepted)
        return render(request, {"results": results})

    return router


def read_routes(services: NodeServices) -> APIRouter:
    """The ledger's public reads: txs with receipts, blocks, proofs, parties, funds."""
    router = APIRouter()
    ledger = services.ledger

    @router.get("/v1/txs/{tx_id}")
    async def get_tx(request: Request, tx_id: str) -> Response:
        tid = parse_hex(tx_id, "tx_id")
        proof_size = request.query_params.get("proof_size")
        size = None if proof_size is None else parse_int(proof_size, "proof_size", low=1)
        pending = services.mempool.get(tid)
        if pending is not None:
            return render(request, {"tx": decode_tx(pending), "status": "pending", "receipt": None})
        tx = committed_tx(ledger, tid)
        if tx is None:
            raise not_found(f"tx {tx_id}")
        return render(
            request, {"tx": tx, "status": "committed", "receipt": receipt(ledger, tid, size)}
        )

    @router.get("/v1/ids/{party}/{tx_type}/{business_id}")
    async def get_by_business_id(
        request: Request, party: str, tx_type: str, business_id: str
    ) -> Response:
        # A platform's records hold its own ids; this finds the tx (and proof) that used one.
        key = parse_hex(party, "party")
        if tx_type not in BUSINESS_ID_TYPES:
            raise invalid_field("tx_type", f"must be one of {', '.join(BUSINESS_ID_TYPES)}")
        tid = ledger.store.get(business_id_key(key, tx_type, business_id))
        if tid is None:
            raise not_found(f"{tx_type} id {business_id!r} of {party}")
        found = {"party": key, "type": tx_type, "id": business_id, "tx_id": tid}
        return render(request, {**found, "receipt": receipt(ledger, tid)})

    @router.get("/v1/genesis")
    async def get_genesis(request: Request) -> Response:
        # JSON: the document exactly as genesis.json holds it; msgpack: the hashed map.
        if wants_msgpack(request):
            return render(request, services.genesis.to_protocol())
        return JSONResponse(services.genesis.to_json())

    @router.get("/v1/head")
    async def get_head(request: Request) -> Response:
        return render(request, head_view(ledger))

    @router.get("/v1/blocks/{height}")
    async def get_block(request: Request, height: str) -> Response:
        return render(request, block_view(ledger, parse_int(height, "height", low=1)))

    range_reads = RangeReads(RANGE_READS_MAX)

    @router.get("/v1/blocks")
    async def get_blocks(request: Request) -> Response:
        start = parse_int(request.query_params.get("from"), "from", default=1, low=1)
        limit = parse_int(request.query_params.get("limit"), "limit", default=100, low=1)
        end = min(start + min(limit, BLOCK_RANGE_MAX), ledger.head.height + 1)
        token = range_reads.enter()
        if wants_msgpack(request):  # for sync and export: a stream, objects back to back
            body = range_reads.hold(token, stream_blocks(ledger, start, end))
            return StreamingResponse(body, media_type=MSGPACK)
        # Like every read, JSON by default: the range as a list of block views.
        body = range_reads.hold(token, stream_block_views(ledger, start, end))
        return StreamingResponse(body, media_type=JSON)

    @router.get("/v1/proofs/consistency")
    async def consistency(request: Request) -> Response:
        first = parse_int(request.query_params.get("first"), "first", low=1)
        second = parse_int(request.query_params.get("second"), "second", low=1)
        size = ledger.head.log_size
        if first > second:
            raise invalid_field("first", "must not exceed second")
        if second > size:
            raise invalid_field("second", f"must not exceed the log size {size}")
        path = ledger.log().consistency_proof(first, second)
        return render(request, {"first": first, "second": second, "path": path})

    @router.get("/v1/parties/{pubkey}")
    async def get_party(request: Request, pubkey: str) -> Response:
        return render(request, party_view(ledger, parse_hex(pubkey, "pubkey")))

    @router.get("/v1/charities/{pubkey}/funds")
    async def get_funds(request: Request, pubkey: str) -> Response:
        return render(request, funds_view(ledger, parse_hex(pubkey, "pubkey")))

    @router.get("/v1/donations/{platform}/{donation_id}/trace")
    async def get_trace(request: Request, platform: str, donation_id: str) -> Response:
        # Hops are paged (an added, optional pair of parameters; see trace_view).
        hops_from = parse_int(request.query_params.get("hops_from"), "hops_from", default=0)
        hops_limit = parse_int(
            request.query_params.get("hops_limit"), "hops_limit", default=TRACE_HOPS_MAX, low=1
        )
        view = trace_view(
            ledger, parse_hex(platform, "platform"), donation_id, hops_from, hops_limit
        )
        return render(request, view)

    @router.get("/v1/evidence")
    async def get_evidence(request: Request) -> Response:
        consensus = services.consensus
        pending = list(consensus.pending_evidence.values()) if consensus else []
        return render(request, {"committed": committed_evidence(ledger), "seen": pending})

    @router.get("/v1/status")
    async def get_status(request: Request) -> Response:
        return render(request, services.status())

    return router


def health_routes(services: NodeServices) -> APIRouter:
    """For load balancers and Prometheus: liveness, readiness, metrics."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        reason = services.unhealthy()
        if reason is not None:
            return http_error(503, "unhealthy", reason)
        return JSONResponse({"ok": True})

    @router.get("/readyz")
    async def readyz() -> Response:
        height = services.ledger.head.height
        if services.syncing():
            return JSONResponse({"ready": False, "height": height}, 503)
        return JSONResponse({"ready": True, "height": height})

    @router.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(services.metrics.render(), media_type="text/plain; version=0.0.4")

    return router


def validator_routes(services: NodeServices) -> APIRouter:
    """Consensus traffic between validators: signed envelopes into the driver's inbox."""
    router = APIRouter()
    ledger = services.ledger

    @router.post("/v1/p2p/messages")
    async def p2p(request: Request) -> Response:
        max_body = services.limits.max_body_bytes
        body = await read_body(request, max_body)
        validators = frozenset(ledger.validators(ledger.head.height + 1))
        try:
            envelope = open_envelope(body, ledger.chain_id, validators, max_body)
        except P2PError as exc:
            services.metrics.inc("almoner_p2p_refused_total", code=exc.code)
            return http_error(exc.status, exc.code, exc.message)
        consensus = services.consensus
        if consensus is None:
            return http_error(403, "not_a_validator", "this node takes no consensus traffic")
        accepted = sum(consensus.deliver(envelope.sender, msg) for msg in envelope.msgs)
        if accepted < len(envelope.msgs):
            raise ProtocolError("busy", "consensus inbox full", {"accepted": accepted})
        await asyncio.sleep(0)
        return JSONResponse({"accepted": accepted}, status_code=202)

    return router
