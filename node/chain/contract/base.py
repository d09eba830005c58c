"""What every contract rule shares: the tx context and the checks named by the spec's
business-rule order (`duplicate_id`, then referenced parties, then funds).

The rules modules (`contract_registry`, `contract_funds`, `contract_evidence`) each check
first and write after, and run on a child overlay that is merged only on success, so a
rejection can never leave a partial write behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from almoner.node.chain.state import business_id_key, get_party
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.errors import ProtocolError


@dataclass(frozen=True)
class TxContext:
    """Where a tx is applied: the block height, its tx_id and its index in the block.

    The contract has no clock and no randomness; this is all it knows about "now".
    """

    height: int
    tx_id: bytes
    index: int
    # The chain id and the key that signed the tx (rules get the signer's party id, which
    # differs from the key once a party has rotated; docs/governance.md).
    chain: str = ""
    key: bytes = b""


def require_unused_id(reader: KVReader, signer: bytes, tx_type: str, bid: str) -> None:
    """Business ids are unique per (signer, type); the refusal names the tx that used the
    id, so a platform that retried with a new nonce can pick up the original."""
    first = reader.get(business_id_key(signer, tx_type, bid))
    if first is not None:
        raise ProtocolError(
            "duplicate_id",
            f"{tx_type} id {bid!r} was already used by this signer",
            {"type": tx_type, "id": bid, "tx_id": first.hex()},
        )


def claim_id(state: Overlay, signer: bytes, tx_type: str, bid: str, ctx: TxContext) -> None:
    state.put(business_id_key(signer, tx_type, bid), ctx.tx_id)


def require_party(
    reader: KVReader, pubkey: bytes, field: str, *, role: str | None = None
) -> dict[str, Any]:
    """A referenced party must be registered (and of `role` when given): `unknown_party`."""
    party = get_party(reader, pubkey)
    if party is None or (role is not None and party["role"] != role):
        what = "party" if role is None else role
        raise ProtocolError(
            "unknown_party",
            f"{field} is not a registered {what}",
            {"field": field, "party": pubkey.hex()},
        )
    return party


def require_receiving(party: dict[str, Any], field: str) -> None:
    """A suspended charity receives nothing."""
    if party["suspended"]:
        raise ProtocolError(
            "party_suspended",
            f"{field} is suspended and can receive nothing",
            {"field": field, "party": party["pubkey"].hex()},
        )
