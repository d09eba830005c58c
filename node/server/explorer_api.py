"""The query API: paginated lists and totals over the secondary indexes (docs/explorer.md).

Read-only routes in their own router so the explorer pages, the SDK and anyone with
curl see the same data. Every list answers `{"items": [...], "next_cursor": str|null}`;
pass `cursor` back unchanged for the next page. The response models below exist for the
OpenAPI document: handlers render through `api.render`, so like every read they answer
msgpack when asked and hex for bin fields in JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from almoner.node.chain import queries
from almoner.node.chain.ledger import Ledger
from almoner.node.server.api import parse_hex, render


class DonationItem(BaseModel):
    platform: str
    donation: str
    donor: str
    charity: str
    campaign: str | None
    fund: str
    amount: int
    currency: str
    received_at: int
    tx_id: str
    height: int
    time: int | None
    confirmed: bool
    confirm_tx: str | None
    confirm_height: int | None
    confirm_time: int | None


class DonationPage(BaseModel):
    items: list[DonationItem]
    next_cursor: str | None


class PartyItem(BaseModel):
    pubkey: str
    name: str
    role: str
    org_id: str
    suspended: bool
    registered_height: int
    suspended_height: int | None
    suspend_reason: str | None


class PartyPage(BaseModel):
    items: list[PartyItem]
    next_cursor: str | None


class CampaignItem(BaseModel):
    charity: str
    campaign: str
    title: str
    currency: str
    goal: int
    raised: int
    spent: int
    transferred_out: int
    refunded: int
    held: int
    tx_id: str
    height: int


class CampaignPage(BaseModel):
    items: list[CampaignItem]
    next_cursor: str | None


class DisbursementItem(BaseModel):
    charity: str
    disbursement: str
    fund: str
    amount: int
    currency: str
    category: str
    payee: str
    purpose: str
    evidence: list[str]
    tx_id: str
    height: int
    time: int


class DisbursementPage(BaseModel):
    items: list[DisbursementItem]
    next_cursor: str | None


class SpentByCategory(BaseModel):
    program: int
    admin: int
    fundraising: int


class PeriodTotals(BaseModel):
    period: str
    currency: str
    income: int
    donated: int
    donations: int
    transferred_in: int
    transferred_out: int
    spent: SpentByCategory
    expenditure: int
    overhead_ratio: float | None
    refunded: int
    unconfirmed: int
    unconfirmed_count: int


class TotalsPage(BaseModel):
    items: list[PeriodTotals]
    next_cursor: str | None


class FlowEdge(BaseModel):
    source: str
    target: str
    amount: int


class FundFlow(BaseModel):
    charity: str
    currency: str
    edges: list[FlowEdge]


class CharitySummary(BaseModel):
    charity: PartyItem
    donations: int
    confirmed: int
    confirmation_rate: float | None
    currencies: list[str]


class AttestationItem(BaseModel):
    regulator: str
    attestation: str
    charity: str
    period: str
    opinion: str
    report: str
    note: str
    tx_id: str
    height: int


class AttestationPage(BaseModel):
    items: list[AttestationItem]
    next_cursor: str | None


LIMIT = Query(None, ge=1, le=queries.MAX_LIMIT, description="items per page (default 50)")
CURSOR = Query(None, max_length=400, description="next_cursor of the previous page")
FROM_TIME = Query(None, ge=0, description="earliest block time, ms since the epoch")
TO_TIME = Query(None, ge=0, description="latest block time, ms since the epoch")


def query_router(ledger: Callable[[], Ledger]) -> APIRouter:
    """The read routes; `ledger` returns the node's current ledger at request time."""
    router = APIRouter(tags=["query"])

    def page(request: Request, result: queries.Page) -> Response:
        return render(request, result.to_view())

    @router.get("/v1/donations", response_model=DonationPage)
    async def list_donations(
        request: Request,
        charity: str | None = None,
        campaign: str | None = Query(None, max_length=64),
        platform: str | None = None,
        confirmed: bool | None = None,
        from_time: int | None = FROM_TIME,
        to_time: int | None = TO_TIME,
        limit: int | None = LIMIT,
        cursor: str | None = CURSOR,
    ) -> Response:
        filters = queries.DonationFilter(
            charity=None if charity is None else parse_hex(charity, "charity"),
            campaign=campaign,
            platform=None if platform is None else parse_hex(platform, "platform"),
            confirmed=confirmed,
            time_from=from_time,
            time_to=to_time,
        )
        result = queries.list_donations(ledger().store, filters, limit=limit, cursor=cursor)
        return page(request, result)

    @router.get("/v1/donations/{platform}/{donation_id}", response_model=DonationItem)
    async def get_donation(request: Request, platform: str, donation_id: str) -> Response:
        item = queries.donation(ledger().store, parse_hex(platform, "platform"), donation_id)
        return render(request, item)

    @router.get("/v1/parties", response_model=PartyPage)
    async def list_parties(
        request: Request,
        role: Literal["charity", "platform", "regulator"] | None = None,
        limit: int | None = LIMIT,
        cursor: str | None = CURSOR,
    ) -> Response:
        return page(
            request, queries.list_parties(ledger().store, role=role, limit=limit, cursor=cursor)
        )

    @router.get("/v1/campaigns", response_model=CampaignPage)
    async def list_campaigns(
        request: Request,
        charity: str | None = None,
        limit: int | None = LIMIT,
        cursor: str | None = CURSOR,
    ) -> Response:
        owner = None if charity is None else parse_hex(charity, "charity")
        result = queries.list_campaigns(ledger().store, charity=owner, limit=limit, cursor=cursor)
        return page(request, result)

    @router.get("/v1/charities/{charity}/disbursements", response_model=DisbursementPage)
    async def list_disbursements(
        request: Request,
        charity: str,
        category: Literal["program", "admin", "fundraising"] | None = None,
        from_time: int | None = FROM_TIME,
        to_time: int | None = TO_TIME,
        limit: int | None = LIMIT,
        cursor: str | None = CURSOR,
    ) -> Response:
        result = queries.list_disbursements(
            ledger().store,
            parse_hex(charity, "charity"),
            category=category,
            time_from=from_time,
            time_to=to_time,
            limit=limit,
            cursor=cursor,
        )
        return page(request, result)

    @router.get("/v1/charities/{charity}/totals", response_model=TotalsPage)
    async def charity_totals(
        request: Request,
        charity: str,
        period: Literal["month", "year", "all"] = "month",
        currency: str | None = Query(None, min_length=3, max_length=3),
        limit: int | None = LIMIT,
        cursor: str | None = CURSOR,
    ) -> Response:
        result = queries.charity_totals(
            ledger().store,
            parse_hex(charity, "charity"),
            currency=currency,
            period=period,
            limit=limit,
            cursor=cursor,
        )
        return page(request, result)

    @router.get("/v1/charities/{charity}/summary", response_model=CharitySummary)
    async def charity_summary(request: Request, charity: str) -> Response:
        store = ledger().store
        key = parse_hex(charity, "charity")
        summary: dict[str, Any] = queries.charity_summary(store, key)
        summary["currencies"] = queries.charity_currencies(store, key)
        return render(request, summary)

    @router.get("/v1/charities/{charity}/flow", response_model=FundFlow)
    async def fund_flow(
        request: Request, charity: str, currency: str = Query(min_length=3, max_length=3)
    ) -> Response:
        key = parse_hex(charity, "charity")
        store = ledger().store
        queries.charity_summary(store, key)  # not_found for a non-charity
        return render(request, queries.fund_flow(store, key, currency))

    @router.get("/v1/charities/{charity}/attestations", response_model=AttestationPage)
    async def list_attestations(
        request: Request, charity: str, limit: int | None = LIMIT, cursor: str | None = CURSOR
    ) -> Response:
        result = queries.list_attestations(
            ledger().store, parse_hex(charity, "charity"), limit=limit, cursor=cursor
        )
        return page(request, result)

    return router
