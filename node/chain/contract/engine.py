"""The contract: the deterministic state machine every node and the verifier replay.

No clock, no randomness, no floats: the only inputs are the state, the tx and its
`TxContext` (height, tx_id, index). `check_and_apply` runs the whole pipeline of
docs/spec/03-transactions.md in its order (size, decoding, `duplicate_tx`, envelope, `wrong_chain`,
`unknown_type`, body, signature, signer, business rules) and applies the tx on a child
overlay that is merged only on success, so a rejected tx leaves `state` untouched.

A block's apply loop (in `node.ledger`) is, per tx: `check_and_apply(block_overlay, raw,
height, index, chain_id)`, then write `TX_INDEX + tx_id` into the same overlay so a later
copy of the tx in the block or chain is `duplicate_tx`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import H, encode
from almoner.node.chain.contract.base import TxContext
from almoner.node.chain.contract.evidence import check_validator_signer, evidence_submit
from almoner.node.chain.contract.funds import (
    donation_confirm,
    donation_record,
    donation_refund,
    funds_disburse,
    funds_transfer,
)
from almoner.node.chain.contract.governance import (
    proposal_approve,
    upgrade_propose,
    validator_propose,
)
from almoner.node.chain.contract.keys import (
    party_recover,
    party_reinstate,
    party_rotate_key,
    recovery_approve,
)
from almoner.node.chain.contract.registry import (
    audit_attest,
    campaign_open,
    party_record,
    party_register,
    party_suspend,
)
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.party_keys import resolve_signer
from almoner.node.chain.state import party_key, write_record
from almoner.node.chain.store import Overlay
from almoner.node.chain.tx import MAX_TX_BYTES, check_tx_shape, check_tx_signature, decode_tx
from almoner.node.errors import ProtocolError

__all__ = ["ROLE_BY_TYPE", "TxContext", "apply_tx", "check_and_apply", "seed_genesis"]

Rule = Callable[[Overlay, bytes, dict[str, Any], TxContext], None]

# Who may sign each type, and the rule that checks and applies its body.
ROLE_BY_TYPE: dict[str, str] = {
    "party.register": "regulator",
    "party.suspend": "regulator",
    "campaign.open": "charity",
    "donation.record": "platform",
    "donation.confirm": "charity",
    "funds.transfer": "charity",
    "funds.disburse": "charity",
    "donation.refund": "charity",
    "audit.attest": "regulator",
    "evidence.submit": "validator",
    # Governance (docs/governance.md). "any": any registered party, for its own key.
    "validator.propose": "validator",
    "upgrade.propose": "validator",
    "proposal.approve": "validator",
    "party.rotate_key": "any",
    "party.recover": "regulator",
    "recovery.approve": "regulator",
    "party.reinstate": "regulator",
}

RULES: dict[str, Rule] = {
    "party.register": party_register,
    "party.suspend": party_suspend,
    "campaign.open": campaign_open,
    "donation.record": donation_record,
    "donation.confirm": donation_confirm,
    "funds.transfer": funds_transfer,
    "funds.disburse": funds_disburse,
    "donation.refund": donation_refund,
    "audit.attest": audit_attest,
    "party.rotate_key": party_rotate_key,
    "party.recover": party_recover,
    "recovery.approve": recovery_approve,
    "party.reinstate": party_reinstate,
}

# Types signed by a validator of the set in force (not a party) and their rules.
VALIDATOR_RULES: dict[str, Rule] = {
    "validator.propose": validator_propose,
    "upgrade.propose": upgrade_propose,
    "proposal.approve": proposal_approve,
}


def _check_party_signer(state: Overlay, signer: bytes, role: str) -> bytes:
    """`unknown_signer` / `key_retired`, `signer_suspended`, `role_not_allowed`; returns the
    party id the key signs for (the key itself unless the party rotated)."""
    party = resolve_signer(state, signer)
    if party is None:
        raise ProtocolError("unknown_signer", "the signer is not a registered party")
    if party["suspended"]:
        raise ProtocolError("signer_suspended", "the signer is suspended")
    if role != "any" and party["role"] != role:
        raise ProtocolError(
            "role_not_allowed",
            f"this tx type must be signed by a {role}, not a {party['role']}",
            {"required": role, "role": party["role"]},
        )
    party_id: bytes = party["pubkey"]
    return party_id


def check_signer(state: Overlay, tx: dict[str, Any], height: int) -> bytes:
    """The signer rules alone: `unknown_signer` / `key_retired`, `signer_suspended`,
    `role_not_allowed`, or not a validator of the set in force for validator-signed
    types. Returns whom the key signs for (the party id, or the validator key). A node
    checks this much of a peer's tx when it defers the business rules (mempool.py)."""
    tx_type: str = tx["type"]
    signer: bytes = tx["signer"]
    if tx_type == "evidence.submit" or tx_type in VALIDATOR_RULES:
        check_validator_signer(state, signer, height)
        return signer
    return _check_party_signer(state, signer, ROLE_BY_TYPE[tx_type])


def apply_tx(state: Overlay, tx: dict[str, Any], ctx: TxContext) -> None:
    """Signer checks, then the type's business rules, then its effects.

    `tx` must have passed `check_tx_shape`. A rule may have written part of its effects
    when it raises only if it checks after writing, which none does; callers still run this
    on a child overlay (see `check_and_apply`) so that no bug can leak a partial write.
    """
    tx_type: str = tx["type"]
    acting = check_signer(state, tx, ctx.height)
    if tx_type == "evidence.submit":
        evidence_submit(state, tx["chain"], acting, tx["body"], ctx)
        return
    validator_rule = VALIDATOR_RULES.get(tx_type)
    if validator_rule is not None:
        validator_rule(state, acting, tx["body"], ctx)
        return
    RULES[tx_type](state, acting, tx["body"], ctx)


def check_and_apply(
    state: Overlay,
    raw: bytes,
    ctx_height: int,
    index: int,
    chain_id: str,
    *,
    verify_signature: bool = True,
    decoded: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The full pipeline of docs/spec/03-transactions.md for one tx; returns (tx map, tx_id).

    `verify_signature=False` is for callers that already verified this exact tx (mempool
    cache, parallel verify); everything else still runs. `decoded` is for callers that
    produced `raw` as `encode(decoded)` themselves (a block's txs): those bytes are
    canonical by construction, so decoding them again would only repeat work.
    """
    tx = decoded if decoded is not None and len(raw) <= MAX_TX_BYTES else decode_tx(raw)
    # decode() accepted only canonical bytes, so H(raw) is H(canonical(tx)).
    tx_id = H(raw)
    if state.get(schema.TX_INDEX + tx_id) is not None:
        raise ProtocolError(
            "duplicate_tx", "this tx is already on the ledger", {"tx_id": tx_id.hex()}
        )
    check_tx_shape(tx, chain_id)
    if verify_signature:
        check_tx_signature(tx, raw)
    child = state.child()
    ctx = TxContext(ctx_height, tx_id, index, chain=chain_id, key=tx["signer"])
    apply_tx(child, tx, ctx)
    state.merge(child)
    return tx, tx_id


def seed_genesis(state: Overlay, genesis: Genesis) -> None:
    """State before height 1: genesis parties, the first validator set, zeroed counters."""
    for party in genesis.parties:
        record = party_record(party.pubkey, party.role, party.name, party.org_id, 0, None)
        write_record(state, party_key(party.pubkey), record)
    state.put(schema.VALIDATORS + schema.u64(1), encode(genesis.validator_keys))
    write_record(state, schema.META_LOT_SEQ, 0)
    write_record(state, schema.META_HOP_SEQ, 0)
