"""party.rotate_key, party.recover, recovery.approve, party.reinstate: a party's key and
status change over time, and every change is kept in its history.

- `party.rotate_key` is signed by the party's current key (the tx signature) and carries
  the new key's signature over `rotation_sign_bytes` (proof of possession), so both keys
  agree. The old key is retired at that height: its later txs are `key_retired`.
- `party.recover` is the emergency rotation for a lost or leaked key: proposed by one
  regulator and adopted when a quorum (floor(2r/3) + 1) of the r regulators not suspended
  at that moment approved it; the new key still proves possession.
- `party.reinstate` lifts a suspension, by one regulator (as one suspends), with a reason.

Business-rule order: rotate: `bad_signature` (body.new_sig), `key_in_use`. recover:
`duplicate_id`, `unknown_party`, `bad_signature`, `key_in_use`. approve: `unknown_proposal`,
`proposal_closed`, `proposal_expired`, `duplicate_id`, then on adoption `key_in_use`.
reinstate: `duplicate_id` (not suspended), `unknown_party`.
"""

from __future__ import annotations

from typing import Any

from almoner.consensus.messages import quorum
from almoner.node.chain import schema
from almoner.node.chain.contract.base import TxContext, require_party
from almoner.node.chain.contract.governance import add_approval, require_new_id, require_open
from almoner.node.chain.crypto import verify
from almoner.node.chain.party_keys import (
    add_event,
    key_in_use,
    record_lifted_suspension,
    rotate,
)
from almoner.node.chain.schema import lstr
from almoner.node.chain.signing import rotation_sign_bytes
from almoner.node.chain.state import (
    decode_record,
    get_party,
    party_key,
    read_record,
    write_record,
)
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.chain.validator_sets import PROPOSAL_TTL
from almoner.node.errors import ProtocolError


def recovery_key(regulator: bytes, recovery: str) -> bytes:
    return schema.RECOVERY + regulator + lstr(recovery)


def list_recoveries(reader: KVReader) -> list[dict[str, Any]]:
    return [decode_record(raw) for _, raw in reader.iterate(schema.RECOVERY)]


def _check_new_key(state: Overlay, chain: str, party: bytes, body: dict[str, Any]) -> None:
    message = rotation_sign_bytes(chain, party, body["new_key"])
    if not verify(body["new_key"], message, body["new_sig"]):
        raise ProtocolError(
            "bad_signature",
            "new_sig is not the new key's signature over the rotation",
            {"field": "body.new_sig"},
        )
    _require_unused_key(state, body["new_key"])


def _require_unused_key(state: Overlay, key: bytes) -> None:
    if key_in_use(state, key):
        raise ProtocolError(
            "key_in_use",
            "the new key already belongs to a party (keys are never reused)",
            {"field": "body.new_key"},
        )


def _rotate(
    state: Overlay, party: bytes, kind: str, by: bytes, body: dict[str, Any], ctx: TxContext
) -> None:
    old_key = rotate(state, party, body["new_key"], ctx.height)
    event = {
        "kind": kind,
        "height": ctx.height,
        "tx_id": ctx.tx_id,
        "by": by,
        "old_key": old_key,
        "new_key": body["new_key"],
        "reason": body.get("reason"),
    }
    add_event(state, party, ctx.height, ctx.index, event)


def party_rotate_key(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    _check_new_key(state, ctx.chain, signer, body)
    _rotate(state, signer, "rotate", signer, body, ctx)


def party_recover(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    key = recovery_key(signer, body["recovery"])
    require_new_id(state, key, "party.recover", body["recovery"])
    require_party(state, body["party"], "body.party")
    _check_new_key(state, ctx.chain, body["party"], body)
    record = {
        "kind": "recovery",
        "proposer": signer,
        "recovery": body["recovery"],
        "body": body,
        "height": ctx.height,
        "tx_id": ctx.tx_id,
        "expires_height": ctx.height + PROPOSAL_TTL,
        "approvals": [signer],
        "approval_txs": [ctx.tx_id],
        "adopted_height": None,
        "adopted_tx": None,
    }
    _adopt_if_quorum(state, record, ctx)
    write_record(state, key, record)


def recovery_approve(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    key = recovery_key(body["proposer"], body["recovery"])
    record = require_open(read_record(state, key), ctx, "recovery")
    add_approval(record, signer, "recovery", ctx)
    _adopt_if_quorum(state, record, ctx)
    write_record(state, key, record)


def active_regulators(reader: KVReader) -> set[bytes]:
    regulators = set()
    for _, raw in reader.iterate(schema.PARTY):
        party = decode_record(raw)
        if party["role"] == "regulator" and not party["suspended"]:
            regulators.add(party["pubkey"])
    return regulators


def _adopt_if_quorum(state: Overlay, record: dict[str, Any], ctx: TxContext) -> None:
    regulators = active_regulators(state)
    approving = sum(1 for key in record["approvals"] if key in regulators)
    if approving < quorum(len(regulators)):
        return
    _require_unused_key(state, record["body"]["new_key"])
    _rotate(state, record["body"]["party"], "recover", record["proposer"], record["body"], ctx)
    record.update(adopted_height=ctx.height, adopted_tx=ctx.tx_id)


def party_reinstate(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    party = get_party(state, body["party"])
    if party is not None and not party["suspended"]:
        raise ProtocolError(
            "duplicate_id",
            "the party is not suspended",
            {"type": "party.reinstate", "id": body["party"].hex()},
        )
    party = require_party(state, body["party"], "body.party")
    record_lifted_suspension(state, party)
    party.update(suspended=False, suspended_height=None, suspended_tx=None, suspend_reason=None)
    write_record(state, party_key(body["party"]), party)
    event = {
        "kind": "reinstate",
        "height": ctx.height,
        "tx_id": ctx.tx_id,
        "by": signer,
        "reason": body["reason"],
    }
    add_event(state, body["party"], ctx.height, ctx.index, event)
