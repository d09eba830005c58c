"""Each supervision rule on a real certified chain: one case that triggers it (fields
checked) and a near miss just on the other side of its threshold."""

from __future__ import annotations

from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.signing import rotation_sign_bytes
from almoner.node.chain.supervision.model import Signal
from tests.audit.scenario import DAY, HOUR, Scenario


def only(signals: list[Signal]) -> Signal:
    assert len(signals) == 1, [s.en for s in signals]
    return signals[0]


def opened() -> Scenario:
    s = Scenario()
    s.at(1, *s.w.opening())
    return s


# -- unconfirmed_donation ----------------------------------------------------------------


def test_unconfirmed_donation_after_n_days() -> None:
    s = opened()
    record = s.donate("charity-1", 12_345, "late")
    s.at(DAY, record)
    s.at(DAY * 32, s.w.confirm("platform-1", "late", "charity-1"))  # after 31 days: late
    signal = only(s.signals("unconfirmed_donation"))
    assert signal.severity == "warning"
    assert signal.party == s.pub("charity-1")
    assert signal.subject == "donation late"
    assert [t.tx_id for t in signal.txs] == [s.tx_id(record)]
    assert signal.txs[0].height == 2
    assert signal.details["amount"] == 12_345 and signal.details["amount_major"] == "123.45"
    assert "30 days" in signal.en and "late" in signal.en
    assert "30 天内未经慈善组织确认" in signal.zh and "US$123.45" in signal.zh
    assert signal.period == "2026-10"  # when the 30 days ran out


def test_confirmed_just_inside_the_window_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 500, "ok"))
    s.at(DAY * 30.5, s.w.confirm("platform-1", "ok", "charity-1"))
    s.at(DAY * 60, s.donate("charity-2", 500, "young"))  # 1 day old at the head
    s.at(DAY * 61, s.donate("charity-2", 500, "young-2"))
    assert s.signals("unconfirmed_donation") == []


def test_days_threshold_comes_from_the_rules() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 500, "d1"))
    s.at(DAY * 3, s.donate("charity-1", 500, "d2"))
    assert s.signals("unconfirmed_donation") == []
    found = s.signals("unconfirmed_donation", rules={"unconfirmed_donation": {"days": 1.5}})
    assert [x.subject for x in found] == ["donation d1"]


# -- spent_before_confirmation -----------------------------------------------------------


def test_disbursing_unconfirmed_money_is_high() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 10_000, "u1"))
    spend = s.disburse("charity-1", 4_000)
    s.at(DAY * 2, spend, s.w.confirm("platform-1", "u1", "charity-1"))  # confirm comes after
    signal = only(s.signals("spent_before_confirmation"))
    assert signal.severity == "high"
    assert signal.party == s.pub("charity-1")
    assert signal.txs[0].tx_id == s.tx_id(spend)
    assert signal.txs[1].height == 2  # the donation's record
    assert signal.details["donations"] == [
        {"platform": s.pub("platform-1").hex(), "donation": "u1", "amount": 4_000}
    ]
    assert "had not confirmed" in signal.en and "尚未经慈善组织确认" in signal.zh


def test_disbursing_confirmed_money_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 10_000, "c1"))
    s.at(DAY * 2, s.w.confirm("platform-1", "c1", "charity-1"), s.disburse("charity-1", 10_000))
    assert s.signals("spent_before_confirmation") == []


# -- idle_restricted_funds ---------------------------------------------------------------


def test_campaign_money_untouched_for_n_days() -> None:
    s = opened()
    record = s.donate("charity-1", 7_000, "w1", campaign="wells")
    s.at(DAY, record)
    s.at(DAY * 182, s.donate("charity-2", 100, "tick"))
    signal = only(s.signals("idle_restricted_funds"))
    assert signal.party == s.pub("charity-1")
    assert signal.subject == "campaign fund wells"
    assert signal.details["balance"] == 7_000 and signal.details["currency"] == "USD"
    assert signal.txs[0].tx_id == s.tx_id(record)
    assert "180 days" in signal.en and "180 天内" in signal.zh


def test_campaign_money_spent_within_n_days_is_not_idle() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 7_000, "w1", campaign="wells"))
    s.at(DAY * 170, s.disburse("charity-1", 1_000, fund="wells"))  # touched: clock restarts
    s.at(DAY * 300, s.donate("charity-2", 100, "tick"))  # 130 days after the spend
    assert s.signals("idle_restricted_funds") == []
    # General (unrestricted) money is never "idle restricted funds".
    s2 = opened()
    s2.at(DAY, s2.donate("charity-1", 7_000, "g1"))
    s2.at(DAY * 400, s2.donate("charity-2", 100, "tick"))
    assert s2.signals("idle_restricted_funds") == []


# -- overhead_above_limit ----------------------------------------------------------------


def test_overhead_above_ten_percent_in_a_month() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 100_000, "o1"))
    admin = s.disburse("charity-1", 1_001, category="admin")
    s.at(DAY * 2, s.disburse("charity-1", 8_999), admin)
    signal = only(s.signals("overhead_above_limit"))
    assert signal.party == s.pub("charity-1")
    assert signal.period == "2026-09"
    assert signal.details["overhead_ratio"] == 0.1001
    assert signal.details["by_category"] == {"admin": 1_001, "program": 8_999}
    assert [t.tx_id for t in signal.txs] == [s.tx_id(admin)]
    assert "10.0%" in signal.en and "超过 10% 的上限" in signal.zh


def test_overhead_at_exactly_the_limit_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 100_000, "o1"))
    s.at(
        DAY * 2,
        s.disburse("charity-1", 9_000),
        s.disburse("charity-1", 500, category="admin"),
        s.disburse("charity-1", 500, category="fundraising"),
    )
    assert s.signals("overhead_above_limit") == []


def test_overhead_is_per_period() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 100_000, "o1"))
    s.at(DAY * 2, s.disburse("charity-1", 5_000, category="admin"))  # September: 100%
    s.at(DAY * 15, s.disburse("charity-1", 50_000))  # October: 0%
    found = s.signals("overhead_above_limit")
    assert [x.period for x in found] == ["2026-09"]
    assert s.signals("overhead_above_limit", granularity="year") == []  # 5/55 = 9.1%


# -- disbursement_without_evidence -------------------------------------------------------


def test_large_disbursement_without_evidence() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 500_000, "e1"))
    spend = s.disburse("charity-1", 100_000, evidence=False, payee="Acme 建筑")
    s.at(DAY * 2, spend, s.disburse("charity-1", 99_999, evidence=False))
    signal = only(s.signals("disbursement_without_evidence"))
    assert signal.txs[0].tx_id == s.tx_id(spend)
    assert signal.details["amount"] == 100_000 and signal.details["payee"] == "Acme 建筑"
    assert "no evidence" in signal.en and "没有附任何凭证" in signal.zh


def test_disbursement_with_evidence_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 500_000, "e1"))
    s.at(DAY * 2, s.disburse("charity-1", 400_000, evidence=True))
    assert s.signals("disbursement_without_evidence") == []


# -- circular_flow -----------------------------------------------------------------------


def test_round_trip_between_two_charities() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 10_000, "r1"), s.donate("charity-2", 10_000, "r2"))
    out = s.w.transfer("charity-1", "charity-2", 1_000)
    back = s.w.transfer("charity-2", "charity-1", 1_000)
    s.at(DAY * 2, out)
    s.at(DAY * 20, back)
    signal = only(s.signals("circular_flow"))
    assert signal.severity == "high"
    assert signal.party == s.pub("charity-1")
    assert [t.tx_id for t in signal.txs] == [s.tx_id(out), s.tx_id(back)]
    assert signal.details["charities"] == [s.pub("charity-1").hex(), s.pub("charity-2").hex()]
    assert "came back within 18.0 days" in signal.en and "回流" in signal.zh


def test_three_charity_loop_and_a_return_after_the_window() -> None:
    s = opened()
    s.at(DAY, *(s.donate(f"charity-{i}", 10_000, f"r{i}") for i in (1, 2, 3)))
    s.at(DAY * 2, s.w.transfer("charity-1", "charity-2", 1_000))
    s.at(DAY * 3, s.w.transfer("charity-2", "charity-3", 1_000))
    s.at(DAY * 4, s.w.transfer("charity-3", "charity-1", 1_000))
    signal = only(s.signals("circular_flow"))
    assert len(signal.txs) == 3
    late = opened()
    late.at(DAY, *(late.donate(f"charity-{i}", 10_000, f"r{i}") for i in (1, 2)))
    late.at(DAY * 2, late.w.transfer("charity-1", "charity-2", 1_000))
    late.at(DAY * 33, late.w.transfer("charity-2", "charity-1", 1_000))  # 31 days later
    assert late.signals("circular_flow") == []


def test_one_way_transfers_are_not_a_loop() -> None:
    s = opened()
    s.at(DAY, *(s.donate(f"charity-{i}", 10_000, f"r{i}") for i in (1, 2, 3)))
    s.at(DAY * 2, s.w.transfer("charity-1", "charity-2", 1_000))
    s.at(DAY * 3, s.w.transfer("charity-2", "charity-3", 1_000))
    s.at(DAY * 4, s.w.transfer("charity-1", "charity-3", 1_000))
    assert s.signals("circular_flow") == []


# -- quick_refund ------------------------------------------------------------------------


def test_refund_within_days_of_the_donation() -> None:
    s = opened()
    record = s.donate("charity-1", 20_000, "match-me")
    s.at(DAY, record)
    refund = s.refund("charity-1", "platform-1", "match-me", 20_000)
    s.at(DAY * 3, refund)
    signal = only(s.signals("quick_refund"))
    assert signal.party == s.pub("charity-1")
    assert [t.tx_id for t in signal.txs] == [s.tx_id(record), s.tx_id(refund)]
    assert signal.details["share"] == 1.0 and signal.details["days"] == 2.0
    assert "refunded" in signal.en and "即被退款" in signal.zh


def test_refund_after_the_window_or_small_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-1", 20_000, "d1"), s.donate("charity-1", 20_000, "d2"))
    s.at(DAY * 9, s.refund("charity-1", "platform-1", "d1", 20_000))  # 8 days later
    s.at(DAY * 9.5, s.refund("charity-1", "platform-1", "d2", 9_999))  # under half
    s.at(DAY * 10, s.donate("charity-1", 20_000, "d3"))
    s.at(DAY * 11, s.refund("charity-1", "platform-1", "d3", 9_999))  # under half
    assert s.signals("quick_refund") == []


# -- donation_splitting ------------------------------------------------------------------


def test_many_small_donations_from_one_donor_in_a_day() -> None:
    s = opened()
    donor = b"\x07" * 32
    raws = [s.donate("charity-2", 9_000, f"s{i}", donor=donor) for i in range(5)]
    for i, raw in enumerate(raws):
        s.at(DAY + i * HOUR, raw)
    signal = only(s.signals("donation_splitting"))
    assert signal.party == s.pub("charity-2")
    assert [t.tx_id for t in signal.txs] == [s.tx_id(r) for r in raws]
    assert signal.details["count"] == 5 and signal.details["total"] == 45_000
    assert signal.details["donor"] == donor.hex()
    assert "5 small donations" in signal.en and "5 笔小额捐赠" in signal.zh


def test_spread_out_or_large_donations_are_not_splitting() -> None:
    s = opened()
    donor = b"\x07" * 32
    for i in range(5):  # 5 small ones, but over more than 24 hours
        s.at(DAY + i * 7 * HOUR, s.donate("charity-2", 9_000, f"s{i}", donor=donor))
    for i in range(5):  # 5 in an hour, one of them not small
        amount = 10_001 if i == 2 else 100
        s.at(DAY * 5 + i * 60_000, s.donate("charity-2", amount, f"b{i}", donor=donor))
    assert s.signals("donation_splitting") == []


# -- payee_concentration -----------------------------------------------------------------


def test_one_payee_takes_most_of_the_spending() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-3", 100_000, "p1"))
    spends = [s.disburse("charity-3", 9_000, payee="同一家公司") for _ in range(4)]
    s.at(DAY * 2, *spends, s.disburse("charity-3", 8_000, payee="Other"))
    signal = only(s.signals("payee_concentration"))
    assert signal.severity == "info"
    assert signal.subject == "payee 同一家公司"
    assert signal.details["share"] == 0.8182 and signal.details["disbursements"] == 5
    assert [t.tx_id for t in signal.txs] == [s.tx_id(r) for r in spends]
    assert "81.8%" in signal.en and "同一家公司" in signal.zh


def test_spread_payees_or_few_payments_are_not_concentrated() -> None:
    s = opened()
    s.at(DAY, s.donate("charity-3", 100_000, "p1"))
    s.at(DAY * 2, *(s.disburse("charity-3", 8_000, payee="A") for _ in range(4)))
    s.at(DAY * 3, s.disburse("charity-3", 8_000, payee="B"))  # A has exactly 80%
    s.at(DAY * 20, *(s.disburse("charity-3", 8_000, payee="C") for _ in range(4)))  # 4 < 5
    assert s.signals("payee_concentration") == []


# -- audit_opinion -----------------------------------------------------------------------


def test_opinions_and_suspensions() -> None:
    s = opened()
    adverse = s.attest("charity-1", "adverse", "账目不符")
    s.at(
        DAY,
        s.attest("charity-2", "clean"),
        s.attest("charity-2", "qualified"),
        adverse,
        s.attest("charity-3", "disclaimer"),
    )
    suspend = s.suspend("charity-3", "licence revoked")
    s.at(DAY * 2, suspend)
    found = s.signals("audit_opinion")
    got = [(x.party, x.details.get("opinion"), x.severity) for x in found]
    assert got == [
        (s.pub("charity-2"), "qualified", "warning"),
        (s.pub("charity-1"), "adverse", "high"),
        (s.pub("charity-3"), "disclaimer", "high"),
        (s.pub("charity-3"), None, "high"),
    ]
    assert found[1].txs[0].tx_id == s.tx_id(adverse)
    assert "账目不符" in found[1].zh and "否定意见" in found[1].zh
    assert found[3].details["reason"] == "licence revoked"
    assert found[3].txs[0].tx_id == s.tx_id(suspend)
    assert "suspended" in found[3].en and "暂停" in found[3].zh


def test_clean_opinion_is_not_a_signal() -> None:
    s = opened()
    s.at(DAY, s.attest("charity-2", "clean"))
    assert s.signals("audit_opinion") == []


def test_a_disabled_rule_raises_nothing() -> None:
    s = opened()
    s.at(DAY, s.attest("charity-2", "adverse"))
    assert s.signals("audit_opinion", rules={"audit_opinion": {"enabled": False}}) == []


def test_signals_name_the_party_after_a_key_rotation() -> None:
    """After party.rotate_key the charity signs with a new key; findings still name the
    party by its id, so they add up with what it did before."""
    s = opened()
    fresh = KeyPair.from_seed(b"\x31" * 32)
    s.keys.parties["charity-1-new"] = fresh
    party = s.pub("charity-1")
    proof = fresh.sign(rotation_sign_bytes(s.genesis.chain_id, party, fresh.public_key))
    s.at(DAY, s.donate("charity-1", 100_000, "k1"))
    s.at(
        DAY * 2,
        s.w.tx("charity-1", "party.rotate_key", {"new_key": fresh.public_key, "new_sig": proof}),
    )
    s.at(DAY * 3, s.disburse("charity-1-new", 5_000, category="admin"))
    signal = only(s.signals("overhead_above_limit"))
    assert signal.party == party
    assert "Clean Water Foundation" in signal.en
