"""Rules for the money txs: donation.record, donation.confirm, funds.transfer,
funds.disburse, donation.refund.

Each rule checks in the spec's business order (`duplicate_id`; `unknown_party`,
`party_suspended`; `unknown_campaign`, `unknown_donation`; `currency_mismatch`;
`restricted_funds`; `insufficient_funds`, `refund_exceeds_unspent`) and only then writes.
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain.contract.base import (
    TxContext,
    claim_id,
    require_party,
    require_receiving,
    require_unused_id,
)
from almoner.node.chain.lineage import (
    Fund,
    append_pieces,
    consume_donation,
    consume_fifo,
    open_lot,
    record_hops,
    unspent_at,
)
from almoner.node.chain.schema import DONATION
from almoner.node.chain.state import (
    donation_key,
    fund_balance,
    fund_exists,
    get_campaign,
    get_donation,
    write_record,
)
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.chain.tx import GENERAL_FUND
from almoner.node.errors import ProtocolError


def _require_fund(reader: KVReader, charity: bytes, fund: str, field: str) -> None:
    """The fund exists at the charity (`unknown_campaign`); currency is checked separately
    because `currency_mismatch` comes after every `unknown_campaign` in the spec's order."""
    if not fund_exists(reader, charity, fund):
        raise ProtocolError(
            "unknown_campaign",
            f"{field}: the charity has no campaign {fund!r}",
            {"field": field, "campaign": fund},
        )


def _require_currency(
    reader: KVReader, charity: bytes, fund: str, currency: str, field: str
) -> None:
    if fund == GENERAL_FUND:
        return  # the general fund holds any currency
    campaign = get_campaign(reader, charity, fund)
    if campaign is None:
        raise ProtocolError(
            "unknown_campaign",
            f"{field}: the charity has no campaign {fund!r}",
            {"field": field, "campaign": fund},
        )
    if campaign["currency"] != currency:
        raise ProtocolError(
            "currency_mismatch",
            f"{field}: campaign {fund!r} is in {campaign['currency']}, not {currency}",
            {"field": field, "expected": campaign["currency"], "got": currency},
        )


def _require_balance(reader: KVReader, fund: Fund, amount: int) -> None:
    balance = fund_balance(reader, fund.charity, fund.currency, fund.name)
    if balance < amount:
        raise ProtocolError(
            "insufficient_funds",
            f"fund {fund.name!r} holds {balance} {fund.currency}, less than {amount}",
            {"fund": fund.name, "currency": fund.currency, "balance": balance, "amount": amount},
        )


def _recipient_donation(
    reader: KVReader, signer: bytes, body: dict[str, Any]
) -> dict[str, Any] | None:
    """Confirm and refund belong to the donation's recipient: another charity is
    `role_not_allowed`. Only decidable when the donation exists; if it does not, the later
    `unknown_party`/`unknown_donation` checks answer."""
    donation = get_donation(reader, body["platform"], body["donation"])
    if donation is not None and donation["charity"] != signer:
        raise ProtocolError(
            "role_not_allowed",
            "only the recipient charity may act on this donation",
            {"charity": donation["charity"].hex()},
        )
    return donation


def _require_donation(donation: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    if donation is None:
        raise ProtocolError(
            "unknown_donation",
            f"no donation {body['donation']!r} from this platform",
            {"platform": body["platform"].hex(), "donation": body["donation"]},
        )
    return donation


def donation_record(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    require_unused_id(state, signer, "donation.record", body["donation"])
    charity = require_party(state, body["charity"], "body.charity", role="charity")
    require_receiving(charity, "body.charity")
    fund_name = GENERAL_FUND if body["campaign"] is None else body["campaign"]
    _require_fund(state, body["charity"], fund_name, "body.campaign")
    _require_currency(state, body["charity"], fund_name, body["currency"], "body.currency")
    record = {
        "platform": signer,
        **body,
        "fund": fund_name,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "confirmed": False,
        "confirm_tx": None,
    }
    write_record(state, DONATION + donation_key(signer, body["donation"]), record)
    fund = Fund(body["charity"], body["currency"], fund_name)
    open_lot(state, fund, signer, body["donation"], body["amount"])
    claim_id(state, signer, "donation.record", body["donation"], ctx)


def donation_confirm(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    donation = _recipient_donation(state, signer, body)
    if donation is not None and donation["confirmed"]:
        raise ProtocolError(
            "duplicate_id",
            "the donation was already confirmed",
            {
                "type": "donation.confirm",
                "id": body["donation"],
                "tx_id": donation["confirm_tx"].hex(),
            },
        )
    require_party(state, body["platform"], "body.platform", role="platform")
    donation = _require_donation(donation, body)
    donation.update(confirmed=True, confirm_tx=ctx.tx_id)
    write_record(state, DONATION + donation_key(body["platform"], body["donation"]), donation)


def funds_transfer(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    require_unused_id(state, signer, "funds.transfer", body["transfer"])
    to_party = require_party(state, body["to"], "body.to", role="charity")
    require_receiving(to_party, "body.to")
    currency = body["currency"]
    _require_fund(state, signer, body["from_fund"], "body.from_fund")
    _require_fund(state, body["to"], body["to_fund"], "body.to_fund")
    _require_currency(state, signer, body["from_fund"], currency, "body.from_fund")
    _require_currency(state, body["to"], body["to_fund"], currency, "body.to_fund")
    if body["from_fund"] != GENERAL_FUND and body["to_fund"] == GENERAL_FUND:
        raise ProtocolError(
            "restricted_funds",
            "restricted (campaign) money may only move to a campaign fund",
            {"from_fund": body["from_fund"], "to_fund": body["to_fund"]},
        )
    source = Fund(signer, currency, body["from_fund"])
    _require_balance(state, source, body["amount"])
    destination = Fund(body["to"], currency, body["to_fund"])
    pieces = consume_fifo(state, source, body["amount"])
    append_pieces(state, destination, pieces)
    hop = {
        "kind": "transfer",
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "payee": None,
        "purpose": body["purpose"],
        "category": None,
        "evidence": None,
    }
    record_hops(state, pieces, hop, destination)
    claim_id(state, signer, "funds.transfer", body["transfer"], ctx)


def funds_disburse(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    require_unused_id(state, signer, "funds.disburse", body["disbursement"])
    _require_fund(state, signer, body["fund"], "body.fund")
    _require_currency(state, signer, body["fund"], body["currency"], "body.fund")
    source = Fund(signer, body["currency"], body["fund"])
    _require_balance(state, source, body["amount"])
    pieces = consume_fifo(state, source, body["amount"])
    hop = {
        "kind": "disburse",
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "payee": body["payee"],
        "purpose": body["purpose"],
        "category": body["category"],
        "evidence": list(body["evidence"]),
    }
    record_hops(state, pieces, hop, None)
    claim_id(state, signer, "funds.disburse", body["disbursement"], ctx)


def donation_refund(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    donation = _recipient_donation(state, signer, body)
    require_unused_id(state, signer, "donation.refund", body["refund"])
    # Refunds reach a suspended platform too: suspension stops signing, not donors' money.
    require_party(state, body["platform"], "body.platform", role="platform")
    _require_donation(donation, body)
    unspent = unspent_at(state, signer, body["platform"], body["donation"])
    if body["amount"] > unspent:
        raise ProtocolError(
            "refund_exceeds_unspent",
            f"the donation has {unspent} unspent at this charity, less than {body['amount']}",
            {"unspent": unspent, "amount": body["amount"]},
        )
    pieces = consume_donation(state, signer, body["platform"], body["donation"], body["amount"])
    hop = {
        "kind": "refund",
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "payee": None,
        "purpose": None,
        "category": None,
        "evidence": None,
    }
    record_hops(state, pieces, hop, None)
    claim_id(state, signer, "donation.refund", body["refund"], ctx)
