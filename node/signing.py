"""One sign-bytes function per signed type, and the header hash (PROTOCOL.md §1, §4).

Every signature in the system is made and checked over bytes built here, with a domain
tag, so a vote can never be replayed as a tx or a proposal, and a prevote never as a
precommit (the `kind` key is inside the signed map).
"""

from __future__ import annotations

from typing import Any

from node.codec import H, encode

TX_TAG = b"almoner/tx/1"
PROPOSAL_TAG = b"almoner/proposal/1"
VOTE_TAG = b"almoner/vote/1"
HEADER_TAG = b"almoner/header/1"
# Not in PROTOCOL.md: validator-to-validator envelopes (docs/protocol.md, "p2p").
P2P_TAG = b"almoner/p2p/1"


def sign_bytes(tag: bytes, obj: dict[str, Any]) -> bytes:
    """`tag || 0x00 || canonical(obj without "sig")`."""
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    return tag + b"\x00" + encode(unsigned)


def tx_sign_bytes(tx: dict[str, Any]) -> bytes:
    return sign_bytes(TX_TAG, tx)


def proposal_sign_bytes(proposal: dict[str, Any]) -> bytes:
    return sign_bytes(PROPOSAL_TAG, proposal)


def vote_sign_bytes(vote: dict[str, Any]) -> bytes:
    return sign_bytes(VOTE_TAG, vote)


def p2p_sign_bytes(envelope: dict[str, Any]) -> bytes:
    return sign_bytes(P2P_TAG, envelope)


def block_hash(header: dict[str, Any]) -> bytes:
    return H(HEADER_TAG + b"\x00" + encode(header))


def tx_id(tx: dict[str, Any]) -> bytes:
    """`H(canonical(tx))` over the whole signed map."""
    return H(encode(tx))
