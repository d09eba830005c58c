"""The web explorer every node serves at `/`, and the query API under it (docs/explorer.md)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from almoner.node.server.explorer.pages import HERE, STATIC_URL, explorer_router
from almoner.node.server.explorer.signals_page import signals_router
from almoner.node.server.explorer_api import query_router
from almoner.node.server.services import NodeServices
from almoner.node.server.supervision import SupervisionService


def install_explorer(
    app: FastAPI, services: NodeServices, supervision: SupervisionService | None = None
) -> None:
    """Add the query API routes, the pages and their static assets to a node's app; with
    `supervision`, the regulator's signals page too."""
    app.include_router(query_router(lambda: services.ledger))
    app.include_router(explorer_router(lambda: services.ledger, services.genesis))
    if supervision is not None:
        app.include_router(signals_router(supervision))
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="explorer-static")


__all__ = ["install_explorer"]
