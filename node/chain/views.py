"""The read views of docs/spec/07-http-api.md, built from the ledger with protocol bytes intact.

Views keep `bytes` as bytes: the HTTP layer renders them as hex JSON or as msgpack,
so the JSON view always maps back to the exact protocol bytes.
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain.governance_views import party_extras, trace_parties
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.lineage import trace
from almoner.node.chain.party_keys import party_id_for
from almoner.node.chain.signing import block_hash, tx_id
from almoner.node.chain.state import fund_balances, get_donation, get_party, list_evidence
from almoner.node.chain.tx import ID as DONATION_ID
from almoner.node.errors import ProtocolError, StoreError


def not_found(what: str) -> ProtocolError:
    return ProtocolError("not_found", f"{what} not found")


def stored_block(ledger: Ledger, height: int) -> dict[str, Any]:
    """A block an index says is committed; its absence means the store is corrupt."""
    block = ledger.block_at(height)
    if block is None:
        raise StoreError(f"the store is corrupt: block {height} is indexed but missing")
    return block


def stored_block_hash(ledger: Ledger, height: int) -> bytes:
    block_hash_ = ledger.block_hash_at(height)
    if block_hash_ is None:
        raise StoreError(f"the store is corrupt: block {height} is indexed but uncertified")
    return block_hash_


def head_view(ledger: Ledger) -> dict[str, Any]:
    """The signed tree head: newest header with its commit certificate."""
    height = ledger.head.height
    if height == 0:
        raise not_found("no block has been committed yet; the head")
    block, cert = stored_block(ledger, height), ledger.certificate_at(height)
    if cert is None:
        raise StoreError(f"the store is corrupt: the certificate of block {height} is missing")
    return {"block_hash": ledger.head.block_hash, "header": block["header"], "commit": cert}


def block_view(ledger: Ledger, height: int) -> dict[str, Any]:
    block = ledger.block_at(height)
    cert = ledger.certificate_at(height)
    if block is None or cert is None:
        raise not_found(f"block {height}")
    return {
        "block_hash": block_hash(block["header"]),
        "header": block["header"],
        "txs": block["txs"],
        "tx_ids": [tx_id(tx) for tx in block["txs"]],
        "commit": cert,
    }


def inclusion_proof(ledger: Ledger, leaf_index: int, tree_size: int) -> dict[str, Any]:
    return {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "path": ledger.log().inclusion_proof(leaf_index, tree_size),
    }


def certified_head_at_size(ledger: Ledger, size: int | None) -> tuple[int, bytes, int]:
    """(height, block_hash, log_size) of the certified head a proof is made against.

    Without `size`, the current head. With it, the block whose log_size is exactly `size`
    (a donor holding an older signed head asks for a proof against that head).
    """
    if size is None:
        return ledger.head.height, ledger.head.block_hash, ledger.head.log_size
    height = ledger.height_at_log_size(size)
    if height is None:
        raise ProtocolError(
            "invalid_field",
            f"proof_size: no certified head has log_size {size}",
            {"field": "proof_size"},
        )
    return height, stored_block_hash(ledger, height), size


def receipt(ledger: Ledger, tx_id: bytes, proof_size: int | None = None) -> dict[str, Any] | None:
    location = ledger.tx_location(tx_id)
    if location is None:
        return None
    head_height, head_hash, size = certified_head_at_size(ledger, proof_size)
    if location["leaf_index"] >= size:
        raise ProtocolError(
            "invalid_field",
            f"proof_size: the tx is not yet in a log of size {size}",
            {"field": "proof_size"},
        )
    return {
        "tx_id": tx_id,
        "status": "committed",
        "height": location["height"],
        "block_hash": stored_block_hash(ledger, location["height"]),
        "index_in_block": location["index"],
        "proof": inclusion_proof(ledger, location["leaf_index"], size),
        "head": {"height": head_height, "block_hash": head_hash},
    }


def committed_tx(ledger: Ledger, tx_id: bytes) -> dict[str, Any] | None:
    location = ledger.tx_location(tx_id)
    if location is None:
        return None
    block = stored_block(ledger, location["height"])
    tx: dict[str, Any] = block["txs"][location["index"]]
    return tx


# Hops in one trace answer: a page of 1000 hops is ~1 MB of JSON with its proofs.
TRACE_HOPS_MAX = 1000


def trace_view(
    ledger: Ledger,
    platform: bytes,
    donation_id: str,
    hops_from: int = 0,
    hops_limit: int = TRACE_HOPS_MAX,
) -> dict[str, Any]:
    """The trace with one page of hops (all of them up to TRACE_HOPS_MAX).

    Added keys (not in the v1 shape of docs/spec/07-http-api.md): `hops_total`, and `hops_next`, the
    `hops_from` of the next page or null when this page ends the list.
    """
    try:
        DONATION_ID(donation_id, "donation_id")
    except ProtocolError:
        raise not_found(f"donation {donation_id[:80]!r} of platform {platform.hex()}") from None
    hops_limit = max(1, min(hops_limit, TRACE_HOPS_MAX))
    lineage = trace(ledger.store, platform, donation_id, hops_from, hops_limit)
    if lineage is None:
        raise not_found(f"donation {donation_id!r} of platform {platform.hex()}")
    # An added key (docs/spec/07-http-api.md, trace): the charity's donation.confirm tx, so a
    # donor can check "confirmed" with a proof like every hop.
    record = get_donation(ledger.store, platform, donation_id)
    confirm_tx = record.get("confirm_tx") if record else None
    confirm_at = ledger.tx_location(confirm_tx) if confirm_tx else None
    confirmation = (
        {"tx_id": confirm_tx, "height": confirm_at["height"]} if confirm_tx and confirm_at else None
    )
    tx_ids = [lineage["donation"]["tx_id"], *(hop["tx_id"] for hop in lineage["hops"])]
    if confirmation is not None:
        tx_ids.append(confirmation["tx_id"])
    head = ledger.head
    # Keyed by hex tx id: protocol maps have str keys only, in JSON and msgpack alike.
    proofs: dict[str, Any] = {}
    for tid in tx_ids:
        location = ledger.tx_location(tid)
        if location is not None and tid.hex() not in proofs:
            proofs[tid.hex()] = inclusion_proof(ledger, location["leaf_index"], head.log_size)
    end = hops_from + len(lineage["hops"])
    return {
        **lineage,
        "hops_next": end if end < lineage["hops_total"] else None,
        "confirmation": confirmation,
        # Added (docs/governance.md): keys and history of each party the trace names.
        "parties": trace_parties(ledger, lineage),
        "proofs": proofs,
        "head": {"height": head.height, "block_hash": head.block_hash},
    }


def party_view(ledger: Ledger, pubkey: bytes) -> dict[str, Any]:
    """The v1 registry record plus (added) `key`, `keys` and `history`; a key the party
    rotated to or from finds it too."""
    party_id = party_id_for(ledger.store, pubkey)
    party = get_party(ledger.store, party_id)
    if party is None:
        raise not_found(f"party {pubkey.hex()}")
    return {**party, **party_extras(ledger.store, party_id)}


def funds_view(ledger: Ledger, charity: bytes) -> dict[str, Any]:
    party = get_party(ledger.store, charity)
    if party is None or party.get("role") != "charity":
        raise not_found(f"charity {charity.hex()}")
    return {"charity": charity, "funds": fund_balances(ledger.store, charity)}


def committed_evidence(ledger: Ledger) -> list[dict[str, Any]]:
    return list_evidence(ledger.store)
