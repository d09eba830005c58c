"""validator.propose, upgrade.propose, proposal.approve: the validators govern themselves.

A proposal is adopted by the tx that brings its approvals (the proposer's own included)
from members of the set in force at that tx's height to a quorum, floor(2n/3) + 1 of n
equal-weight validators, i.e. more than two thirds of the voting power. Approvals from
keys no longer in the set do not count. An adopted set change is in force from
`adopted height + SET_CHANGE_DELAY`; an adopted upgrade from the height it names, which
must be at least `UPGRADE_NOTICE` ahead. Changes are checked when proposed and again on
adoption against the newest scheduled set (changes compose in adoption order).

Business-rule order (after the validator-signer check): proposals `duplicate_id`, then
`invalid_set_change` / `invalid_upgrade`. Approvals: `unknown_proposal`,
`proposal_closed` (adopted), `proposal_expired`, `duplicate_id` (this validator approved
already), then, if this approval adopts it, `invalid_set_change` / `invalid_upgrade`.
"""

from __future__ import annotations

from typing import Any

from almoner.consensus.messages import quorum
from almoner.node.chain import schema
from almoner.node.chain.contract.base import TxContext
from almoner.node.chain.schema import lstr
from almoner.node.chain.state import decode_record, read_record, validators_at, write_record
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.chain.validator_sets import (
    BASE_VERSION,
    MIN_VALIDATORS,
    PROPOSAL_TTL,
    SET_CHANGE_DELAY,
    UPGRADE_NOTICE,
    latest_set,
    latest_upgrade,
    schedule_set,
    schedule_upgrade,
    validator_info,
    write_validator_info,
)
from almoner.node.errors import ProtocolError


def proposal_key(proposer: bytes, proposal: str) -> bytes:
    return schema.PROPOSAL + proposer + lstr(proposal)


def get_proposal(reader: KVReader, proposer: bytes, proposal: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = read_record(reader, proposal_key(proposer, proposal))
    return record


def list_proposals(reader: KVReader) -> list[dict[str, Any]]:
    """Validator and upgrade proposals, by (proposer, id)."""
    return [decode_record(raw) for _, raw in reader.iterate(schema.PROPOSAL)]


def new_proposal(
    kind: str, proposer: bytes, proposal: str, body: dict[str, Any], ctx: TxContext
) -> dict[str, Any]:
    return {
        "kind": kind,
        "proposer": proposer,
        "proposal": proposal,
        "body": body,
        "height": ctx.height,
        "tx_id": ctx.tx_id,
        "expires_height": ctx.height + PROPOSAL_TTL,
        "approvals": [proposer],
        "approval_txs": [ctx.tx_id],  # the tx of each approval, for light clients
        "adopted_height": None,
        "adopted_tx": None,
        "effective_height": None,
    }


def require_new_id(reader: KVReader, key: bytes, tx_type: str, bid: str) -> None:
    if reader.get(key) is not None:
        raise ProtocolError(
            "duplicate_id",
            f"proposal id {bid!r} was already used by this signer",
            {"type": tx_type, "id": bid},
        )


def require_open(record: dict[str, Any] | None, ctx: TxContext, what: str) -> dict[str, Any]:
    """`unknown_proposal`, `proposal_closed`, `proposal_expired`, in that order."""
    if record is None:
        raise ProtocolError("unknown_proposal", f"no such {what}")
    if record["adopted_height"] is not None:
        raise ProtocolError(
            "proposal_closed",
            f"this {what} was adopted at height {record['adopted_height']}",
            {"adopted_height": record["adopted_height"]},
        )
    if ctx.height > record["expires_height"]:
        raise ProtocolError(
            "proposal_expired",
            f"this {what} expired after height {record['expires_height']}",
            {"expires_height": record["expires_height"]},
        )
    return record


def add_approval(record: dict[str, Any], approver: bytes, what: str, ctx: TxContext) -> None:
    if approver in record["approvals"]:
        raise ProtocolError(
            "duplicate_id", f"this signer already approved the {what}", {"type": "approval"}
        )
    record["approvals"].append(approver)
    record["approval_txs"].append(ctx.tx_id)


# -- set changes ----------------------------------------------------------------------


def _bad_change(message: str, field: str) -> ProtocolError:
    return ProtocolError("invalid_set_change", message, {"field": field})


def changed_set(reader: KVReader, body: dict[str, Any]) -> list[bytes]:
    """The newest scheduled set with this change applied, or `invalid_set_change`."""
    _, keys = latest_set(reader)
    action, validator, replaces = body["action"], body["validator"], body["replaces"]
    if action in ("add", "replace") and validator in keys:
        raise _bad_change("the key is already a validator", "body.validator")
    if action == "add":
        return [*keys, validator]
    leaving = validator if action == "remove" else replaces
    if leaving not in keys:
        field = "body.validator" if action == "remove" else "body.replaces"
        raise _bad_change("the key is not a validator", field)
    if action == "replace":
        return [validator if key == leaving else key for key in keys]
    if len(keys) - 1 < MIN_VALIDATORS:
        raise _bad_change(
            f"the set may not drop below {MIN_VALIDATORS} validators", "body.validator"
        )
    return [key for key in keys if key != leaving]


def validator_propose(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    key = proposal_key(signer, body["proposal"])
    require_new_id(state, key, "validator.propose", body["proposal"])
    changed_set(state, body)
    record = new_proposal("validator", signer, body["proposal"], body, ctx)
    _adopt_if_quorum(state, record, ctx)
    write_record(state, key, record)


# -- upgrades -------------------------------------------------------------------------


def check_upgrade(reader: KVReader, body: dict[str, Any], height: int) -> None:
    """A newer version, at a height far enough ahead and after any scheduled upgrade."""
    latest = latest_upgrade(reader)
    current = BASE_VERSION if latest is None else latest["version"]
    if body["version"] <= current:
        raise ProtocolError(
            "invalid_upgrade",
            f"version {body['version']} is not newer than version {current}",
            {"field": "body.version"},
        )
    earliest = height + UPGRADE_NOTICE
    if latest is not None:
        earliest = max(earliest, latest["height"] + 1)
    if body["height"] < earliest:
        raise ProtocolError(
            "invalid_upgrade",
            f"the upgrade height must be at least {earliest}",
            {"field": "body.height", "earliest": earliest},
        )


def upgrade_propose(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    key = proposal_key(signer, body["proposal"])
    require_new_id(state, key, "upgrade.propose", body["proposal"])
    check_upgrade(state, body, ctx.height)
    record = new_proposal("upgrade", signer, body["proposal"], body, ctx)
    _adopt_if_quorum(state, record, ctx)
    write_record(state, key, record)


# -- approvals and adoption -------------------------------------------------------------


def proposal_approve(state: Overlay, signer: bytes, body: dict[str, Any], ctx: TxContext) -> None:
    key = proposal_key(body["proposer"], body["proposal"])
    record = require_open(read_record(state, key), ctx, "proposal")
    add_approval(record, signer, "proposal", ctx)
    _adopt_if_quorum(state, record, ctx)
    write_record(state, key, record)


def _adopt_if_quorum(state: Overlay, record: dict[str, Any], ctx: TxContext) -> None:
    members = validators_at(state, ctx.height)
    approving = sum(1 for key in record["approvals"] if key in members)
    if approving < quorum(len(members)):
        return
    body = record["body"]
    if record["kind"] == "validator":
        keys = changed_set(state, body)
        effective = ctx.height + SET_CHANGE_DELAY
        schedule_set(state, effective, keys)
        _note_members(state, body, effective, ctx)
    else:
        check_upgrade(state, body, ctx.height)
        effective = body["height"]
        schedule_upgrade(
            state,
            {
                "height": effective,
                "version": body["version"],
                "note": body["note"],
                "proposer": record["proposer"],
                "proposal": record["proposal"],
                "adopted_height": ctx.height,
                "adopted_tx": ctx.tx_id,
            },
        )
    record.update(adopted_height=ctx.height, adopted_tx=ctx.tx_id, effective_height=effective)


def _note_members(state: Overlay, body: dict[str, Any], effective: int, ctx: TxContext) -> None:
    """Name and organisation of a joining validator; when a leaving one left."""
    leaving = body["validator"] if body["action"] == "remove" else body["replaces"]
    if body["action"] != "remove":
        write_validator_info(
            state,
            {
                "pubkey": body["validator"],
                "name": body["name"],
                "org_id": body["org_id"],
                "added_height": effective,
                "added_tx": ctx.tx_id,
                "removed_height": None,
                "removed_tx": None,
            },
        )
    if leaving is not None:
        info = validator_info(state, leaving) or {
            "pubkey": leaving,
            "name": None,
            "org_id": None,
            "added_height": 1,
            "added_tx": None,
        }
        info.update(removed_height=effective, removed_tx=ctx.tx_id)
        write_validator_info(state, info)
