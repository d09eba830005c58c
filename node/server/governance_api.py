"""Governance reads (docs/governance.md): `GET /v1/governance` (proposals, recoveries,
sets, upgrades, protocol version) and `GET /v1/validators` (the set by height, named).

A separate router included through `create_app(extra=...)`, so the v1 route groups stay
as they are."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from almoner.node.chain.governance_views import governance_view, validators_view
from almoner.node.server.api import render
from almoner.node.server.services import NodeServices


def governance_routes(services: NodeServices) -> APIRouter:
    router = APIRouter()
    ledger = services.ledger

    @router.get("/v1/governance")
    async def get_governance(request: Request) -> Response:
        return render(request, governance_view(ledger))

    @router.get("/v1/validators")
    async def get_validators(request: Request) -> Response:
        return render(request, validators_view(ledger))

    return router
