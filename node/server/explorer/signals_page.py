"""The regulator's risk-signals page (`/regulator/signals`): this node's supervision of its
chain, rendered on the server in the page's language, under a banner that names the node
and height and points at `almoner supervise` for the trust-nothing check."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from almoner.node.chain.supervision.model import SEVERITIES
from almoner.node.errors import ProtocolError
from almoner.node.server.explorer.pages import render_page
from almoner.node.server.supervision import RULES, SupervisionService
from almoner.node.server.supervision_api import parse_query, score_page, signal_page

PAGE_SIGNALS = 50
TOP_SCORES = 20


def signals_router(service: SupervisionService) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/regulator/signals", response_class=HTMLResponse)
    async def signals(
        request: Request,
        rule: str | None = None,
        severity: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        service.want()
        snap = service.snapshot
        try:
            query = parse_query(rule or None, severity or None, None, None, None)
            found, next_cursor = signal_page(snap, query, cursor, PAGE_SIGNALS)
        except ProtocolError:
            return render_page(request, "error.html", 404, what=request.url.query)
        scores, _ = score_page(snap, parse_query(None, None, None, None, None), None, 10**6)
        scores.sort(key=lambda s: -s["score"])
        return render_page(
            request,
            "signals.html",
            computed_by=service.computed_by(),
            signals=found,
            names=snap.names,
            next_cursor=next_cursor,
            counts=snap.counts,
            rules=RULES,
            severities=SEVERITIES,
            rule=rule or "",
            severity=severity or "",
            scores=scores[:TOP_SCORES],
        )

    return router
