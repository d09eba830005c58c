"""Stateless tx checks: decoding, envelope, chain, type, body schema, signature, and their
order (docs/spec/01-encoding.md, §2)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almoner.node.chain.codec import H, encode
from almoner.node.chain.signing import tx_sign_bytes
from almoner.node.chain.tx import (
    MAX_TX_BYTES,
    TX_TYPES,
    check_tx_shape,
    check_tx_signature,
    decode_tx,
    encode_tx,
    make_tx,
)
from almoner.node.errors import ProtocolError
from tests import contract_fixtures as fx

PLATFORM = fx.PLATFORM_1.public_key
CHARITY = fx.CHARITY_1.public_key

VALID_BODIES: dict[str, dict[str, Any]] = {
    "party.register": fx.register(fx.NEWCOMER.public_key),
    "party.suspend": fx.suspend(CHARITY),
    "campaign.open": fx.campaign("flood"),
    "donation.record": fx.donation("d1", CHARITY, 500),
    "donation.confirm": fx.confirm(PLATFORM, "d1"),
    "funds.transfer": fx.transfer("t1", fx.CHARITY_2.public_key, 10),
    "funds.disburse": fx.disburse("x1", 10),
    "donation.refund": fx.refund("r1", PLATFORM, "d1", 10),
    "audit.attest": fx.attest("a1", CHARITY),
    "evidence.submit": fx.evidence(
        fx.vote(fx.VALIDATORS[0], 1, b"\x01" * 32), fx.vote(fx.VALIDATORS[0], 1, None)
    ),
    "validator.propose": fx.set_change("p1", fx.NEWCOMER.public_key),
    "upgrade.propose": fx.upgrade("u1", 100),
    "proposal.approve": fx.approve(fx.VALIDATORS[0].public_key, "p1"),
    "party.rotate_key": fx.rotate(fx.NEWCOMER, CHARITY),
    "party.recover": fx.recover("r1", CHARITY, fx.NEWCOMER),
    "recovery.approve": fx.approve_recovery(fx.REGULATOR.public_key, "r1"),
    "party.reinstate": fx.reinstate(CHARITY),
}


def signed(tx_type: str, body: dict[str, Any], chain: str = fx.CHAIN) -> dict[str, Any]:
    return make_tx(chain, tx_type, fx.CHARITY_1, body, 1)


def shape_error(tx: Any, chain: str = fx.CHAIN) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        check_tx_shape(tx, chain)
    return info.value


def body_error(tx_type: str, **changes: Any) -> ProtocolError:
    body = {**VALID_BODIES[tx_type], **changes}
    return shape_error(signed(tx_type, body))


def assert_field(err: ProtocolError, field: str) -> None:
    assert err.code == "invalid_field", err
    assert err.details["field"] == field


# -- decoding --------------------------------------------------------------------------


def test_every_type_has_a_valid_body_that_round_trips() -> None:
    assert set(VALID_BODIES) == set(TX_TYPES)
    for tx_type, body in VALID_BODIES.items():
        tx = signed(tx_type, body)
        raw = encode_tx(tx)
        assert decode_tx(raw) == tx
        check_tx_shape(tx, fx.CHAIN)
        check_tx_signature(tx)


def test_too_large() -> None:
    tx = signed("audit.attest", {**VALID_BODIES["audit.attest"], "note": "x" * 70_000})
    with pytest.raises(ProtocolError) as info:
        decode_tx(encode_tx(tx))
    assert info.value.code == "too_large"


def test_exactly_max_size_is_not_too_large() -> None:
    raw = msgpack.packb("x" * (MAX_TX_BYTES - 3))
    assert len(raw) == MAX_TX_BYTES
    with pytest.raises(ProtocolError) as info:
        decode_tx(raw)
    assert info.value.code == "invalid_field"  # decoded, then rejected as a non-map
    with pytest.raises(ProtocolError) as info:
        decode_tx(msgpack.packb("x" * (MAX_TX_BYTES - 2)))
    assert info.value.code == "too_large"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", encode({"a": 1}) + b"\x00", msgpack.packb(1.5), msgpack.packb({1: 2})],
    ids=["empty", "reserved-byte", "trailing", "float", "int-key"],
)
def test_malformed(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_tx(raw)
    assert info.value.code == "malformed"


def test_non_canonical_key_order_and_wide_int() -> None:
    tx = signed("donation.confirm", VALID_BODIES["donation.confirm"])
    unsorted = msgpack.packb(dict(reversed(list(tx.items()))), use_bin_type=True)
    wide_int = b"\xcd\x00\x01"  # 1 as uint16
    for raw in (unsorted, wide_int):
        with pytest.raises(ProtocolError) as info:
            decode_tx(raw)
        assert info.value.code == "non_canonical"


def test_non_map_tx_is_invalid_field() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_tx(encode([1, 2]))
    assert_field(info.value, "tx")
    assert_field(shape_error([1, 2]), "tx")


# -- envelope --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"chain": None}, "chain"),
        ({"type": 3}, "type"),
        ({"signer": b"\x01" * 31}, "signer"),
        ({"signer": "ab" * 32}, "signer"),
        ({"nonce": -1}, "nonce"),
        ({"nonce": True}, "nonce"),
        ({"body": []}, "body"),
        ({"sig": b"\x00" * 63}, "sig"),
        ({"extra": 1}, "extra"),
    ],
)
def test_envelope_fields(change: dict[str, Any], field: str) -> None:
    tx = {**signed("funds.disburse", VALID_BODIES["funds.disburse"]), **change}
    assert_field(shape_error(tx), field)


def test_missing_envelope_key() -> None:
    tx = signed("funds.disburse", VALID_BODIES["funds.disburse"])
    del tx["nonce"]
    assert_field(shape_error(tx), "nonce")


def test_wrong_chain_and_unknown_type() -> None:
    err = shape_error(signed("funds.disburse", VALID_BODIES["funds.disburse"], chain="other"))
    assert err.code == "wrong_chain"
    err = shape_error(signed("funds.steal", {"x": 1}))
    assert err.code == "unknown_type"


def test_order_envelope_before_chain_before_type_before_body() -> None:
    tx = signed("funds.steal", {"x": 1}, chain="other")
    assert shape_error(tx).code == "wrong_chain"
    assert_field(shape_error({**tx, "nonce": -5}), "nonce")
    bad_body = signed("funds.disburse", {"amount": 0}, chain="other")
    assert shape_error(bad_body).code == "wrong_chain"


# -- bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tx_type", "change", "field"),
    [
        ("funds.disburse", {"amount": 0}, "body.amount"),
        ("funds.disburse", {"amount": 10**15 + 1}, "body.amount"),
        ("funds.disburse", {"amount": True}, "body.amount"),
        ("funds.disburse", {"currency": "cny"}, "body.currency"),
        ("funds.disburse", {"currency": "CNYY"}, "body.currency"),
        ("funds.disburse", {"category": "bonus"}, "body.category"),
        ("funds.disburse", {"evidence": [b"\x01" * 32] * 17}, "body.evidence"),
        ("funds.disburse", {"evidence": [b"\x01" * 31]}, "body.evidence[0]"),
        ("funds.disburse", {"fund": ""}, "body.fund"),
        ("funds.disburse", {"disbursement": "x" * 65}, "body.disbursement"),
        ("funds.disburse", {"disbursement": "捐赠"}, "body.disbursement"),
        ("funds.disburse", {"disbursement": "a\nb"}, "body.disbursement"),
        ("funds.disburse", {"payee": "人" * 201}, "body.payee"),
        ("campaign.open", {"campaign": "general"}, "body.campaign"),
        ("campaign.open", {"goal": -1}, "body.goal"),
        ("donation.record", {"campaign": "general"}, "body.campaign"),
        ("donation.record", {"received_at": "now"}, "body.received_at"),
        ("donation.record", {"donor": b"x"}, "body.donor"),
        ("party.register", {"role": "validator"}, "body.role"),
        ("party.register", {"org_id": "x" * 65}, "body.org_id"),
        ("audit.attest", {"opinion": "fine"}, "body.opinion"),
        ("audit.attest", {"period": "p" * 33}, "body.period"),
        ("funds.transfer", {"extra": 1}, "body.extra"),
        ("evidence.submit", {"votes": []}, "body.votes"),
    ],
)
def test_body_fields(tx_type: str, change: dict[str, Any], field: str) -> None:
    assert_field(body_error(tx_type, **change), field)


def test_limits_count_code_points_not_bytes() -> None:
    tx = signed("funds.disburse", {**VALID_BODIES["funds.disburse"], "payee": "人" * 200})
    check_tx_shape(tx, fx.CHAIN)
    tx = signed("donation.record", {**VALID_BODIES["donation.record"], "donation": "~ 0" * 21})
    check_tx_shape(tx, fx.CHAIN)


def test_missing_body_key_named() -> None:
    body = dict(VALID_BODIES["donation.refund"])
    del body["amount"]
    assert_field(shape_error(signed("donation.refund", body)), "body.amount")


def test_vote_shapes() -> None:
    good = VALID_BODIES["evidence.submit"]["votes"]
    bad_kind = {**good[0], "kind": "proposal"}
    assert_field(body_error("evidence.submit", votes=[bad_kind, good[1]]), "body.votes[0].kind")
    no_sig = {k: v for k, v in good[1].items() if k != "sig"}
    assert_field(body_error("evidence.submit", votes=[good[0], no_sig]), "body.votes[1].sig")
    zero_height = {**good[0], "height": 0}
    assert_field(
        body_error("evidence.submit", votes=[zero_height, good[1]]), "body.votes[0].height"
    )
    assert_field(body_error("evidence.submit", votes=good * 2), "body.votes")


def test_bad_signature_and_order_after_body() -> None:
    tx = signed("funds.disburse", VALID_BODIES["funds.disburse"])
    tampered = {**tx, "nonce": 2}
    with pytest.raises(ProtocolError) as info:
        check_tx_signature(tampered)
    assert info.value.code == "bad_signature"
    # body errors come before the signature: a broken body is invalid_field even unsigned.
    unsigned = {**tx, "body": {**tx["body"], "amount": 0}}
    assert_field(shape_error(unsigned), "body.amount")


def test_signature_covers_every_key_but_sig() -> None:
    tx = signed("donation.confirm", VALID_BODIES["donation.confirm"])
    assert fx.CHARITY_1.public_key == tx["signer"]
    assert tx_sign_bytes(tx) == b"almoner/tx/1\x00" + encode(
        {k: v for k, v in tx.items() if k != "sig"}
    )
    assert H(encode_tx(tx)) == H(encode(tx))


# -- never anything but a ProtocolError -------------------------------------------------

leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary()
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_protocol_errors(raw: bytes) -> None:
    try:
        tx = decode_tx(raw)
    except ProtocolError:
        return
    with contextlib.suppress(ProtocolError):
        check_tx_shape(tx, fx.CHAIN)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TX_TYPES), st.dictionaries(st.text(max_size=12), values, max_size=8))
def test_random_bodies_only_raise_protocol_errors(tx_type: str, junk: dict[str, Any]) -> None:
    body = {**VALID_BODIES[tx_type], **junk}
    tx = signed(tx_type, body)
    try:
        check_tx_shape(tx, fx.CHAIN)
    except ProtocolError as err:
        assert err.code == "invalid_field"
        assert err.details["field"].startswith("body")
