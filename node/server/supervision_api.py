"""`GET /v1/supervision/signals` and `GET /v1/supervision/scores` (docs/supervision.md,
"The node's API"): this node's own supervision of its chain, labelled as such.

Items have exactly the shapes `almoner supervise --json` prints; every answer adds
`computed_by` (which node, which height it analysed) and `trust` (en/zh: this is the
node's computation; `almoner supervise` is the trust-nothing path). Lists page like the
query API: `{"items", "next_cursor"}`, `cursor` passed back unchanged.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from almoner.node.chain.queries import MAX_LIMIT
from almoner.node.chain.supervision.engine import in_period
from almoner.node.chain.supervision.model import SEVERITIES, Signal
from almoner.node.chain.supervision.periods import parse_date
from almoner.node.errors import invalid_field
from almoner.node.server.api import parse_hex, render
from almoner.node.server.supervision import RULES, TRUST, Snapshot, SupervisionService

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class SignalQuery:
    rule: str | None = None
    severity: str | None = None
    party: bytes | None = None
    start: int | None = None  # block time, ms; `to` is exclusive, as in the CLI
    end: int | None = None

    def matches(self, signal: Signal) -> bool:
        return (
            (self.rule is None or signal.rule == self.rule)
            and (self.severity is None or signal.severity == self.severity)
            and (self.party is None or signal.party == self.party)
            and signal.in_window(self.start, self.end)
        )


def parse_query(
    rule: str | None,
    severity: str | None,
    party: str | None,
    date_from: str | None,
    date_to: str | None,
) -> SignalQuery:
    """The filters, each checked: a bad one is `invalid_field` naming it."""
    if rule is not None and rule not in RULES:
        raise invalid_field("rule", f"unknown rule; rules: {', '.join(RULES)}")
    if severity is not None and severity not in SEVERITIES:
        raise invalid_field("severity", f"must be one of {', '.join(SEVERITIES)}")
    start = _date(date_from, "from")
    end = _date(date_to, "to")
    if start is not None and end is not None and end <= start:
        raise invalid_field("to", "must be after from")
    owner = None if party is None else parse_hex(party, "party")
    return SignalQuery(rule, severity, owner, start, end)


def _date(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_date(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise invalid_field(name, "must be a date (YYYY-MM-DD) or an ISO 8601 time") from exc


def encode_cursor(*parts: int) -> str:
    text = ".".join(str(p) for p in parts).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> tuple[int, ...] | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        parts = tuple(int(p) for p in text.split("."))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid_field("cursor", "is not a cursor this node gave out") from exc
    if len(parts) != size or any(p < 0 for p in parts):
        raise invalid_field("cursor", "is not a cursor this node gave out")
    return parts


def signal_page(
    snap: Snapshot, query: SignalQuery, cursor: str | None, limit: int
) -> tuple[list[Signal], str | None]:
    """Up to `limit` matching signals after `cursor`, and the cursor for the next page."""
    after = decode_cursor(cursor, 2)
    start = snap.after(None if after is None else (after[0], after[1]))
    found: list[Signal] = []
    last = start
    for index in range(start, len(snap.signals)):
        if query.matches(snap.signals[index]):
            if len(found) == limit:
                return found, encode_cursor(*snap.keys[last])
            found.append(snap.signals[index])
            last = index
    return found, None


def score_page(
    snap: Snapshot, query: SignalQuery, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    after = decode_cursor(cursor, 1)
    start = 0 if after is None else after[0]
    found: list[dict[str, Any]] = []
    for index in range(start, len(snap.scores)):
        score = snap.scores[index]
        if (query.party is None or score.charity == query.party) and in_period(
            score.start, score.end, query.start, query.end
        ):
            if len(found) == limit:
                return found, encode_cursor(index)
            found.append(score.to_json())
    return found, None


def supervision_routes(service: SupervisionService) -> APIRouter:
    router = APIRouter(tags=["supervision"])
    limit_q = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="items per page")
    cursor_q = Query(None, max_length=200, description="next_cursor of the previous page")
    from_q = Query(None, alias="from", max_length=40, description="date, block time, UTC")
    to_q = Query(None, alias="to", max_length=40, description="date (exclusive)")
    party_q = Query(None, max_length=64, description="party id, 64 hex characters")
    rule_q = Query(None, max_length=40, description="one of the rules")
    severity_q = Query(None, max_length=10, description="info, warning or high")

    def answer(request: Request, body: dict[str, Any]) -> Response:
        return render(request, {**body, "computed_by": service.computed_by(), "trust": TRUST})

    @router.get("/v1/supervision/signals")
    async def signals(
        request: Request,
        rule: str | None = rule_q,
        severity: str | None = severity_q,
        party: str | None = party_q,
        date_from: str | None = from_q,
        date_to: str | None = to_q,
        limit: int = limit_q,
        cursor: str | None = cursor_q,
    ) -> Response:
        query = parse_query(rule, severity, party, date_from, date_to)
        service.want()
        snap = service.snapshot
        found, next_cursor = signal_page(snap, query, cursor, limit)
        items = [s.to_json(snap.names.get(s.party.hex(), "")) for s in found]
        return answer(
            request,
            {
                "items": items,
                "next_cursor": next_cursor,
                "counts": snap.counts,
                "signals_dropped": snap.dropped,
            },
        )

    @router.get("/v1/supervision/scores")
    async def scores(
        request: Request,
        party: str | None = party_q,
        date_from: str | None = from_q,
        date_to: str | None = to_q,
        limit: int = limit_q,
        cursor: str | None = cursor_q,
    ) -> Response:
        query = parse_query(None, None, party, date_from, date_to)
        service.want()
        found, next_cursor = score_page(service.snapshot, query, cursor, limit)
        return answer(request, {"items": found, "next_cursor": next_cursor})

    return router


__all__ = [
    "SignalQuery",
    "parse_query",
    "score_page",
    "signal_page",
    "supervision_routes",
]
