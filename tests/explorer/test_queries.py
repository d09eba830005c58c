"""The query functions over a real LevelDB chain: every filter, alone and combined, and the
cursor, checked against a brute-force reading of the state."""

from __future__ import annotations

from typing import Any

import pytest

from almoner.node.chain import queries, schema
from almoner.node.chain.indexes import height_time
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.state import decode_record
from almoner.node.errors import ProtocolError
from tests.explorer.chain import ExplorerChain

Chain = tuple[ExplorerChain, Ledger]


def all_donations(ledger: Ledger) -> list[dict[str, Any]]:
    """Every donation, newest first (by height, then position in the block)."""
    records = [decode_record(raw) for _, raw in ledger.store.iterate(schema.DONATION)]

    def position(record: dict[str, Any]) -> tuple[int, int]:
        location = ledger.tx_location(record["tx_id"])
        assert location is not None
        return location["height"], location["index"]

    return sorted(records, key=position, reverse=True)


def every_page(fetch: Any, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page = fetch(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def ids(items: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
    return [(item["platform"], item["donation"]) for item in items]


def filters_for(chain: ExplorerChain, ledger: Ledger) -> list[queries.DonationFilter]:
    keys = chain.keys
    c1, p1 = keys["charity-1"].public_key, keys["platform-1"].public_key
    mid = chain.times[3]
    return [
        queries.DonationFilter(),
        queries.DonationFilter(charity=c1),
        queries.DonationFilter(charity=c1, campaign="wells"),
        queries.DonationFilter(charity=c1, campaign="general"),
        queries.DonationFilter(platform=p1),
        queries.DonationFilter(confirmed=False),
        queries.DonationFilter(confirmed=True),
        queries.DonationFilter(charity=c1, confirmed=False),
        queries.DonationFilter(charity=c1, confirmed=True, platform=p1),
        queries.DonationFilter(time_from=mid),
        queries.DonationFilter(time_to=mid),
        queries.DonationFilter(time_from=chain.times[1], time_to=chain.times[2]),
        queries.DonationFilter(charity=c1, campaign="wells", time_from=chain.times[-1]),
        queries.DonationFilter(platform=p1, confirmed=False, time_to=chain.times[4]),
    ]


def matches(f: queries.DonationFilter, record: dict[str, Any], ledger: Ledger) -> bool:
    when = height_time(ledger.store, record["height"])
    assert when is not None
    return (
        (f.charity is None or record["charity"] == f.charity)
        and (f.campaign is None or record["fund"] == f.campaign)
        and (f.platform is None or record["platform"] == f.platform)
        and (f.confirmed is None or record["confirmed"] == f.confirmed)
        and (f.time_from is None or when >= f.time_from)
        and (f.time_to is None or when <= f.time_to)
    )


def test_every_donation_filter_matches_brute_force(query_chain: Chain) -> None:
    chain, ledger = query_chain
    everything = all_donations(ledger)
    assert len(everything) > 40
    seen_nonempty = 0
    for f in filters_for(chain, ledger):
        expected = [(r["platform"], r["donation"]) for r in everything if matches(f, r, ledger)]
        got = queries.list_donations(ledger.store, f, limit=queries.MAX_LIMIT)
        assert ids(got.items) == expected, f
        assert got.next_cursor is None
        seen_nonempty += bool(expected)
    assert seen_nonempty == len(filters_for(chain, ledger))  # no filter is vacuous here


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_cursor_pages_concatenate_to_the_whole_list(query_chain: Chain, limit: int) -> None:
    chain, ledger = query_chain
    for f in filters_for(chain, ledger)[:9]:
        whole = queries.list_donations(ledger.store, f, limit=queries.MAX_LIMIT).items
        paged = every_page(
            lambda limit, cursor, f=f: queries.list_donations(
                ledger.store, f, limit=limit, cursor=cursor
            ),
            limit,
        )
        assert ids(paged) == ids(whole)
        assert len(set(ids(paged))) == len(paged)


def test_a_cursor_survives_narrowing_the_filter(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    first = queries.list_donations(ledger.store, queries.DonationFilter(), limit=5)
    narrowed = queries.list_donations(
        ledger.store, queries.DonationFilter(charity=c1), limit=500, cursor=first.next_cursor
    )
    last_height = first.items[-1]["height"]
    assert narrowed.items and all(item["height"] <= last_height for item in narrowed.items)
    assert not set(ids(narrowed.items)) & set(ids(first.items))


def test_donation_items_carry_times_and_confirmation(query_chain: Chain) -> None:
    chain, ledger = query_chain
    p1 = chain.keys["platform-1"].public_key
    item = queries.donation(ledger.store, p1, "d-c")
    assert item["amount"] == 5_000 and item["fund"] == "wells" and item["confirmed"]
    assert item["time"] == chain.times[1]
    assert item["confirm_height"] == chain.height and item["confirm_time"] == chain.times[-1]
    late = queries.donation(ledger.store, p1, "d-late")
    assert late["confirm_tx"] is None and late["confirm_time"] is None
    with pytest.raises(ProtocolError) as missing:
        queries.donation(ledger.store, p1, "no-such")
    assert missing.value.code == "not_found"
    assert queries.platforms_with_donation(ledger.store, "d-c") == [p1]
    assert queries.platforms_with_donation(ledger.store, "nope") == []


@pytest.mark.parametrize(
    "cursor",
    ["", "!!", "AQ", "Ag" + "A" * 16, "x" * 500, "AQAAAAAAAAAAAAAAAAAAAAAA"],
)
def test_foreign_or_broken_cursors_are_invalid_field(query_chain: Chain, cursor: str) -> None:
    _, ledger = query_chain
    with pytest.raises(ProtocolError) as bad:
        queries.list_donations(ledger.store, queries.DonationFilter(), cursor=cursor)
    assert bad.value.code == "invalid_field"
    assert bad.value.details["field"] == "cursor"


def test_limits_and_filter_values_are_checked(query_chain: Chain) -> None:
    chain, ledger = query_chain
    for limit in (0, queries.MAX_LIMIT + 1):
        with pytest.raises(ProtocolError):
            queries.list_donations(ledger.store, queries.DonationFilter(), limit=limit)
    with pytest.raises(ProtocolError):  # a campaign id means nothing without its charity
        queries.list_donations(ledger.store, queries.DonationFilter(campaign="wells"))
    with pytest.raises(ProtocolError):
        queries.list_parties(ledger.store, role="validator")
    c1 = chain.keys["charity-1"].public_key
    with pytest.raises(ProtocolError):
        queries.list_disbursements(ledger.store, c1, category="holidays")
    empty = queries.list_donations(ledger.store, queries.DonationFilter(time_from=2**62))
    assert empty.items == [] and empty.next_cursor is None


def test_parties_by_role_and_paging(query_chain: Chain) -> None:
    chain, ledger = query_chain
    everyone = every_page(
        lambda limit, cursor: queries.list_parties(ledger.store, limit=limit, cursor=cursor), 2
    )
    assert len(everyone) == 6
    charities = every_page(
        lambda limit, cursor: queries.list_parties(
            ledger.store, role="charity", limit=limit, cursor=cursor
        ),
        2,
    )
    assert {p["name"] for p in charities} == {
        "Clean Water Foundation",
        "希望小学 Education Trust",
        "Food Bank Network",
    }
    suspended = [p for p in charities if p["suspended"]]
    assert [p["pubkey"] for p in suspended] == [chain.keys["charity-3"].public_key]
    assert suspended[0]["suspend_reason"] == "licence revoked"


def test_campaign_raised_spent_held(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    wells = queries.campaign(ledger.store, c1, "wells")
    # d-c 5000 + d-late 7000 donated, 3000 moved in from general; 1000 refunded, 6000 spent.
    assert (wells["raised"], wells["refunded"], wells["spent"]) == (15_000, 1_000, 6_000)
    assert wells["held"] == 15_000 - 1_000 - 6_000
    listed = every_page(
        lambda limit, cursor: queries.list_campaigns(ledger.store, limit=limit, cursor=cursor), 1
    )
    assert sorted(c["campaign"] for c in listed) == ["books", "wells"]
    mine = queries.list_campaigns(ledger.store, charity=c1).items
    assert [c["campaign"] for c in mine] == ["wells"]


def test_disbursements_by_charity_category_and_time(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    spent: list[dict[str, Any]] = []
    for block, _ in ledger.iter_blocks():
        for tx in block["txs"]:
            if tx["type"] == "funds.disburse" and tx["signer"] == c1:
                spent.append({**tx["body"], "height": block["header"]["height"]})
    spent.reverse()
    got = every_page(
        lambda limit, cursor: queries.list_disbursements(
            ledger.store, c1, limit=limit, cursor=cursor
        ),
        2,
    )
    assert [d["disbursement"] for d in got] == [d["disbursement"] for d in spent]
    for category in ("program", "admin", "fundraising"):
        only = queries.list_disbursements(ledger.store, c1, category=category, limit=500).items
        assert [d["disbursement"] for d in only] == [
            d["disbursement"] for d in spent if d["category"] == category
        ]
    late = queries.list_disbursements(ledger.store, c1, time_from=chain.times[-1]).items
    assert [d["disbursement"] for d in late] == ["dis-wells"]
    assert late[0]["payee"] == "井队 Drilling Co." and late[0]["time"] == chain.times[-1]


def test_charity_totals_per_period_add_up(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    months = queries.charity_totals(ledger.store, c1, period="month").items
    assert [m["period"] for m in months] == ["2026-10", "2026-09"]
    overall = queries.charity_totals(ledger.store, c1, period="all").items
    assert len(overall) == 1 and overall[0]["currency"] == "USD"
    total = overall[0]
    records = [r for r in all_donations(ledger) if r["charity"] == c1]
    assert total["donated"] == sum(r["amount"] for r in records)
    assert total["donations"] == len(records)
    unconfirmed = [r for r in records if not r["confirmed"]]
    assert total["unconfirmed"] == sum(r["amount"] for r in unconfirmed)
    assert total["unconfirmed_count"] == len(unconfirmed)
    assert total["refunded"] == 1_000
    assert sum(m["income"] for m in months) == total["income"]
    spent = total["spent"]
    assert total["overhead_ratio"] == round(
        (spent["admin"] + spent["fundraising"]) / sum(spent.values()), 4
    )
    assert months[0]["spent"]["program"] == 6_000 and months[0]["donated"] == 7_000
    years = queries.charity_totals(ledger.store, c1, period="year").items
    assert [y["period"] for y in years] == ["2026"] and years[0]["income"] == total["income"]
    paged = every_page(
        lambda limit, cursor: queries.charity_totals(ledger.store, c1, limit=limit, cursor=cursor),
        1,
    )
    assert [m["period"] for m in paged] == ["2026-10", "2026-09"]


def test_fund_flow_balances_every_fund(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    edges = queries.fund_flow(ledger.store, c1, "USD")["edges"]
    flows: dict[str, int] = {}
    for edge in edges:
        flows[edge["source"]] = flows.get(edge["source"], 0) - edge["amount"]
        flows[edge["target"]] = flows.get(edge["target"], 0) + edge["amount"]
    for name, net in flows.items():
        if name.startswith("fund:"):
            assert net == 0, name  # in = out + still held
    total = queries.charity_totals(ledger.store, c1, period="all").items[0]
    platforms = sum(-v for k, v in flows.items() if k.startswith("platform:"))
    assert platforms == total["donated"]
    assert flows["refund"] == total["refunded"]
    assert flows["category:program"] == total["spent"]["program"]


def test_summary_and_attestations(query_chain: Chain) -> None:
    chain, ledger = query_chain
    c1 = chain.keys["charity-1"].public_key
    summary = queries.charity_summary(ledger.store, c1)
    records = [r for r in all_donations(ledger) if r["charity"] == c1]
    assert summary["donations"] == len(records)
    assert summary["confirmed"] == sum(r["confirmed"] for r in records)
    opinions = queries.list_attestations(ledger.store, c1).items
    assert [(a["period"], a["opinion"]) for a in opinions] == [("2026", "clean")]
    with pytest.raises(ProtocolError):
        queries.charity_summary(ledger.store, chain.keys["platform-1"].public_key)
