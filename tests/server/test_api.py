"""The API in process, over the NodeServices of a real runtime on the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from almoner.node.chain.codec import H, array_header, decode, encode
from almoner.node.chain.store import MemoryStore
from almoner.node.server.api import SubmitFastPath, create_app
from almoner.node.server.app import NodeRuntime, assemble_runtime
from almoner.node.server.config import NodeConfig
from almoner.node.server.p2p import seal
from almoner.node.server.signatures import checked_ids
from tests.localchain import Workload, local_genesis

MSGPACK = {"content-type": "application/msgpack", "accept": "application/msgpack"}


def serve(
    tmp_path: Path, scenario: Callable[[httpx.AsyncClient, NodeRuntime, Workload], Awaitable[None]]
) -> None:
    genesis, keys = local_genesis(4)
    config = NodeConfig(genesis=tmp_path / "genesis.json", data_dir=tmp_path / "data")
    runtime = assemble_runtime(config, genesis, MemoryStore(), None)
    transport = httpx.ASGITransport(app=create_app(runtime))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            await scenario(client, runtime, Workload(genesis, keys))

    asyncio.run(run())


def test_submit_and_read_a_pending_tx(tmp_path: Path) -> None:
    async def scenario(client: httpx.AsyncClient, rt: NodeRuntime, work: Workload) -> None:
        raw = work.donation()
        response = await client.post("/v1/txs", content=raw, headers=MSGPACK)
        assert response.status_code == 202
        assert decode(response.content) == {"tx_id": H(raw), "status": "pending"}
        got = (await client.get(f"/v1/txs/{H(raw).hex()}")).json()
        assert (got["status"], got["receipt"]) == ("pending", None)
        batch = array_header(2) + raw + encode("not a tx")
        results = (await client.post("/v1/txs/batch", content=batch)).json()["results"]
        assert results[0] == {"index": 0, "tx_id": H(raw).hex(), "status": "pending"}
        assert results[1]["status"] == "rejected" and results[1]["error"]["code"] == "invalid_field"
        genesis = await client.get("/v1/genesis", headers={"accept": "application/msgpack"})
        assert genesis.content == encode(rt.genesis.to_protocol())
        head = await client.get("/v1/head")  # nothing committed yet
        assert (head.status_code, head.json()["error"]["code"]) == (404, "not_found")

    serve(tmp_path, scenario)


def test_errors_keep_their_v1_status_and_code(tmp_path: Path) -> None:
    async def scenario(client: httpx.AsyncClient, rt: NodeRuntime, work: Workload) -> None:
        async def code(response: httpx.Response) -> tuple[int, str]:
            return response.status_code, response.json()["error"]["code"]

        assert await code(await client.post("/v1/txs", content=b"\xc1")) == (400, "malformed")
        bad_hex = await client.get("/v1/txs/zz")
        assert await code(bad_hex) == (400, "invalid_field")
        assert bad_hex.json()["error"]["details"] == {"field": "tx_id"}
        assert await code(await client.get(f"/v1/txs/{'ab' * 32}")) == (404, "not_found")
        assert await code(await client.get("/v1/nowhere")) == (404, "not_found")
        assert await code(await client.delete("/v1/head")) == (405, "method_not_allowed")
        assert await code(await client.get("/v1/blocks/0")) == (400, "invalid_field")
        assert await code(await client.get("/v1/blocks/9")) == (404, "not_found")
        # Digits that are not ASCII pass str.isdigit() but not int(): found by schemathesis.
        for odd in ("%C2%B2", "%D9%A3", "%EF%BC%91"):  # superscript two, Arabic-Indic, fullwidth
            assert await code(await client.get(f"/v1/blocks/{odd}")) == (400, "invalid_field")
        events = await client.get("/v1/events", headers={b"last-event-id": b"\xb2"})
        assert events.status_code == 400
        big = b"\x00" * (rt.config.max_body_bytes + 1)
        assert await code(await client.post("/v1/txs/batch", content=big)) == (413, "too_large")
        assert await code(await client.post("/v1/p2p/messages", content=b"\xc1")) == (
            400,
            "malformed",
        )
        # A well-formed envelope from a validator, to a node whose driver is not running.
        envelope = seal(work.keys.validators[0], rt.ledger.chain_id, [{"type": "txs", "txs": []}])
        refused = await client.post("/v1/p2p/messages", content=envelope)
        assert await code(refused) == (403, "not_a_validator")
        assert rt.ledger.head.height == 0 and len(rt.mempool) == 0

    serve(tmp_path, scenario)


def test_health_readiness_metrics_and_a_failed_store(tmp_path: Path) -> None:
    async def scenario(client: httpx.AsyncClient, rt: NodeRuntime, work: Workload) -> None:
        assert (await client.get("/healthz")).json() == {"ok": True}
        ready = await client.get("/readyz")  # not started: no peers known yet
        assert (ready.status_code, ready.json()["ready"]) == (503, False)
        metrics = (await client.get("/metrics")).text
        assert "almoner_height 0" in metrics and "almoner_http_requests_total" in metrics
        status = (await client.get("/v1/status")).json()
        assert status["genesis_hash"] == rt.genesis.hash.hex() and status["validator"] is False
        rt.store.close()  # the disk goes away under a running API
        failed = await client.get("/v1/parties/" + "00" * 32)
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "unhealthy"

    serve(tmp_path, scenario)


def test_a_burst_s_signatures_are_checked_ahead_and_a_bad_one_is_still_refused(
    tmp_path: Path,
) -> None:
    async def scenario(client: httpx.AsyncClient, rt: NodeRuntime, work: Workload) -> None:
        raws = [work.donation() for _ in range(20)]
        forged = decode(raws[5])
        forged["sig"] = bytes(64)
        raws[5] = encode(forged)
        checked = await checked_ids(raws)
        assert checked == frozenset(H(raw) for i, raw in enumerate(raws) if i != 5)
        assert await checked_ids(raws[:3]) == frozenset()  # small: admission checks them
        batch = array_header(len(raws)) + b"".join(raws)
        results = (await client.post("/v1/txs/batch", content=batch)).json()["results"]
        assert [r["status"] for r in results] == ["pending"] * 5 + ["rejected"] + ["pending"] * 14
        assert results[5]["error"]["code"] == "bad_signature"
        assert len(rt.mempool) == 19

    serve(tmp_path, scenario)


def test_a_submission_skips_the_router_and_answers_as_the_app_would(tmp_path: Path) -> None:
    """POST /v1/txs goes straight to its handler; every other request reaches the app.
    Its answers, errors and metrics are the app's: a failed store is 503 unhealthy, a
    JSON body is malformed, and the request is counted under its route."""
    genesis, keys = local_genesis(4)
    config = NodeConfig(genesis=tmp_path / "genesis.json", data_dir=tmp_path / "data")
    runtime = assemble_runtime(config, genesis, MemoryStore(), None)
    work = Workload(genesis, keys)
    reached: list[tuple[str, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append((scope["method"], scope["path"]))
        await PlainTextResponse("the app", status_code=299)(scope, receive, send)

    transport = httpx.ASGITransport(app=SubmitFastPath(app, runtime))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            raw = work.donation()
            sent = await client.post("/v1/txs", content=raw, headers=MSGPACK)
            assert sent.status_code == 202 and decode(sent.content)["tx_id"] == H(raw)
            as_json = await client.post("/v1/txs", content=b'{"type": "x"}')
            assert as_json.json()["error"]["code"] == "malformed"
            for method, path in (("GET", "/v1/txs"), ("POST", "/v1/txs/batch"), ("PUT", "/v1/txs")):
                other = await client.request(method, path, content=b"")
                assert other.status_code == 299
            assert reached == [("GET", "/v1/txs"), ("POST", "/v1/txs/batch"), ("PUT", "/v1/txs")]
            runtime.store.close()
            failed = await client.post("/v1/txs", content=work.donation(), headers=MSGPACK)
            assert (failed.status_code, failed.json()["error"]["code"]) == (503, "unhealthy")

    asyncio.run(run())
    with_metrics = create_app(assemble_runtime(config, genesis, MemoryStore(), None))
    assert any(getattr(m, "cls", None) is SubmitFastPath for m in with_metrics.user_middleware)

    async def counted() -> None:
        transport = httpx.ASGITransport(app=with_metrics)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            await client.post("/v1/txs", content=b"\xc1")
            metrics = (await client.get("/metrics")).text
            assert 'almoner_http_requests_total{path="/v1/txs",status="400"} 1' in metrics

    asyncio.run(counted())


def test_requests_do_not_consult_opentelemetry(tmp_path: Path, monkeypatch: Any) -> None:
    """FastAPI's own OpenTelemetry hooks (in the versions that have them) looked the
    providers up on every request; the node turns them off and reports at /metrics."""
    trace = pytest.importorskip("opentelemetry.trace")
    lookups: list[int] = []
    real = trace.get_tracer_provider

    def counted() -> Any:
        lookups.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)

    async def scenario(client: httpx.AsyncClient, rt: NodeRuntime, work: Workload) -> None:
        for _ in range(3):
            response = await client.post("/v1/txs", content=work.donation(), headers=MSGPACK)
            assert response.status_code == 202
        assert (await client.get("/v1/status")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'almoner_http_requests_total{path="/v1/txs",status="202"} 3' in metrics

    serve(tmp_path, scenario)
    assert lookups == []
