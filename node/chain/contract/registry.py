"""Rules for the registry txs: party.register, party.suspend, campaign.open, audit.attest."""

from __future__ import annotations

from typing import Any

from almoner.node.chain.contract.base import TxContext, claim_id, require_party, require_unused_id
from almoner.node.chain.lineage import Fund, ensure_fund
from almoner.node.chain.party_keys import key_in_use
from almoner.node.chain.state import (
    attestation_key,
    campaign_key,
    get_party,
    party_key,
    write_record,
)
from almoner.node.chain.store import Overlay
from almoner.node.errors import ProtocolError


def party_record(
    pubkey: bytes, role: str, name: str, org_id: str, height: int, tx_id: bytes | None
) -> dict[str, Any]:
    return {
        "pubkey": pubkey,
        "role": role,
        "name": name,
        "org_id": org_id,
        "suspended": False,
        "registered_height": height,
        "registered_tx": tx_id,
        "suspended_height": None,
        "suspended_tx": None,
        "suspend_reason": None,
    }


def party_register(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    if key_in_use(state, body["party"]):  # a registered id, or a key a party rotated to
        raise ProtocolError(
            "duplicate_id",
            "the party is already registered",
            {"type": "party.register", "id": body["party"].hex()},
        )
    record = party_record(
        body["party"], body["role"], body["name"], body["org_id"], ctx.height, ctx.tx_id
    )
    write_record(state, party_key(body["party"]), record)


def party_suspend(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    party = get_party(state, body["party"])
    if party is not None and party["suspended"]:
        raise ProtocolError(
            "duplicate_id",
            "the party is already suspended",
            {"type": "party.suspend", "id": body["party"].hex()},
        )
    party = require_party(state, body["party"], "body.party")
    party.update(
        suspended=True,
        suspended_height=ctx.height,
        suspended_tx=ctx.tx_id,
        suspend_reason=body["reason"],
    )
    write_record(state, party_key(body["party"]), party)


def campaign_open(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    require_unused_id(state, signer, "campaign.open", body["campaign"])
    record = {
        "charity": signer,
        "campaign": body["campaign"],
        "title": body["title"],
        "currency": body["currency"],
        "goal": body["goal"],
        "tx_id": ctx.tx_id,
        "height": ctx.height,
    }
    write_record(state, campaign_key(signer, body["campaign"]), record)
    ensure_fund(state, Fund(signer, body["currency"], body["campaign"]))
    claim_id(state, signer, "campaign.open", body["campaign"], ctx)


def audit_attest(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    require_unused_id(state, signer, "audit.attest", body["attestation"])
    # A suspended charity can still be audited: an opinion is not money received.
    require_party(state, body["charity"], "body.charity", role="charity")
    record = {
        "regulator": signer,
        **body,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
    }
    write_record(state, attestation_key(signer, body["attestation"]), record)
    claim_id(state, signer, "audit.attest", body["attestation"], ctx)
