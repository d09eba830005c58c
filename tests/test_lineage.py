"""Fund lineage: FIFO across transfers, refunds from lots spread over funds, merged hops,
held entries (docs/spec/03-transactions.md "Fund lineage")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import H
from almoner.node.chain.lineage import Fund, consume_fifo, open_lot, trace
from almoner.node.chain.state import decode_record, fund_balance
from almoner.node.chain.store import MemoryStore, Overlay
from tests import contract_fixtures as fx
from tests.contract_fixtures import CHARITY_1, CHARITY_2, PLATFORM_1, PLATFORM_2, Ledger

C1, C2 = CHARITY_1.public_key, CHARITY_2.public_key
P1, P2 = PLATFORM_1.public_key, PLATFORM_2.public_key


def traced(led: Ledger, platform: bytes, did: str) -> dict[str, Any]:
    result = trace(led.state, platform, did)
    assert result is not None
    return result


def hop_summary(
    result: dict[str, Any],
) -> list[tuple[str, int, bytes, str, bytes | None, str | None]]:
    return [
        (
            h["kind"],
            h["amount"],
            h["from"]["charity"],
            h["from"]["fund"],
            None if h["to"] is None else h["to"]["charity"],
            None if h["to"] is None else h["to"]["fund"],
        )
        for h in result["hops"]
    ]


def held(result: dict[str, Any]) -> list[tuple[bytes, str, int]]:
    return [(h["charity"], h["fund"], h["amount"]) for h in result["held"]]


def lots(led: Ledger, fund: Fund) -> list[tuple[str, int]]:
    return [
        (decode_record(raw)["donation"], decode_record(raw)["remaining"])
        for _, raw in led.state.iterate(schema.FUND_LOT + fund.key)
    ]


def test_fifo_across_transfers_and_disbursement() -> None:
    led = Ledger()
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 100))
    led.submit(PLATFORM_2, "donation.record", fx.donation("e1", C1, 50))
    led.submit(PLATFORM_1, "donation.record", fx.donation("d2", C1, 30))
    led.commit()
    t_id = led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 120))
    assert lots(led, Fund(C1, "CNY", "general")) == [("e1", 30), ("d2", 30)]
    assert lots(led, Fund(C2, "CNY", "general")) == [("d1", 100), ("e1", 20)]
    x_id = led.submit(CHARITY_2, "funds.disburse", fx.disburse("x1", 110))
    assert lots(led, Fund(C2, "CNY", "general")) == [("e1", 10)]

    d1 = traced(led, P1, "d1")
    assert hop_summary(d1) == [
        ("transfer", 100, C1, "general", C2, "general"),
        ("disburse", 100, C2, "general", None, None),
    ]
    assert [h["tx_id"] for h in d1["hops"]] == [t_id, x_id]
    assert d1["hops"][0]["purpose"] == "regranting"
    assert d1["hops"][0]["payee"] is None and d1["hops"][0]["evidence"] is None
    disb = d1["hops"][1]
    assert (disb["payee"], disb["category"], disb["evidence"]) == (
        "Village school",
        "program",
        [H(b"invoice")],
    )
    assert held(d1) == []

    e1 = traced(led, P2, "e1")
    assert hop_summary(e1) == [
        ("transfer", 20, C1, "general", C2, "general"),
        ("disburse", 10, C2, "general", None, None),
    ]
    assert held(e1) == sorted([(C1, "general", 30), (C2, "general", 10)])
    d2 = traced(led, P1, "d2")
    assert (d2["hops"], held(d2)) == ([], [(C1, "general", 30)])


def test_refund_consumes_the_donations_lots_by_sequence_across_funds() -> None:
    led = Ledger()
    led.submit(CHARITY_1, "campaign.open", fx.campaign("flood"))
    led.submit(CHARITY_1, "campaign.open", fx.campaign("school"))
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 100))
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C1, 60, to_fund="flood"))
    led.submit(PLATFORM_1, "donation.record", fx.donation("d5", C1, 50))
    led.submit(
        CHARITY_1, "funds.transfer", fx.transfer("t2", C1, 25, from_fund="flood", to_fund="school")
    )
    # d1's lots: general 40 (seq 0), flood 35 (seq 1), school 25 (seq 3); d5 general 50 (seq 2)
    r_id = led.submit(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 90))
    d1 = traced(led, P1, "d1")
    refunds = [h for h in d1["hops"] if h["kind"] == "refund"]
    assert [(h["from"]["fund"], h["amount"], h["to"]) for h in refunds] == [
        ("general", 40, None),
        ("flood", 35, None),
        ("school", 15, None),
    ]
    assert all(h["tx_id"] == r_id for h in refunds)
    assert held(d1) == [(C1, "school", 10)]
    assert fund_balance(led.state, C1, "CNY", "general") == 50  # d5 untouched
    assert lots(led, Fund(C1, "CNY", "general")) == [("d5", 50)]
    led.reject(
        CHARITY_1, "donation.refund", fx.refund("r2", P1, "d1", 11), "refund_exceeds_unspent"
    )


def test_refund_skips_lots_at_other_charities() -> None:
    led = Ledger()
    led.submit(CHARITY_1, "campaign.open", fx.campaign("flood"))
    led.submit(CHARITY_2, "campaign.open", fx.campaign("school"))
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 100, campaign="flood"))
    led.submit(
        CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 40, from_fund="flood", to_fund="school")
    )
    led.reject(
        CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 61), "refund_exceeds_unspent"
    )
    led.submit(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 60))
    assert held(traced(led, P1, "d1")) == [(C2, "school", 40)]


def test_hops_merge_pieces_per_tx_and_source_fund() -> None:
    led = Ledger()
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 100))
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 60))
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t2", C2, 40))
    # C2 holds d1 as two lots, shown as one held entry
    assert lots(led, Fund(C2, "CNY", "general")) == [("d1", 60), ("d1", 40)]
    assert held(traced(led, P1, "d1")) == [(C2, "general", 100)]
    led.submit(CHARITY_2, "funds.disburse", fx.disburse("x1", 100))
    assert hop_summary(traced(led, P1, "d1")) == [
        ("transfer", 60, C1, "general", C2, "general"),
        ("transfer", 40, C1, "general", C2, "general"),
        ("disburse", 100, C2, "general", None, None),
    ]


def test_one_transfer_of_several_donations_gives_one_hop_each() -> None:
    led = Ledger()
    for i in range(3):
        led.submit(PLATFORM_1, "donation.record", fx.donation(f"d{i}", C1, 10))
    t_id = led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 25))
    for i, amount in enumerate((10, 10, 5)):
        [hop] = traced(led, P1, f"d{i}")["hops"]
        assert (hop["tx_id"], hop["amount"]) == (t_id, amount)
    assert held(traced(led, P1, "d2")) == sorted([(C1, "general", 5), (C2, "general", 5)])


def test_trace_of_unknown_and_confirmed_donation() -> None:
    led = Ledger()
    assert trace(led.state, P1, "nope") is None
    tx_id = led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 77, currency="USD"))
    assert traced(led, P1, "d1")["donation"] == {
        "platform": P1,
        "donation": "d1",
        "charity": C1,
        "amount": 77,
        "currency": "USD",
        "tx_id": tx_id,
        "height": 1,
        "confirmed": False,
    }
    led.commit()
    led.submit(CHARITY_1, "donation.confirm", fx.confirm(P1, "d1"))
    assert traced(led, P1, "d1")["donation"]["confirmed"] is True
    assert held(traced(led, P1, "d1")) == [(C1, "general", 77)]
    assert trace(led.state, P2, "d1") is None


def test_general_holds_one_queue_per_currency() -> None:
    led = Ledger()
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 10, currency="USD"))
    led.submit(PLATFORM_1, "donation.record", fx.donation("d2", C1, 20))
    led.submit(CHARITY_1, "funds.disburse", fx.disburse("x1", 5, currency="CNY"))
    assert lots(led, Fund(C1, "USD", "general")) == [("d1", 10)]
    assert lots(led, Fund(C1, "CNY", "general")) == [("d2", 15)]


class CountingReader:
    """A store that counts the entries its scans hand out."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.scanned = 0

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for item in self.inner.iterate(prefix, reverse=reverse, start=start):
            self.scanned += 1
            yield item


def test_consuming_a_long_queue_in_one_block_reads_each_lot_about_once() -> None:
    """Lots emptied earlier in the same block are not walked again (the head cursor)."""
    store = MemoryStore()
    fund = Fund(C1, "CNY", "general")
    setup = Overlay(store)
    lots = 400
    for i in range(lots):
        open_lot(setup, fund, P1, f"d{i}", 10)
    store.write(setup.changes())
    counting = CountingReader(store)
    block = Overlay(counting)
    for _ in range(lots // 2):
        pieces = consume_fifo(block, fund, 20)  # two lots each, from the head
        assert sum(p.amount for p in pieces) == 20
    assert fund_balance(block, C1, "CNY", "general") == 0
    assert counting.scanned <= 3 * lots
