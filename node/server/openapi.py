"""`/openapi.json` that tells the truth, and the docs UI served from installed files.

The handlers read raw bodies (the signed MessagePack bytes must reach the mempool exactly
as sent), so FastAPI cannot infer request or response schemas from their signatures. This
module describes every route by hand — request body, each response with its schema, the
error shape — after the routes are built; `tests/server/test_openapi.py` fails if a route
is added without a description here. Swagger UI and ReDoc load their scripts from the
`fastapi_offline` package's files, served by the node itself: no CDN, so the docs work on
an isolated network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from almoner.node.chain.tx import TX_TYPES
from almoner.node.errors import STATUS_BY_CODE

STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
STATIC_PATH = "/docs-static"
MSGPACK = "application/msgpack"

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, hex"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{128}$", "description": "64 bytes, hex"}
INT = {"type": "integer", "minimum": 0}


def obj(required: list[str], props: dict[str, Any], extra: bool = True) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": extra,
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


PROOF = obj(
    ["leaf_index", "tree_size", "path"],
    {"leaf_index": INT, "tree_size": INT, "path": {"type": "array", "items": HEX32}},
)
HEAD_REF = obj(["height", "block_hash"], {"height": INT, "block_hash": HEX32})
VOTE_SIG = obj(["validator", "sig"], {"validator": HEX32, "sig": HEX64}, extra=False)

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        ["error"],
        {
            "error": obj(
                ["code", "message", "details"],
                {
                    "code": {
                        "type": "string",
                        "description": "docs/spec/04-errors.md",
                        "examples": sorted(STATUS_BY_CODE),
                    },
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            )
        },
    ),
    "Tx": obj(
        ["chain", "type", "signer", "nonce", "body", "sig"],
        {
            "chain": {"type": "string"},
            "type": {"type": "string", "enum": list(TX_TYPES)},
            "signer": HEX32,
            "nonce": INT,
            "body": {"type": "object", "description": "docs/spec/03-transactions.md"},
            "sig": HEX64,
        },
        extra=False,
    ),
    "Pending": obj(
        ["tx_id", "status"], {"tx_id": HEX32, "status": {"type": "string", "const": "pending"}}
    ),
    "Receipt": obj(
        ["tx_id", "status", "height", "block_hash", "index_in_block", "proof", "head"],
        {
            "tx_id": HEX32,
            "status": {"type": "string", "const": "committed"},
            "height": INT,
            "block_hash": HEX32,
            "index_in_block": INT,
            "proof": PROOF,
            "head": HEAD_REF,
        },
    ),
    "BatchResults": obj(
        ["results"],
        {
            "results": {
                "type": "array",
                "items": obj(
                    ["index", "status"],
                    {
                        "index": INT,
                        "tx_id": HEX32,
                        "status": {"enum": ["pending", "committed", "rejected"]},
                        "error": {"type": "object"},
                    },
                ),
            }
        },
    ),
    "TxStatus": obj(
        ["tx", "status", "receipt"],
        {
            "tx": ref("Tx"),
            "status": {"enum": ["pending", "committed"]},
            "receipt": {"anyOf": [ref("Receipt"), {"type": "null"}]},
        },
    ),
    "Header": obj(
        [
            "chain",
            "height",
            "time",
            "prev",
            "proposer",
            "tx_count",
            "txs_root",
            "log_size",
            "log_root",
            "validators_hash",
        ],
        {
            "chain": {"type": "string"},
            "height": INT,
            "time": INT,
            "prev": HEX32,
            "proposer": HEX32,
            "tx_count": INT,
            "txs_root": HEX32,
            "log_size": INT,
            "log_root": HEX32,
            "validators_hash": HEX32,
        },
        extra=False,
    ),
    "Certificate": obj(
        ["height", "round", "block_hash", "votes"],
        {
            "height": INT,
            "round": INT,
            "block_hash": HEX32,
            "votes": {"type": "array", "items": VOTE_SIG},
        },
        extra=False,
    ),
    "Head": obj(
        ["block_hash", "header", "commit"],
        {"block_hash": HEX32, "header": ref("Header"), "commit": ref("Certificate")},
    ),
    "Block": obj(
        ["block_hash", "header", "txs", "tx_ids", "commit"],
        {
            "block_hash": HEX32,
            "header": ref("Header"),
            "txs": {"type": "array", "items": ref("Tx")},
            "tx_ids": {"type": "array", "items": HEX32},
            "commit": ref("Certificate"),
        },
    ),
    "Blocks": {"type": "array", "items": ref("Block")},
    "Consistency": obj(
        ["first", "second", "path"],
        {"first": INT, "second": INT, "path": {"type": "array", "items": HEX32}},
    ),
    "Genesis": obj(
        ["chain_id", "genesis_time", "validators", "parties", "params"],
        {
            "chain_id": {"type": "string"},
            "genesis_time": INT,
            "validators": {
                "type": "array",
                "items": obj(["name", "pubkey"], {"name": {"type": "string"}, "pubkey": HEX32}),
            },
            "parties": {
                "type": "array",
                "items": obj(
                    ["pubkey", "role", "name", "org_id"],
                    {
                        "pubkey": HEX32,
                        "role": {"enum": ["charity", "platform", "regulator"]},
                        "name": {"type": "string"},
                        "org_id": {"type": "string"},
                    },
                ),
            },
            "params": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    ),
    "Party": obj(
        ["pubkey", "role", "name", "org_id", "suspended"],
        {
            "pubkey": HEX32,
            "role": {"enum": ["charity", "platform", "regulator"]},
            "name": {"type": "string"},
            "org_id": {"type": "string"},
            "suspended": {"type": "boolean"},
            "registered_height": INT,
            "registered_tx": {"anyOf": [HEX32, {"type": "null"}]},
            "suspended_height": {"anyOf": [INT, {"type": "null"}]},
            "suspended_tx": {"anyOf": [HEX32, {"type": "null"}]},
            "suspend_reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    ),
    "Funds": obj(
        ["charity", "funds"],
        {
            "charity": HEX32,
            "funds": {
                "type": "array",
                "items": obj(
                    ["fund", "currency", "balance", "restricted"],
                    {
                        "fund": {"type": "string"},
                        "currency": {"type": "string"},
                        "balance": INT,
                        "restricted": {"type": "boolean"},
                    },
                ),
            },
        },
    ),
    "Trace": obj(
        ["donation", "hops", "held", "confirmation", "proofs", "head"],
        {
            "donation": {"type": "object"},
            "hops": {"type": "array", "items": {"type": "object"}},
            "held": {"type": "array", "items": {"type": "object"}},
            "confirmation": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "proofs": {"type": "object", "additionalProperties": PROOF},
            "head": HEAD_REF,
        },
    ),
    "Evidence": obj(
        ["committed", "seen"],
        {
            "committed": {"type": "array", "items": {"type": "object"}},
            "seen": {"type": "array", "items": {"type": "object"}},
        },
    ),
    "Status": obj(
        ["node", "chain_id", "genesis_hash", "height", "validator", "peers", "syncing"],
        {
            "node": {"type": "string"},
            "chain_id": {"type": "string"},
            "genesis_hash": HEX32,
            "height": INT,
            "validator": {"type": "boolean"},
            "peers": {"type": "object"},
            "syncing": {"type": "boolean"},
        },
    ),
    "Validators": obj(
        ["height", "validators", "history"],
        {
            "height": INT,
            "validators": {"type": "array", "items": {"type": "object"}},
            "history": {"type": "array", "items": {"type": "object"}},
        },
    ),
    "Governance": obj(
        ["height", "validators", "proposals", "recoveries", "upgrades", "protocol"],
        {
            "height": INT,
            "validators": ref("Validators"),
            "proposals": {"type": "array", "items": {"type": "object"}},
            "recoveries": {"type": "array", "items": {"type": "object"}},
            "upgrades": {"type": "array", "items": {"type": "object"}},
            "protocol": obj(["version", "max_supported"], {"version": INT, "max_supported": INT}),
        },
    ),
    "BusinessId": obj(
        ["party", "type", "id", "tx_id", "receipt"],
        {
            "party": HEX32,
            "type": {"type": "string"},
            "id": {"type": "string"},
            "tx_id": HEX32,
            "receipt": ref("Receipt"),
        },
    ),
    "Health": obj(["ok"], {"ok": {"type": "boolean"}}),
    "Ready": obj(["ready", "height"], {"ready": {"type": "boolean"}, "height": INT}),
    "Accepted": obj(["accepted"], {"accepted": INT}),
}

TX_BODY = {
    "required": True,
    "description": "One signed tx: its canonical MessagePack bytes (docs/spec/02, 03). "
    "JSON is refused with 400 malformed.",
    "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
}
BATCH_BODY = {
    "required": True,
    "description": "A MessagePack array of signed txs (each element as in POST /v1/txs).",
    "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
}
P2P_BODY = {
    "required": True,
    "description": "A signed envelope {chain, from, msgs, sig} (docs/spec/06, p2p).",
    "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
}


def ok(schema: str, description: str, status: str = "200") -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {
                "application/json": {"schema": ref(schema)},
                MSGPACK: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


def errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        codes = sorted(c for c, s in STATUS_BY_CODE.items() if s == status)
        out[str(status)] = {
            "description": "error: " + (", ".join(codes) or "see docs/spec/04-errors.md"),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


SSE = {
    "200": {
        "description": "text/event-stream: `id: <height>`, `event: block`, `data:` JSON "
        "{height, block_hash, time, txs: [{tx_id, index_in_block, type, signer, tx}]}; "
        "resume with the Last-Event-ID header",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}

ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/txs"): {
        "summary": "Submit one signed tx",
        "requestBody": TX_BODY,
        "parameters": [query("wait", "`commit`: wait (bounded) and answer the receipt")],
        "responses": {
            **ok("Receipt", "committed (already, or after ?wait=commit)"),
            **ok("Pending", "admitted, pending", "202"),
            **errors(400, 403, 409, 413, 422, 503, 504),
        },
    },
    ("post", "/v1/txs/batch"): {
        "summary": "Submit many signed txs; each is judged alone",
        "requestBody": BATCH_BODY,
        "responses": {**ok("BatchResults", "one result per element"), **errors(400, 413)},
    },
    ("get", "/v1/txs/{tx_id}"): {
        "summary": "A tx, its status and its receipt",
        "parameters": [query("proof_size", "prove against the certified head of this log size")],
        "responses": {**ok("TxStatus", "the tx"), **errors(400, 404)},
    },
    ("get", "/v1/ids/{party}/{tx_type}/{business_id}"): {
        "summary": "The committed tx that used a business id, with its receipt",
        "responses": {**ok("BusinessId", "the tx id and receipt"), **errors(400, 404)},
    },
    ("get", "/v1/genesis"): {
        "summary": "The genesis document",
        "responses": ok("Genesis", "as genesis.json; msgpack: the hashed map"),
    },
    ("get", "/v1/head"): {
        "summary": "The newest certified header (signed tree head)",
        "responses": {**ok("Head", "header and commit certificate"), **errors(404)},
    },
    ("get", "/v1/blocks/{height}"): {
        "summary": "One block with its certificate",
        "responses": {**ok("Block", "the block"), **errors(400, 404)},
    },
    ("get", "/v1/blocks"): {
        "summary": "A range of blocks (msgpack: a stream of {block, commit})",
        "parameters": [query("from", "first height (default 1)"), query("limit", "<= 1000")],
        "responses": {**ok("Blocks", "block views"), **errors(400)},
    },
    ("get", "/v1/proofs/consistency"): {
        "summary": "RFC 9162 consistency proof between two log sizes",
        "parameters": [query("first", "older size", True), query("second", "newer size", True)],
        "responses": {**ok("Consistency", "the proof"), **errors(400)},
    },
    ("get", "/v1/parties/{pubkey}"): {
        "summary": "A party's registry entry",
        "responses": {**ok("Party", "the party"), **errors(400, 404)},
    },
    ("get", "/v1/charities/{pubkey}/funds"): {
        "summary": "A charity's fund balances",
        "responses": {**ok("Funds", "balances"), **errors(400, 404)},
    },
    ("get", "/v1/donations/{platform}/{donation_id}/trace"): {
        "summary": "Where a donation went, with inclusion proofs",
        "responses": {**ok("Trace", "the trace"), **errors(400, 404)},
    },
    ("get", "/v1/evidence"): {
        "summary": "Equivocation evidence, committed and seen",
        "responses": ok("Evidence", "evidence"),
    },
    ("get", "/v1/status"): {
        "summary": "Node, chain and sync status",
        "responses": ok("Status", "status"),
    },
    ("get", "/v1/events"): {
        "summary": "Committed txs as server-sent events, resumable by height",
        "parameters": [
            query("from", "first height to send (default: only new blocks)"),
            query("until", "stop after this height"),
            query("party", "only txs signed by or naming this key (hex)"),
            query("type", "only these tx types, comma-separated"),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "resume after this height",
                "schema": {"type": "string"},
            },
        ],
        "responses": {**SSE, **errors(400, 503)},
    },
    ("get", "/v1/validators"): {
        "summary": "The validator set in force for the next height, and its history",
        "responses": ok("Validators", "the sets by height (docs/governance.md)"),
    },
    ("get", "/v1/governance"): {
        "summary": "Proposals, recoveries, validator sets and protocol versions",
        "responses": ok("Governance", "governance state (docs/governance.md)"),
    },
    ("get", "/healthz"): {
        "summary": "Liveness",
        "responses": {**ok("Health", "alive"), **errors(503)},
    },
    ("get", "/readyz"): {
        "summary": "Readiness: caught up with the network",
        "responses": {**ok("Ready", "ready"), "503": {"description": "catching up"}},
    },
    ("get", "/metrics"): {
        "summary": "Prometheus metrics",
        "responses": {
            "200": {
                "description": "Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
    ("post", "/v1/p2p/messages"): {
        "summary": "Validator-to-validator consensus traffic",
        "requestBody": P2P_BODY,
        "responses": {**ok("Accepted", "queued", "202"), **errors(400, 401, 403, 413, 503)},
    },
}


def generic_read(operation: dict[str, Any]) -> dict[str, Any]:
    """A read described elsewhere (the explorer's query API, docs/explorer.md): a JSON
    object, or the error shape; FastAPI's own 422 never happens (errors are 400)."""
    own = operation.get("responses", {}).get("200", {})
    has_model = bool(own.get("content", {}).get("application/json", {}).get("schema"))
    fallback = {
        "description": "JSON (docs/explorer.md)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "summary": operation.get("summary", "query"),
        "responses": {"200": own if has_model else fallback, **errors(400, 404)},
        "parameters": [p for p in operation.get("parameters", []) if p["in"] != "path"],
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every route's body, responses and parameters filled in."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description="The Almoner node API (docs/spec/07-http-api.md). Writes take the signed "
        "canonical MessagePack bytes; reads answer JSON (bin as hex) or MessagePack with "
        "`Accept: application/msgpack`.",
        routes=app.routes,
    )
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            described = ROUTES.get((method, path)) or generic_read(operation)
            path_params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            operation.update(described)
            operation["parameters"] = path_params + described.get("parameters", [])
    schema.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    app.openapi_schema = schema
    return schema


def docs_routes() -> APIRouter:
    """Swagger UI at /docs and ReDoc at /redoc, from files in the installed package."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Almoner node API",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
        )

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Almoner node API",
            redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )

    return router


def install_openapi(app: FastAPI) -> None:
    """The document only: the docs UI is installed by `node.server.docs_assets`."""
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
