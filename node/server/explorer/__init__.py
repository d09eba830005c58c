"""The web explorer every node serves at `/`, and the query API under it (docs/explorer.md)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.server.explorer.pages import HERE, STATIC_URL, explorer_router
from almoner.node.server.explorer_api import query_router


def install_explorer(app: FastAPI, ledger: Callable[[], Ledger], genesis: Genesis) -> None:
    """Add the query API routes, the pages and their static assets to a node's app."""
    app.include_router(query_router(ledger))
    app.include_router(explorer_router(ledger, genesis))
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="explorer-static")


__all__ = ["install_explorer"]
