"""The explorer's HTML pages: home, track (a donation like a parcel) and charity.

Pages are rendered on the server (Jinja2, Babel) from the same query functions as the
JSON API, so they work without JavaScript; the one script, verify.js, re-checks every
proof in the browser against the validator keys pinned in the page, so a donor need not
trust the node that serves it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from almoner.node.chain import queries
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.lineage import trace
from almoner.node.chain.signing import block_hash
from almoner.node.chain.state import fund_balances, get_donation, get_party
from almoner.node.chain.views import committed_evidence
from almoner.node.errors import ProtocolError
from almoner.node.server.explorer.i18n import COOKIE, LANGS, Translator, negotiate
from almoner.node.server.explorer.sankey import render_sankey
from almoner.node.server.explorer.timeline import build_steps, party_name

HERE = Path(__file__).parent
STATIC_URL = "/explorer/static"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TRACK_LINK = re.compile(r"(?:/track/|/t/)?([0-9a-f]{8,64})/([^/?#\s]{1,64})/?$")
LATEST = 10

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _translator(request: Request) -> Translator:
    return Translator(
        negotiate(
            request.query_params.get("lang"),
            request.cookies.get(COOKIE),
            request.headers.get("accept-language"),
        )
    )


def render_page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    t = _translator(request)
    switch = dict(request.query_params)
    switch["lang"] = t.other
    html = env.get_template(template).render(
        t=t,
        lang=t.lang,
        static=STATIC_URL,
        switch_url=request.url.path + "?" + "&".join(f"{k}={quote(v)}" for k, v in switch.items()),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    chosen = request.query_params.get("lang")
    if chosen in LANGS:
        response.set_cookie(COOKIE, chosen, max_age=365 * 86400, samesite="lax")
    response.headers["content-language"] = t.lang
    return response


def _not_found(request: Request, what: str) -> HTMLResponse:
    return render_page(request, "error.html", 404, what=what)


def _hex(value: str) -> bytes | None:
    return bytes.fromhex(value) if HEX64.match(value) else None


def _qr_svg(url: str) -> Markup:
    qr = segno.make(url, error="m")
    svg: str = qr.svg_inline(scale=4, dark="#1b2a3a", light="#ffffff", border=2)
    return Markup(svg)


def explorer_router(ledger: Callable[[], Ledger], genesis: Genesis) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    names = {v.pubkey: v.name for v in genesis.validators}

    @router.get("/", response_class=HTMLResponse)
    async def home(request: Request, q: str | None = None) -> Response:
        chain = ledger()
        store = chain.store
        matches: list[dict[str, str]] = []
        if q:
            found = _search(store, q.strip())
            if len(found) == 1:
                return RedirectResponse(found[0], status_code=303)
            matches = [{"url": url, "label": url.removeprefix("/track/")} for url in found]
        t = _translator(request)
        donations = queries.list_donations(store, queries.DonationFilter(), limit=LATEST).items
        for item in donations:
            item["charity_name"] = party_name(store, item["charity"])
            item["amount_text"] = t.money(item["amount"], item["currency"])
        blocks = []
        for height in range(chain.head.height, max(chain.head.height - LATEST, 0), -1):
            block, cert = chain.block_at(height), chain.certificate_at(height)
            if block is None or cert is None:
                break
            blocks.append(
                {
                    "height": height,
                    "time": block["header"]["time"],
                    "txs": block["header"]["tx_count"],
                    "hash": block_hash(block["header"]).hex(),
                    "signatures": len(cert["votes"]),
                }
            )
        validators = [
            {"name": names.get(key, ""), "pubkey": key.hex()}
            for key in chain.validators(chain.head.height + 1)
        ]
        return render_page(
            request,
            "home.html",
            q=q or "",
            searched=bool(q),
            matches=matches,
            donations=donations,
            blocks=blocks,
            validators=validators,
            head=chain.head,
            chain_id=chain.chain_id,
        )

    @router.get("/t/{short}/{donation_id}", response_class=HTMLResponse)
    async def short_link(request: Request, short: str, donation_id: str) -> Response:
        found = [
            p
            for p in queries.platforms_with_donation(ledger().store, donation_id)
            if p.hex().startswith(short)
        ]
        if len(found) != 1 or len(short) < 8:
            return _not_found(request, donation_id)
        return RedirectResponse(f"/track/{found[0].hex()}/{quote(donation_id)}", 307)

    @router.get("/track/{platform}/{donation_id}", response_class=HTMLResponse)
    async def track(request: Request, platform: str, donation_id: str) -> Response:
        store = ledger().store
        platform_key = _hex(platform)
        lineage = None if platform_key is None else trace(store, platform_key, donation_id)
        record = None if platform_key is None else get_donation(store, platform_key, donation_id)
        if lineage is None or record is None or platform_key is None:
            return _not_found(request, donation_id)
        t = _translator(request)
        if record["confirm_tx"] is not None:
            location = ledger().tx_location(record["confirm_tx"])
            if location is not None:
                lineage["confirmation"] = {
                    "tx_id": record["confirm_tx"],
                    "height": location["height"],
                }
        steps = build_steps(store, lineage, record, t)
        base = str(request.base_url).rstrip("/")
        short = f"{base}/t/{platform[:8]}/{quote(donation_id)}"
        pinned = {
            "chain": genesis.chain_id,
            "validators": [v.pubkey.hex() for v in genesis.validators],
            "trace": f"/v1/donations/{platform}/{quote(donation_id)}/trace",
        }
        return render_page(
            request,
            "track.html",
            donation=record,
            amount=t.money(record["amount"], record["currency"]),
            charity_name=party_name(store, record["charity"]),
            platform_name=party_name(store, platform_key),
            steps=steps,
            short_link=short,
            qr=_qr_svg(short),
            pinned=pinned,
            validators=[(v.name, v.pubkey.hex()) for v in genesis.validators],
        )

    @router.get("/charity/{charity}", response_class=HTMLResponse)
    async def charity(request: Request, charity: str, currency: str | None = None) -> Response:
        store = ledger().store
        key = _hex(charity)
        party = None if key is None else get_party(store, key)
        if key is None or party is None or party["role"] != "charity":
            return _not_found(request, charity)
        t = _translator(request)
        summary = queries.charity_summary(store, key)
        currencies = queries.charity_currencies(store, key)
        chosen = currency if currency in currencies else (currencies[0] if currencies else None)
        overall = queries.charity_totals(store, key, period="all").items
        months = queries.charity_totals(store, key, period="month", limit=24).items
        flow_svg = Markup("")
        if chosen is not None:
            flow = queries.fund_flow(store, key, chosen)
            flow_svg = render_sankey(
                flow["edges"],
                lambda name: _flow_label(store, name, t),
                lambda a: t.money(a, chosen),
            )
        donations = queries.list_donations(
            store,
            queries.DonationFilter(charity=key),
            limit=20,
            cursor=request.query_params.get("cursor"),
        )
        for item in donations.items:
            item["amount_text"] = t.money(item["amount"], item["currency"])
            item["platform_name"] = party_name(store, item["platform"])
        return render_page(
            request,
            "charity.html",
            party=party,
            summary=summary,
            funds=fund_balances(store, key),
            campaigns=queries.list_campaigns(store, charity=key, limit=100).items,
            overall=overall,
            months=months,
            currencies=currencies,
            currency=chosen,
            flow_svg=flow_svg,
            attestations=queries.list_attestations(store, key, limit=20).items,
            donations=donations,
            charity_hex=charity,
        )

    @router.get("/regulator", response_class=HTMLResponse)
    async def regulator(request: Request, cursor: str | None = None) -> Response:
        store = ledger().store
        parties = queries.list_parties(store, limit=100, cursor=cursor)
        rows = []
        for party in parties.items:
            row: dict[str, Any] = {"party": party}
            if party["role"] == "charity":
                row["summary"] = queries.charity_summary(store, party["pubkey"])
                row["totals"] = queries.charity_totals(store, party["pubkey"], period="all").items
                audits = queries.list_attestations(store, party["pubkey"], limit=1).items
                row["audit"] = audits[0] if audits else None
            rows.append(row)
        return render_page(
            request,
            "regulator.html",
            rows=rows,
            next_cursor=parties.next_cursor,
            evidence=committed_evidence(ledger()),
            names=names,
        )

    return router


def _flow_label(store: Any, name: str, t: Translator) -> str:
    kind, _, rest = name.partition(":")
    if kind in ("platform", "charity") and HEX64.match(rest):
        return party_name(store, bytes.fromhex(rest))
    if kind == "category":
        return t(rest)
    if kind == "fund":
        return f"{t('fund')} {rest}"
    if name == "held":
        return t("flow_held")
    if name == "refund":
        return t("flow_refund")
    return name


def _search(store: Any, q: str) -> list[str]:
    """Track URLs matching a tracking link, `platform/donation`, or a bare donation id."""
    link = TRACK_LINK.search(q)
    if link is not None:
        prefix, donation_id = link.group(1), link.group(2)
        platforms = queries.platforms_with_donation(store, donation_id)
        hits = [p for p in platforms if p.hex().startswith(prefix)]
        if hits:
            return [f"/track/{p.hex()}/{quote(donation_id)}" for p in hits]
    try:
        platforms = queries.platforms_with_donation(store, q)
    except ProtocolError:
        platforms = []
    return [f"/track/{p.hex()}/{quote(q)}" for p in platforms]
