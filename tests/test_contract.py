"""The contract through the full pipeline: one test per error code (each also checks that the
state is byte-for-byte unchanged), check order where two rules break at once, and effects."""

from __future__ import annotations

import msgpack
import pytest

from almoner.node.chain import schema
from almoner.node.chain.codec import H, encode
from almoner.node.chain.contract import engine as contract
from almoner.node.chain.contract.engine import TxContext, check_and_apply
from almoner.node.chain.state import (
    fund_balances,
    get_attestation,
    get_campaign,
    get_donation,
    get_party,
    list_evidence,
    validators_at,
)
from almoner.node.chain.store import Overlay
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.errors import ProtocolError
from tests import contract_fixtures as fx
from tests.contract_fixtures import (
    CHARITY_1,
    CHARITY_2,
    CHARITY_3,
    NEWCOMER,
    OUTSIDER,
    PLATFORM_1,
    PLATFORM_2,
    REGULATOR,
    VALIDATORS,
    Ledger,
)

C1, C2, C3 = CHARITY_1.public_key, CHARITY_2.public_key, CHARITY_3.public_key
P1, P2 = PLATFORM_1.public_key, PLATFORM_2.public_key


@pytest.fixture
def led() -> Ledger:
    """C1 has campaigns flood (CNY) and edu (USD); C2 has school (CNY). P1 gave d1 1000 CNY
    to C1 general, d2 500 CNY to C1 flood, d3 300 USD to C1 general."""
    ledger = Ledger()
    ledger.submit(CHARITY_1, "campaign.open", fx.campaign("flood"))
    ledger.submit(CHARITY_1, "campaign.open", fx.campaign("edu", currency="USD"))
    ledger.submit(CHARITY_2, "campaign.open", fx.campaign("school"))
    ledger.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 1000))
    ledger.submit(PLATFORM_1, "donation.record", fx.donation("d2", C1, 500, campaign="flood"))
    ledger.submit(PLATFORM_1, "donation.record", fx.donation("d3", C1, 300, currency="USD"))
    ledger.commit()
    return ledger


def balances(led: Ledger, charity: bytes) -> dict[tuple[str, str], int]:
    return {(f["fund"], f["currency"]): f["balance"] for f in fund_balances(led.state, charity)}


# -- decoding and envelope codes --------------------------------------------------------


def test_too_large(led: Ledger) -> None:
    led.reject_raw(b"\x90" + b"\x00" * 70_000, "too_large")


def test_malformed(led: Ledger) -> None:
    led.reject_raw(b"\xc1", "malformed")


def test_non_canonical(led: Ledger) -> None:
    tx = make_tx(fx.CHAIN, "donation.confirm", CHARITY_1, fx.confirm(P1, "d1"), 1)
    led.reject_raw(
        msgpack.packb(dict(reversed(list(tx.items()))), use_bin_type=True), "non_canonical"
    )


def test_duplicate_tx(led: Ledger) -> None:
    raw = led.raw(CHARITY_1, "donation.confirm", fx.confirm(P1, "d1"))
    led.apply(raw)
    led.commit()
    led.reject_raw(raw, "duplicate_tx")


def test_duplicate_tx_within_the_same_block(led: Ledger) -> None:
    raw = led.raw(CHARITY_1, "funds.disburse", fx.disburse("x1", 1))
    led.apply(raw)
    led.reject_raw(raw, "duplicate_tx")


@pytest.mark.parametrize(
    ("tx_type", "body", "field"),
    [
        ("funds.disburse", fx.disburse("x1", 0), "body.amount"),
        ("donation.record", fx.donation("d9", C1, 5, campaign="general"), "body.campaign"),
        ("campaign.open", fx.campaign("c", currency="yen"), "body.currency"),
        ("funds.disburse", fx.disburse("x1", 5, evidence=[b"\x01" * 32] * 17), "body.evidence"),
    ],
)
def test_invalid_field(led: Ledger, tx_type: str, body: dict[str, object], field: str) -> None:
    err = led.reject(CHARITY_1, tx_type, body, "invalid_field")
    assert err.details["field"] == field


def test_invalid_field_envelope(led: Ledger) -> None:
    tx = make_tx(fx.CHAIN, "funds.disburse", CHARITY_1, fx.disburse("x1", 5), 1)
    tx["extra"] = 1
    assert led.reject_raw(encode(tx), "invalid_field").details["field"] == "extra"
    assert led.reject_raw(encode([tx]), "invalid_field").details["field"] == "tx"


def test_wrong_chain(led: Ledger) -> None:
    led.reject_raw(
        led.raw(CHARITY_1, "funds.disburse", fx.disburse("x1", 5), chain="x"), "wrong_chain"
    )


def test_unknown_type(led: Ledger) -> None:
    led.reject(CHARITY_1, "funds.burn", {"amount": 1}, "unknown_type")


def test_bad_signature(led: Ledger) -> None:
    tx = make_tx(fx.CHAIN, "funds.disburse", CHARITY_1, fx.disburse("x1", 5), 1)
    tx["signer"] = C2
    led.reject_raw(encode_tx(tx), "bad_signature")


def test_verify_signature_false_trusts_the_caller(led: Ledger) -> None:
    tx = make_tx(fx.CHAIN, "funds.disburse", CHARITY_1, fx.disburse("x1", 5), 1)
    tx["sig"] = b"\x00" * 64
    check_and_apply(led.state, encode_tx(tx), led.height, 0, fx.CHAIN, verify_signature=False)
    assert balances(led, C1)[("general", "CNY")] == 995


# -- signer codes -----------------------------------------------------------------------


def test_unknown_signer(led: Ledger) -> None:
    led.reject(OUTSIDER, "funds.disburse", fx.disburse("x1", 5), "unknown_signer")


def test_signer_suspended(led: Ledger) -> None:
    led.submit(REGULATOR, "party.suspend", fx.suspend(C1))
    led.reject(CHARITY_1, "funds.disburse", fx.disburse("x1", 5), "signer_suspended")


def test_role_not_allowed(led: Ledger) -> None:
    led.reject(PLATFORM_1, "funds.disburse", fx.disburse("x1", 5), "role_not_allowed")
    led.reject(CHARITY_1, "party.register", fx.register(NEWCOMER.public_key), "role_not_allowed")


def test_role_not_allowed_confirm_or_refund_by_another_charity(led: Ledger) -> None:
    led.reject(CHARITY_2, "donation.confirm", fx.confirm(P1, "d1"), "role_not_allowed")
    led.reject(CHARITY_2, "donation.refund", fx.refund("r1", P1, "d1", 1), "role_not_allowed")


# -- business codes ---------------------------------------------------------------------


def test_duplicate_id_every_type(led: Ledger) -> None:
    led.reject(REGULATOR, "party.register", fx.register(C2), "duplicate_id")
    led.reject(CHARITY_1, "campaign.open", fx.campaign("flood"), "duplicate_id")
    led.reject(PLATFORM_1, "donation.record", fx.donation("d1", C2, 5), "duplicate_id")
    led.submit(CHARITY_1, "donation.confirm", fx.confirm(P1, "d1"))
    led.reject(CHARITY_1, "donation.confirm", fx.confirm(P1, "d1"), "duplicate_id")
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 5))
    led.reject(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 5), "duplicate_id")
    led.submit(CHARITY_1, "funds.disburse", fx.disburse("x1", 5))
    led.reject(CHARITY_1, "funds.disburse", fx.disburse("x1", 5), "duplicate_id")
    led.submit(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 5))
    led.reject(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 5), "duplicate_id")
    led.submit(REGULATOR, "audit.attest", fx.attest("a1", C1))
    led.reject(REGULATOR, "audit.attest", fx.attest("a1", C2), "duplicate_id")
    led.submit(REGULATOR, "party.suspend", fx.suspend(C3))
    led.reject(REGULATOR, "party.suspend", fx.suspend(C3, "again"), "duplicate_id")


def test_business_ids_are_per_signer_and_type(led: Ledger) -> None:
    led.submit(PLATFORM_2, "donation.record", fx.donation("d1", C1, 7))
    led.submit(CHARITY_2, "campaign.open", fx.campaign("flood"))
    led.submit(CHARITY_1, "funds.disburse", fx.disburse("flood", 1))
    assert get_donation(led.state, P2, "d1") is not None


def test_unknown_party(led: Ledger) -> None:
    led.reject(
        PLATFORM_1, "donation.record", fx.donation("d9", OUTSIDER.public_key, 5), "unknown_party"
    )
    led.reject(PLATFORM_1, "donation.record", fx.donation("d9", P2, 5), "unknown_party")
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t1", OUTSIDER.public_key, 5), "unknown_party"
    )
    led.reject(REGULATOR, "party.suspend", fx.suspend(OUTSIDER.public_key), "unknown_party")
    led.reject(REGULATOR, "audit.attest", fx.attest("a1", P1), "unknown_party")
    led.reject(
        CHARITY_1, "donation.confirm", fx.confirm(OUTSIDER.public_key, "d1"), "unknown_party"
    )
    led.reject(
        CHARITY_1, "donation.refund", fx.refund("r", OUTSIDER.public_key, "d1", 1), "unknown_party"
    )


def test_party_suspended(led: Ledger) -> None:
    led.submit(REGULATOR, "party.suspend", fx.suspend(C2))
    led.reject(PLATFORM_1, "donation.record", fx.donation("d9", C2, 5), "party_suspended")
    led.reject(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 5), "party_suspended")


def test_unknown_campaign(led: Ledger) -> None:
    err = led.reject(
        PLATFORM_1,
        "donation.record",
        fx.donation("d9", C2, 5, campaign="flood"),
        "unknown_campaign",
    )
    assert err.details["field"] == "body.campaign"
    err = led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t", C2, 5, from_fund="nope"), "unknown_campaign"
    )
    assert err.details["field"] == "body.from_fund"
    err = led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t", C2, 5, to_fund="flood"), "unknown_campaign"
    )
    assert err.details["field"] == "body.to_fund"
    led.reject(CHARITY_1, "funds.disburse", fx.disburse("x", 5, fund="nope"), "unknown_campaign")


def test_unknown_donation(led: Ledger) -> None:
    led.reject(CHARITY_1, "donation.confirm", fx.confirm(P1, "nope"), "unknown_donation")
    led.reject(CHARITY_1, "donation.refund", fx.refund("r1", P2, "d1", 1), "unknown_donation")


def test_currency_mismatch(led: Ledger) -> None:
    led.reject(
        PLATFORM_1,
        "donation.record",
        fx.donation("d9", C1, 5, currency="USD", campaign="flood"),
        "currency_mismatch",
    )
    led.reject(
        CHARITY_1,
        "funds.transfer",
        fx.transfer("t", C2, 5, to_fund="school", currency="USD"),
        "currency_mismatch",
    )
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t", C1, 5, to_fund="edu"), "currency_mismatch"
    )
    led.reject(
        CHARITY_1,
        "funds.disburse",
        fx.disburse("x", 5, fund="flood", currency="USD"),
        "currency_mismatch",
    )


def test_restricted_funds(led: Ledger) -> None:
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t", C1, 5, from_fund="flood"), "restricted_funds"
    )
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t", C2, 5, from_fund="flood"), "restricted_funds"
    )


def test_insufficient_funds(led: Ledger) -> None:
    led.reject(CHARITY_1, "funds.disburse", fx.disburse("x", 1001), "insufficient_funds")
    led.reject(
        CHARITY_1, "funds.disburse", fx.disburse("x", 301, currency="USD"), "insufficient_funds"
    )
    led.reject(
        CHARITY_1, "funds.disburse", fx.disburse("x", 1, currency="EUR"), "insufficient_funds"
    )
    led.reject(
        CHARITY_1,
        "funds.transfer",
        fx.transfer("t", C2, 501, from_fund="flood", to_fund="school"),
        "insufficient_funds",
    )
    led.reject(CHARITY_2, "funds.disburse", fx.disburse("x", 1), "insufficient_funds")


def test_refund_exceeds_unspent(led: Ledger) -> None:
    led.reject(
        CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 1001), "refund_exceeds_unspent"
    )
    # Money transferred to another charity is out of the recipient's reach.
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 600))
    led.reject(
        CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 401), "refund_exceeds_unspent"
    )
    led.submit(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 400))
    led.reject(CHARITY_1, "donation.refund", fx.refund("r2", P1, "d1", 1), "refund_exceeds_unspent")


# -- evidence.submit --------------------------------------------------------------------

V0, V1 = VALIDATORS[0], VALIDATORS[1]
HASH_A, HASH_B = H(b"a"), H(b"b")


def test_evidence_is_recorded_once_in_either_order(led: Ledger) -> None:
    first, second = fx.vote(V0, 1, HASH_A), fx.vote(V0, 1, HASH_B)
    led.submit(V1, "evidence.submit", fx.evidence(first, second))
    led.reject(V1, "evidence.submit", fx.evidence(second, first), "duplicate_id")
    led.reject(VALIDATORS[2], "evidence.submit", fx.evidence(first, second), "duplicate_id")
    [record] = list_evidence(led.state)
    assert (record["validator"], record["height"], record["round"], record["kind"]) == (
        V0.public_key,
        1,
        0,
        "prevote",
    )
    assert record["reporter"] == V1.public_key
    # Another kind at the same height and round is another equivocation.
    led.submit(
        V1,
        "evidence.submit",
        fx.evidence(
            fx.vote(V0, 1, HASH_A, kind="precommit"), fx.vote(V0, 1, None, kind="precommit")
        ),
    )


def test_evidence_bad_vote_signature(led: Ledger) -> None:
    forged = {**fx.vote(V0, 1, HASH_B), "sig": fx.vote(V0, 1, HASH_A)["sig"]}
    err = led.reject(
        V1, "evidence.submit", fx.evidence(fx.vote(V0, 1, HASH_A), forged), "bad_signature"
    )
    assert err.details["field"] == "body.votes[1].sig"


@pytest.mark.parametrize(
    ("second", "field"),
    [
        (fx.vote(V0, 1, HASH_A), "body.votes[1].block_hash"),
        (fx.vote(V1, 1, HASH_B), "body.votes[1].validator"),
        (fx.vote(V0, 1, HASH_B, round_=1), "body.votes[1].round"),
        (fx.vote(V0, 1, HASH_B, kind="precommit"), "body.votes[1].kind"),
        (fx.vote(V0, 1, HASH_B, chain="other"), "body.votes[1].chain"),
    ],
)
def test_evidence_votes_must_conflict(led: Ledger, second: dict[str, object], field: str) -> None:
    err = led.reject(
        V1, "evidence.submit", fx.evidence(fx.vote(V0, 1, HASH_A), second), "invalid_field"
    )
    assert err.details["field"] == field


def test_evidence_other_chain_and_future_height(led: Ledger) -> None:
    other = fx.evidence(fx.vote(V0, 1, HASH_A, chain="x"), fx.vote(V0, 1, HASH_B, chain="x"))
    assert (
        led.reject(V1, "evidence.submit", other, "invalid_field").details["field"]
        == "body.votes[0].chain"
    )
    future = fx.evidence(fx.vote(V0, led.height + 1, HASH_A), fx.vote(V0, led.height + 1, HASH_B))
    assert (
        led.reject(V1, "evidence.submit", future, "invalid_field").details["field"]
        == "body.votes[0].height"
    )
    current = fx.evidence(fx.vote(V0, led.height, HASH_A), fx.vote(V0, led.height, HASH_B))
    led.submit(V1, "evidence.submit", current)


def test_evidence_culprit_must_be_a_member(led: Ledger) -> None:
    stranger = fx.evidence(fx.vote(OUTSIDER, 1, HASH_A), fx.vote(OUTSIDER, 1, HASH_B))
    err = led.reject(V1, "evidence.submit", stranger, "invalid_field")
    assert err.details["field"] == "body.votes[0].validator"


def test_evidence_signer_must_be_a_validator(led: Ledger) -> None:
    ev = fx.evidence(fx.vote(V0, 1, HASH_A), fx.vote(V0, 1, HASH_B))
    led.reject(OUTSIDER, "evidence.submit", ev, "unknown_signer")
    led.reject(REGULATOR, "evidence.submit", ev, "role_not_allowed")
    led.submit(REGULATOR, "party.suspend", fx.suspend(C3))
    led.reject(CHARITY_3, "evidence.submit", ev, "signer_suspended")
    led.reject(V0, "funds.disburse", fx.disburse("x", 1), "unknown_signer")


# -- check order: two rules broken at once, the earlier one answers ----------------------


def test_order_duplicate_tx_before_everything(led: Ledger) -> None:
    raw = led.raw(REGULATOR, "party.suspend", fx.suspend(C1))
    led.apply(raw)
    led.reject_raw(raw, "duplicate_tx")  # not signer_suspended, not duplicate_id


def test_order_envelope_chain_type_body_signature(led: Ledger) -> None:
    tx = make_tx("other", "funds.burn", OUTSIDER, {"x": 1}, 1)
    led.reject_raw(encode_tx({**tx, "nonce": -1}), "invalid_field")
    led.reject_raw(encode_tx(tx), "wrong_chain")
    tx = make_tx(fx.CHAIN, "funds.burn", OUTSIDER, {"x": 1}, 1)
    led.reject_raw(encode_tx({**tx, "sig": b"\x00" * 64}), "unknown_type")
    tx = make_tx(fx.CHAIN, "funds.disburse", OUTSIDER, fx.disburse("x", 0), 1)
    led.reject_raw(encode_tx({**tx, "sig": b"\x00" * 64}), "invalid_field")
    tx = make_tx(fx.CHAIN, "funds.disburse", OUTSIDER, fx.disburse("x", 1), 1)
    led.reject_raw(encode_tx({**tx, "sig": b"\x00" * 64}), "bad_signature")


def test_order_signer_checks(led: Ledger) -> None:
    led.submit(REGULATOR, "party.suspend", fx.suspend(P2))
    # suspended and of the wrong role: signer_suspended
    led.reject(PLATFORM_2, "funds.disburse", fx.disburse("x", 1), "signer_suspended")
    # wrong role and a used business id: role_not_allowed
    led.reject(PLATFORM_1, "campaign.open", fx.campaign("flood"), "role_not_allowed")


def test_order_business_rules(led: Ledger) -> None:
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 1))
    led.submit(REGULATOR, "party.suspend", fx.suspend(C3))
    stranger = OUTSIDER.public_key
    # duplicate_id before unknown_party
    led.reject(CHARITY_1, "funds.transfer", fx.transfer("t1", stranger, 1), "duplicate_id")
    # unknown_party / party_suspended before unknown_campaign
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t2", stranger, 1, to_fund="nope"), "unknown_party"
    )
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t2", C3, 1, to_fund="nope"), "party_suspended"
    )
    # unknown_campaign (to) before currency_mismatch (from)
    led.reject(
        CHARITY_1,
        "funds.transfer",
        fx.transfer("t2", C2, 1, from_fund="edu", to_fund="nope"),
        "unknown_campaign",
    )
    # currency_mismatch before restricted_funds
    led.reject(
        CHARITY_1, "funds.transfer", fx.transfer("t2", C2, 1, from_fund="edu"), "currency_mismatch"
    )
    # restricted_funds before insufficient_funds
    led.reject(
        CHARITY_1,
        "funds.transfer",
        fx.transfer("t2", C2, 10**9, from_fund="flood"),
        "restricted_funds",
    )
    # unknown_party before unknown_donation; role before duplicate; duplicate before unknown
    led.reject(CHARITY_1, "donation.refund", fx.refund("r", stranger, "zz", 10**9), "unknown_party")
    led.submit(CHARITY_1, "donation.confirm", fx.confirm(P1, "d1"))
    led.reject(CHARITY_2, "donation.confirm", fx.confirm(P1, "d1"), "role_not_allowed")
    led.submit(CHARITY_1, "donation.refund", fx.refund("r1", P1, "d1", 1))
    led.reject(CHARITY_1, "donation.refund", fx.refund("r1", P1, "zz", 10**9), "duplicate_id")
    # party.suspend: an unknown party is unknown_party, an already suspended one duplicate_id
    led.reject(REGULATOR, "party.suspend", fx.suspend(stranger), "unknown_party")


def test_order_evidence(led: Ledger) -> None:
    good = fx.vote(V0, 1, HASH_A)
    forged_same = {**good, "sig": b"\x01" * 64}
    # a bad vote signature is answered before "does not conflict"
    led.reject(V1, "evidence.submit", fx.evidence(good, forged_same), "bad_signature")
    # membership/height before duplicate_id
    led.submit(V1, "evidence.submit", fx.evidence(good, fx.vote(V0, 1, HASH_B)))
    led.reject(V1, "evidence.submit", fx.evidence(good, fx.vote(V0, 1, HASH_A)), "invalid_field")


# -- effects ----------------------------------------------------------------------------


def test_seed_genesis(led: Ledger) -> None:
    assert validators_at(led.state, 1) == [v.public_key for v in VALIDATORS]
    assert validators_at(led.state, 10**6) == [v.public_key for v in VALIDATORS]
    assert validators_at(led.state, 0) == []
    party = get_party(led.state, C1)
    assert party is not None
    assert (party["role"], party["name"], party["suspended"], party["registered_height"]) == (
        "charity",
        "慈善会 1",
        False,
        0,
    )


def test_register_and_suspend(led: Ledger) -> None:
    tx_id = led.submit(
        REGULATOR, "party.register", fx.register(NEWCOMER.public_key, role="platform")
    )
    party = get_party(led.state, NEWCOMER.public_key)
    assert party is not None
    assert (party["role"], party["registered_tx"], party["registered_height"]) == (
        "platform",
        tx_id,
        led.height,
    )
    led.submit(NEWCOMER, "donation.record", fx.donation("n1", C2, 5))
    led.submit(REGULATOR, "party.suspend", fx.suspend(NEWCOMER.public_key, "closed"))
    party = get_party(led.state, NEWCOMER.public_key)
    assert party is not None
    assert (party["suspended"], party["suspend_reason"]) == (True, "closed")
    led.reject(NEWCOMER, "donation.record", fx.donation("n2", C2, 5), "signer_suspended")
    # A suspended charity's platform still gets refunds through: suspension only stops signing.
    led.submit(CHARITY_2, "donation.refund", fx.refund("r", NEWCOMER.public_key, "n1", 5))


def test_funds_and_campaigns(led: Ledger) -> None:
    assert balances(led, C1) == {
        ("general", "CNY"): 1000,
        ("flood", "CNY"): 500,
        ("edu", "USD"): 0,
        ("general", "USD"): 300,
    }
    restricted = {f["fund"]: f["restricted"] for f in fund_balances(led.state, C1)}
    assert restricted == {"general": False, "flood": True, "edu": True}
    campaign = get_campaign(led.state, C1, "edu")
    assert campaign is not None
    assert (campaign["currency"], campaign["goal"]) == ("USD", 100_000)
    led.submit(
        CHARITY_1, "funds.transfer", fx.transfer("t1", C2, 200, from_fund="flood", to_fund="school")
    )
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t2", C1, 100, to_fund="flood"))
    led.submit(CHARITY_1, "funds.transfer", fx.transfer("t3", C1, 50))  # same fund: allowed
    led.submit(CHARITY_1, "funds.disburse", fx.disburse("x1", 400, fund="flood"))
    assert balances(led, C1)[("flood", "CNY")] == 0
    assert balances(led, C1)[("general", "CNY")] == 900
    assert balances(led, C2)[("school", "CNY")] == 200


def test_confirm_and_attest(led: Ledger) -> None:
    tx_id = led.submit(CHARITY_1, "donation.confirm", fx.confirm(P1, "d2"))
    donation = get_donation(led.state, P1, "d2")
    assert donation is not None
    assert (donation["confirmed"], donation["confirm_tx"], donation["fund"]) == (
        True,
        tx_id,
        "flood",
    )
    led.submit(REGULATOR, "party.suspend", fx.suspend(C2))
    led.submit(REGULATOR, "audit.attest", fx.attest("a1", C2))  # a suspended charity can be audited
    record = get_attestation(led.state, REGULATOR.public_key, "a1")
    assert record is not None
    assert (record["opinion"], record["charity"]) == ("clean", C2)


def test_tx_index_is_only_read(led: Ledger) -> None:
    raw = led.raw(CHARITY_1, "funds.disburse", fx.disburse("x1", 1))
    check_and_apply(led.state, raw, led.height, 0, fx.CHAIN)
    assert not any(k.startswith(schema.TX_INDEX) for k in led.state.changes())


def test_validator_set_changes_are_read_by_height(led: Ledger) -> None:
    genesis_set = [v.public_key for v in VALIDATORS]
    led.state.put(schema.VALIDATORS + schema.u64(5), encode([V1.public_key, NEWCOMER.public_key]))
    assert validators_at(led.state, 4) == genesis_set
    assert validators_at(led.state, 5) == [V1.public_key, NEWCOMER.public_key]
    led.height = 6
    # V0 equivocated at height 2, while a member: still evidence after it left the set.
    led.submit(
        NEWCOMER, "evidence.submit", fx.evidence(fx.vote(V0, 2, HASH_A), fx.vote(V0, 2, HASH_B))
    )
    # NEWCOMER was not a member at height 3.
    late = fx.evidence(fx.vote(NEWCOMER, 3, HASH_A), fx.vote(NEWCOMER, 3, HASH_B))
    led.reject(V1, "evidence.submit", late, "invalid_field")
    led.submit(
        V1, "evidence.submit", fx.evidence(fx.vote(NEWCOMER, 5, HASH_A), fx.vote(NEWCOMER, 5, None))
    )
    # V0 is no validator at height 6 and no party: unknown_signer.
    led.reject(V0, "evidence.submit", late, "unknown_signer")


def test_a_rule_failing_after_a_write_leaves_nothing_behind(
    led: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(state: Overlay, signer: bytes, body: dict[str, object], ctx: TxContext) -> None:
        state.put(b"s/junk", b"x")
        raise ProtocolError("insufficient_funds", "fails after writing")

    monkeypatch.setitem(contract.RULES, "funds.disburse", broken)
    led.reject(CHARITY_1, "funds.disburse", fx.disburse("x1", 1), "insufficient_funds")
