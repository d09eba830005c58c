"""/openapi.json describes every route the node serves, with bodies, responses and errors.

A platform developer generating a client from the OpenAPI document must get every route,
the MessagePack request body of each write and the shape of each answer; a route added
without its description in `node.server.openapi` fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from almoner.node.devnet.network import create_devnet
from almoner.node.server.app import build_runtime, create_node_app
from almoner.node.server.config import CONFIG_NAME, load_config
from almoner.node.server.openapi import ROUTES, STATIC_PATH


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The node's real app over a real (LevelDB) ledger, built but not started."""
    root: Path = tmp_path_factory.mktemp("openapi")
    create_devnet(root, nodes=1, base_port=None)
    runtime = build_runtime(load_config(root / "nodes" / "validator-0" / CONFIG_NAME))
    try:
        yield create_node_app(runtime)
    finally:
        runtime.ledger.store.close()


def documented(app: FastAPI) -> dict[str, Any]:
    schema: dict[str, Any] = app.openapi()
    return schema


def flatten(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's API routes; included routers (FastAPI >= 0.165) are walked into."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            if included.include_in_schema:
                yield from flatten(included.routes)
        elif isinstance(route, APIRoute) and route.include_in_schema:
            yield route


def served_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method.lower(), route.path)
        for route in flatten(app.routes)
        for method in route.methods or ()
    )


def test_every_route_is_in_the_document_with_responses(app: FastAPI) -> None:
    paths = documented(app)["paths"]
    routes = served_routes(app)
    assert len(routes) >= 18
    for method, path in routes:
        operation = paths[path][method]
        assert operation.get("summary"), (method, path)
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), (method, path)
        for code, response in responses.items():
            if code != "503" or path != "/readyz":
                assert response.get("content"), (method, path, code)
            for media in response.get("content", {}).values():
                assert media.get("schema"), (method, path, code)


def test_every_write_documents_its_msgpack_body(app: FastAPI) -> None:
    paths = documented(app)["paths"]
    posts = [(m, p) for m, p in served_routes(app) if m == "post"]
    assert {p for _, p in posts} == {"/v1/txs", "/v1/txs/batch", "/v1/p2p/messages"}
    for method, path in posts:
        body = paths[path][method]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/msgpack"}
        assert "400" in paths[path][method]["responses"]


def test_errors_use_the_error_schema(app: FastAPI) -> None:
    doc = documented(app)
    assert "Error" in doc["components"]["schemas"]
    for methods in doc["paths"].values():
        for operation in methods.values():
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_no_description_is_left_for_a_route_that_does_not_exist(app: FastAPI) -> None:
    assert set(ROUTES) <= set(served_routes(app))


def test_docs_ui_is_served_from_the_package_without_a_cdn(app: FastAPI) -> None:
    async def fetch_all() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            assets = 0
            for page in ("/docs", "/redoc"):
                html = await client.get(page)
                assert html.status_code == 200
                assert "https://" not in html.text and "cdn" not in html.text.lower()
                for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
                    if f"{STATIC_PATH}/{asset}" in html.text:
                        served = await client.get(f"{STATIC_PATH}/{asset}")
                        assert served.status_code == 200 and len(served.content) > 10_000
                        assets += 1
            assert assets == 3
            doc = (await client.get("/openapi.json")).json()
            assert doc["info"]["title"] == "Almoner node"

    asyncio.run(fetch_all())
