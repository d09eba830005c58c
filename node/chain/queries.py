"""The query API's reads: pages of donations, parties, campaigns, disbursements and totals.

Pure reads over `KVReader`, served from the secondary indexes of `node.chain.indexes`,
never by scanning the chain: a page costs one index seek plus one read per item. Filters
that have no index of their own (a platform within a charity, confirmed) are applied to
the entries of the most selective index while scanning it, at most `SCAN_BUDGET` entries
per page; a page cut short by the budget still carries a cursor, so the client just asks
for the next one.

Cursors are opaque to clients: base64url of a one-byte list kind and the last position
served. Donation positions are the same in every donation index (the tx's seq), so a
cursor stays valid if the client narrows its filters.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.indexes import (
    SEQ_SIZE,
    U32_MAX,
    U64_MAX,
    empty_period,
    height_time,
    read_index_record,
    seq_of,
)
from almoner.node.chain.schema import lstr, u64
from almoner.node.chain.state import (
    decode_record,
    fund_balance,
    fund_key,
    get_campaign,
    get_donation,
    get_party,
    read_record,
)
from almoner.node.chain.store import KVReader
from almoner.node.chain.tx import CATEGORIES, GENERAL_FUND, ROLES
from almoner.node.errors import ProtocolError, invalid_field

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
SCAN_BUDGET = 2_000

CURSOR_DONATIONS = 1
CURSOR_PARTIES = 2
CURSOR_CAMPAIGNS = 3
CURSOR_DISBURSEMENTS = 4
CURSOR_PERIODS = 5
CURSOR_ATTESTATIONS = 6


@dataclass
class Page:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None

    def to_view(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(kind: int, position: bytes) -> str:
    return base64.urlsafe_b64encode(bytes([kind]) + position).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, kind: int) -> bytes | None:
    """The position a cursor stands for; `invalid_field` for anything we did not issue."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < 2 or raw[0] != kind or len(cursor) > 400:
        raise invalid_field("cursor", "is not a cursor of this list; start without one")
    return raw[1:]


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_field("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def _after(position: bytes) -> bytes:
    """The smallest key suffix greater than `position` and everything extending it."""
    return position + b"\x00"


# -- time ranges --------------------------------------------------------------------------


def first_height_at_or_after(reader: KVReader, time_ms: int) -> int | None:
    for _, raw in reader.iterate(schema.IX_TIME_HEIGHT, start=schema.IX_TIME_HEIGHT + u64(time_ms)):
        return schema.from_u64(raw)
    return None


def seq_window(
    reader: KVReader, time_from: int | None, time_to: int | None
) -> tuple[bytes, bytes] | None:
    """(first, last) seq of the txs in blocks with time in [time_from, time_to], newest
    first; None if no block falls in the range. Block times strictly increase with height,
    so a time range is a height range."""
    low_height = 1
    if time_from is not None:
        found = first_height_at_or_after(reader, time_from)
        if found is None:
            return None
        low_height = found
    high_height = U64_MAX - 1
    if time_to is not None:
        after = first_height_at_or_after(reader, time_to + 1) if time_to < U64_MAX else None
        high_height = U64_MAX - 1 if after is None else after - 1
    if high_height < low_height:
        return None
    return seq_of(high_height, U32_MAX), seq_of(low_height, 0)


# -- donations ------------------------------------------------------------------------------


# Indexes whose entries are all confirmed, or all unconfirmed: no lookup needed.
CONFIRMATION_INDEXES = (
    schema.IX_CONFIRMED,
    schema.IX_UNCONFIRMED,
    schema.IX_CONFIRMED_BY_CHARITY,
    schema.IX_UNCONFIRMED_BY_CHARITY,
)


@dataclass(frozen=True)
class DonationFilter:
    charity: bytes | None = None
    campaign: str | None = None  # a fund name of `charity`: a campaign id or "general"
    platform: bytes | None = None
    confirmed: bool | None = None
    time_from: int | None = None
    time_to: int | None = None

    def index_prefix(self) -> bytes:
        """The most selective index for these filters."""
        if self.campaign is not None:
            if self.charity is None:
                raise invalid_field("campaign", "needs charity: campaign ids are per charity")
            return schema.IX_DONATIONS_BY_FUND + self.charity + lstr(self.campaign)
        if self.charity is not None:
            if self.confirmed is not None:
                return (
                    schema.IX_CONFIRMED_BY_CHARITY
                    if self.confirmed
                    else schema.IX_UNCONFIRMED_BY_CHARITY
                ) + self.charity
            return schema.IX_DONATIONS_BY_CHARITY + self.charity
        if self.platform is not None:
            return schema.IX_DONATIONS_BY_PLATFORM + self.platform
        if self.confirmed is not None:
            return schema.IX_CONFIRMED if self.confirmed else schema.IX_UNCONFIRMED
        return schema.IX_DONATIONS

    def keeps(self, reader: KVReader, seq: bytes, dkey: bytes) -> bool:
        """The filters the chosen index does not answer, from the entry alone: the platform
        is the first 32 bytes of the donation key, confirmation one key lookup away."""
        if self.platform is not None and dkey[:32] != self.platform:
            return False
        if self.confirmed is None or self.index_prefix().startswith(CONFIRMATION_INDEXES):
            return True
        return (reader.get(schema.IX_UNCONFIRMED + seq) is None) == self.confirmed


def _scan(
    reader: KVReader,
    prefix: bytes,
    *,
    cursor: bytes | None,
    window: tuple[bytes, bytes] | None,
    limit: int,
    take: Callable[[bytes, bytes], dict[str, Any] | None],
    kind: int,
) -> Page:
    """Walk an index keyed by prefix + seq from the cursor (or window start), newest first.

    `take(seq, value)` returns the item or None (filtered out). At most SCAN_BUDGET entries
    are examined; a page cut short then still returns a cursor.
    """
    start = prefix + (window[0] if window else b"")
    if cursor is not None and prefix + _after(cursor) > start:
        start = prefix + _after(cursor)
    page = Page()
    last: bytes | None = None
    for examined, (key, value) in enumerate(reader.iterate(prefix, start=start)):
        seq = key[len(prefix) :]
        if window is not None and seq > window[1]:
            return page
        if len(page.items) == limit or examined == SCAN_BUDGET:
            page.next_cursor = encode_cursor(kind, last) if last is not None else None
            return page
        last = seq
        item = take(seq, value)
        if item is not None:
            page.items.append(item)
    return page


def donation_item(reader: KVReader, record: dict[str, Any]) -> dict[str, Any]:
    """A donation record with the times a reader wants: block time of the record and of
    the confirmation, next to the platform's own `received_at`."""
    confirm_height = None
    if record["confirm_tx"] is not None:
        location = read_record(reader, schema.TX_INDEX + record["confirm_tx"])
        confirm_height = None if location is None else location["height"]
    return {
        "platform": record["platform"],
        "donation": record["donation"],
        "donor": record["donor"],
        "charity": record["charity"],
        "campaign": record["campaign"],
        "fund": record["fund"],
        "amount": record["amount"],
        "currency": record["currency"],
        "received_at": record["received_at"],
        "tx_id": record["tx_id"],
        "height": record["height"],
        "time": height_time(reader, record["height"]),
        "confirmed": record["confirmed"],
        "confirm_tx": record["confirm_tx"],
        "confirm_height": confirm_height,
        "confirm_time": None if confirm_height is None else height_time(reader, confirm_height),
    }


def _record_at(reader: KVReader, dkey: bytes) -> dict[str, Any]:
    record: dict[str, Any] | None = read_record(reader, schema.DONATION + dkey)
    if record is None:
        raise RuntimeError("the donation index points at a missing donation")
    return record


def list_donations(
    reader: KVReader,
    filters: DonationFilter,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_DONATIONS)
    if position is not None and len(position) != SEQ_SIZE:
        raise invalid_field("cursor", "is not a cursor of this list; start without one")
    window = None
    if filters.time_from is not None or filters.time_to is not None:
        window = seq_window(reader, filters.time_from, filters.time_to)
        if window is None:
            return Page()

    def take(seq: bytes, dkey: bytes) -> dict[str, Any] | None:
        if not filters.keeps(reader, seq, dkey):
            return None
        return donation_item(reader, _record_at(reader, dkey))

    return _scan(
        reader,
        filters.index_prefix(),
        cursor=position,
        window=window,
        limit=size,
        take=take,
        kind=CURSOR_DONATIONS,
    )


def donation(reader: KVReader, platform: bytes, donation_id: str) -> dict[str, Any]:
    record = get_donation(reader, platform, donation_id)
    if record is None:
        raise ProtocolError(
            "not_found", f"donation {donation_id!r} of platform {platform.hex()} not found"
        )
    return donation_item(reader, record)


def platforms_with_donation(reader: KVReader, donation_id: str, limit: int = 20) -> list[bytes]:
    """Which platforms recorded a donation with this id (search by id alone)."""
    try:
        prefix = schema.IX_DONATION_IDS + lstr(donation_id)
    except ValueError:
        return []
    found = []
    for key, _ in reader.iterate(prefix):
        found.append(key[len(prefix) :])
        if len(found) == limit:
            break
    return found


# -- parties and campaigns ------------------------------------------------------------------


def _keyed_page(
    rows: Iterator[tuple[bytes, bytes]],
    prefix: bytes,
    limit: int,
    kind: int,
    item: Callable[[bytes, bytes], dict[str, Any]],
) -> Page:
    page = Page()
    last = None
    for key, value in rows:
        if len(page.items) == limit:
            page.next_cursor = encode_cursor(kind, last) if last is not None else None
            break
        last = key[len(prefix) :]
        page.items.append(item(key, value))
    return page


def party_item(party: dict[str, Any]) -> dict[str, Any]:
    return {
        "pubkey": party["pubkey"],
        "name": party["name"],
        "role": party["role"],
        "org_id": party["org_id"],
        "suspended": party["suspended"],
        "registered_height": party["registered_height"],
        "suspended_height": party["suspended_height"],
        "suspend_reason": party["suspend_reason"],
    }


def list_parties(
    reader: KVReader,
    *,
    role: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_PARTIES)
    if role is not None and role not in ROLES:
        raise invalid_field("role", f"must be one of {', '.join(ROLES)}")
    prefix = schema.PARTY if role is None else schema.IX_PARTIES_BY_ROLE + lstr(role)
    start = prefix + _after(position) if position is not None else None

    def item(key: bytes, value: bytes) -> dict[str, Any]:
        pubkey = key[len(prefix) :]
        party = decode_record(value) if role is None else get_party(reader, pubkey)
        assert party is not None
        return party_item(party)

    return _keyed_page(reader.iterate(prefix, start=start), prefix, size, CURSOR_PARTIES, item)


def fund_totals(reader: KVReader, charity: bytes, currency: str, fund: str) -> dict[str, int]:
    totals: dict[str, int] | None = read_index_record(
        reader, schema.IX_FUND_TOTALS + fund_key(charity, currency, fund)
    )
    return totals or {
        "donated": 0,
        "transferred_in": 0,
        "transferred_out": 0,
        "spent": 0,
        "refunded": 0,
    }


def campaign_item(reader: KVReader, campaign: dict[str, Any]) -> dict[str, Any]:
    charity, currency, name = campaign["charity"], campaign["currency"], campaign["campaign"]
    totals = fund_totals(reader, charity, currency, name)
    return {
        "charity": charity,
        "campaign": name,
        "title": campaign["title"],
        "currency": currency,
        "goal": campaign["goal"],
        "raised": totals["donated"] + totals["transferred_in"],
        "spent": totals["spent"],
        "transferred_out": totals["transferred_out"],
        "refunded": totals["refunded"],
        "held": fund_balance(reader, charity, currency, name),
        "tx_id": campaign["tx_id"],
        "height": campaign["height"],
    }


def list_campaigns(
    reader: KVReader,
    *,
    charity: bytes | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_CAMPAIGNS)
    prefix = schema.CAMPAIGN + (charity or b"")
    start = prefix + _after(position) if position is not None else None
    return _keyed_page(
        reader.iterate(prefix, start=start),
        prefix,
        size,
        CURSOR_CAMPAIGNS,
        lambda _key, value: campaign_item(reader, decode_record(value)),
    )


def campaign(reader: KVReader, charity: bytes, campaign_id: str) -> dict[str, Any]:
    record = get_campaign(reader, charity, campaign_id)
    if record is None:
        raise ProtocolError("not_found", f"campaign {campaign_id!r} of {charity.hex()} not found")
    return campaign_item(reader, record)


# -- disbursements, attestations ------------------------------------------------------------


def list_disbursements(
    reader: KVReader,
    charity: bytes,
    *,
    category: str | None = None,
    time_from: int | None = None,
    time_to: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_DISBURSEMENTS)
    if category is not None and category not in CATEGORIES:
        raise invalid_field("category", f"must be one of {', '.join(CATEGORIES)}")
    window = None
    if time_from is not None or time_to is not None:
        window = seq_window(reader, time_from, time_to)
        if window is None:
            return Page()
    prefix = schema.IX_DISBURSEMENTS + charity
    if category is not None:
        prefix = schema.IX_DISBURSEMENTS_BY_CATEGORY + charity + lstr(category)
    return _scan(
        reader,
        prefix,
        cursor=position,
        window=window,
        limit=size,
        take=lambda _seq, value: decode_record(value),
        kind=CURSOR_DISBURSEMENTS,
    )


def list_attestations(
    reader: KVReader, charity: bytes, *, limit: int | None = None, cursor: str | None = None
) -> Page:
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_ATTESTATIONS)

    def take(_seq: bytes, akey: bytes) -> dict[str, Any] | None:
        record: dict[str, Any] | None = read_record(reader, akey)
        return record

    return _scan(
        reader,
        schema.IX_ATTESTATIONS + charity,
        cursor=position,
        window=None,
        limit=size,
        take=take,
        kind=CURSOR_ATTESTATIONS,
    )


# -- per-charity totals ---------------------------------------------------------------------


def overhead_ratio(spent: dict[str, int]) -> float | None:
    """Admin and fundraising spending over all spending; None before any spending."""
    total = sum(spent.values())
    if total == 0:
        return None
    return round((spent["admin"] + spent["fundraising"]) / total, 4)


def _with_ratios(period: str, currency: str, totals: dict[str, Any]) -> dict[str, Any]:
    spent = totals["spent"]
    return {
        "period": period,
        "currency": currency,
        "income": totals["donated"] + totals["transferred_in"],
        **totals,
        "expenditure": sum(spent.values()),
        "overhead_ratio": overhead_ratio(spent),
    }


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for name, value in more.items():
        if isinstance(value, dict):
            for sub, amount in value.items():
                into[name][sub] += amount
        else:
            into[name] += value


def charity_totals(
    reader: KVReader,
    charity: bytes,
    *,
    currency: str | None = None,
    period: str = "month",
    limit: int | None = None,
    cursor: str | None = None,
) -> Page:
    """Income, spending by category, refunds and unconfirmed money per month or year, for
    each currency, newest period first."""
    size = check_limit(limit)
    position = decode_cursor(cursor, CURSOR_PERIODS)
    if period not in ("month", "year", "all"):
        raise invalid_field("period", "must be month, year or all")
    prefix = schema.IX_CHARITY_PERIOD + charity + (b"" if currency is None else lstr(currency))
    buckets: dict[tuple[str, str], dict[str, Any]] = {}
    for key, raw in reader.iterate(prefix):
        rest = key[len(schema.IX_CHARITY_PERIOD) + len(charity) :]
        cur = rest[1 : 1 + rest[0]].decode()
        month = rest[2 + rest[0] :].decode()
        label = {"month": month, "year": month[:4], "all": "all"}[period]
        bucket = buckets.setdefault((label, cur), empty_period())
        _merge(bucket, decode_record(raw))
    # A charity has one bucket per month and currency it was active in: a few hundred over
    # decades, so ordering them here is cheap; the cursor is the last (period, currency).
    ordered = sorted(buckets.items(), key=lambda item: (item[0][0], item[0][1]), reverse=True)
    page = Page()
    for (label, cur), totals in ordered:
        marker = (label + "\x00" + cur).encode()
        if position is not None and marker >= position:
            continue
        if len(page.items) == size:
            last = page.items[-1]
            page.next_cursor = encode_cursor(
                CURSOR_PERIODS, (last["period"] + "\x00" + last["currency"]).encode()
            )
            break
        page.items.append(_with_ratios(label, cur, totals))
    return page


def charity_summary(reader: KVReader, charity: bytes) -> dict[str, Any]:
    party = get_party(reader, charity)
    if party is None or party["role"] != "charity":
        raise ProtocolError("not_found", f"charity {charity.hex()} not found")
    counts = read_index_record(reader, schema.IX_CHARITY_COUNTS + charity) or {
        "donations": 0,
        "confirmed": 0,
    }
    rate = counts["confirmed"] / counts["donations"] if counts["donations"] else None
    return {
        "charity": party_item(party),
        "donations": counts["donations"],
        "confirmed": counts["confirmed"],
        "confirmation_rate": None if rate is None else round(rate, 4),
    }


def fund_flow(reader: KVReader, charity: bytes, currency: str) -> dict[str, Any]:
    """The charity's money flow as weighted edges, for a Sankey diagram: platforms and
    other charities into funds, funds into funds, other charities, spending categories and
    refunds, and what each fund still holds."""
    prefix = schema.IX_FLOW + charity + lstr(currency)
    edges = []
    for key, raw in reader.iterate(prefix):
        rest = key[len(prefix) :]
        source = rest[1 : 1 + rest[0]].decode()
        rest = rest[1 + rest[0] :]
        target = rest[1 : 1 + rest[0]].decode()
        edges.append({"source": source, "target": target, "amount": decode_record(raw)})
    funds = {edge[k] for edge in edges for k in ("source", "target")}
    for name in sorted(funds):
        if name.startswith("fund:"):
            held = fund_balance(reader, charity, currency, name[5:])
            if held:
                edges.append({"source": name, "target": "held", "amount": held})
    return {"charity": charity, "currency": currency, "edges": edges}


def charity_currencies(reader: KVReader, charity: bytes) -> list[str]:
    """Currencies the charity ever had money in (for choosing a fund-flow diagram)."""
    found: list[str] = []
    for key, _ in reader.iterate(schema.FUND_BALANCE + charity):
        rest = key[len(schema.FUND_BALANCE) + len(charity) :]
        cur = rest[1 : 1 + rest[0]].decode()
        if cur not in found:
            found.append(cur)
    return found


__all__ = [
    "GENERAL_FUND",
    "DonationFilter",
    "Page",
    "campaign",
    "charity_currencies",
    "charity_summary",
    "charity_totals",
    "donation",
    "fund_flow",
    "list_attestations",
    "list_campaigns",
    "list_disbursements",
    "list_donations",
    "list_parties",
    "platforms_with_donation",
]
