"""Read views of governance: validator sets by height with names, proposals with their
status, scheduled upgrades, and a party's keys and history (docs/governance.md).

Bytes stay bytes, as in `node.views`: the HTTP layer renders hex JSON or msgpack.
"""

from __future__ import annotations

from typing import Any

from almoner.consensus.messages import quorum
from almoner.node.chain.contract.governance import list_proposals
from almoner.node.chain.contract.keys import active_regulators, list_recoveries
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.party_keys import current_key, history, key_history
from almoner.node.chain.state import get_party
from almoner.node.chain.store import KVReader
from almoner.node.chain.validator_sets import set_history, upgrades, validator_info


def party_extras(reader: KVReader, party: bytes) -> dict[str, Any]:
    """Added to the v1 party record: its current key, every key with the heights it was
    valid for, and every change (register, rotate, recover, suspend, reinstate)."""
    return {
        "key": current_key(reader, party),
        "keys": key_history(reader, party),
        "history": history(reader, party),
    }


def _named(ledger: Ledger, keys: list[bytes]) -> list[dict[str, Any]]:
    genesis = {v.pubkey: v.name for v in ledger.genesis.validators}
    result = []
    for key in keys:
        info = validator_info(ledger.store, key)
        name = info["name"] if info and info["name"] is not None else genesis.get(key)
        org = info["org_id"] if info else None
        result.append({"pubkey": key, "name": name, "org_id": org})
    return result


def _status(record: dict[str, Any], height: int) -> str:
    if record["adopted_height"] is not None:
        return "adopted"
    return "expired" if height > record["expires_height"] else "open"


def validators_view(ledger: Ledger) -> dict[str, Any]:
    next_height = ledger.head.height + 1
    return {
        "height": next_height,
        "validators": _named(ledger, ledger.validators(next_height)),
        "history": [
            {"from_height": entry["from_height"], "validators": _named(ledger, entry["validators"])}
            for entry in set_history(ledger.store)
        ],
    }


def governance_view(ledger: Ledger) -> dict[str, Any]:
    """Everything `almoner governance` lists: proposals (open, adopted, expired) with the
    approvals still needed, recoveries, the sets by height and the protocol versions."""
    next_height = ledger.head.height + 1
    members = ledger.validators(next_height)
    regulators = active_regulators(ledger.store)
    proposals = []
    for record in list_proposals(ledger.store):
        have = sum(1 for key in record["approvals"] if key in members)
        proposals.append(
            {
                **record,
                "status": _status(record, next_height),
                "approvals_needed": max(0, quorum(len(members)) - have),
            }
        )
    recoveries = []
    for record in list_recoveries(ledger.store):
        have = sum(1 for key in record["approvals"] if key in regulators)
        recoveries.append(
            {
                **record,
                "status": _status(record, next_height),
                "approvals_needed": max(0, quorum(len(regulators)) - have),
            }
        )
    return {
        "height": ledger.head.height,
        "validators": validators_view(ledger),
        "proposals": proposals,
        "recoveries": recoveries,
        "upgrades": upgrades(ledger.store),
        "protocol": {
            "version": ledger.version(next_height),
            "max_supported": ledger.max_version,
        },
    }


def trace_parties(ledger: Ledger, lineage: dict[str, Any]) -> dict[str, Any]:
    """Keys and history of every party a trace names, keyed by hex party id."""
    names = [lineage["donation"]["platform"], lineage["donation"]["charity"]]
    for hop in lineage["hops"]:
        names.append(hop["from"]["charity"])
        if hop["to"] is not None:
            names.append(hop["to"]["charity"])
    names.extend(entry["charity"] for entry in lineage["held"])
    result: dict[str, Any] = {}
    for party in names:
        if party.hex() not in result and get_party(ledger.store, party) is not None:
            result[party.hex()] = party_extras(ledger.store, party)
    return result
