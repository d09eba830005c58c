"""One sign-bytes function per signed type, and the header hash (docs/spec/01-encoding.md, §4).

Every signature in the system is made and checked over bytes built here, with a domain
tag, so a vote can never be replayed as a tx or a proposal, and a prevote never as a
precommit (the `kind` key is inside the signed map).
"""

from __future__ import annotations

from typing import Any

import msgpack

from almoner.node.chain.codec import H, encode

TX_TAG = b"almoner/tx/1"
PROPOSAL_TAG = b"almoner/proposal/1"
VOTE_TAG = b"almoner/vote/1"
HEADER_TAG = b"almoner/header/1"
# Governance (docs/governance.md): the new key's proof of possession in a key rotation.
ROTATE_TAG = b"almoner/rotate/1"
# Validator-to-validator envelopes (docs/spec/06-consensus-and-p2p.md, "P2P envelopes").
P2P_TAG = b"almoner/p2p/1"


def sign_bytes(tag: bytes, obj: dict[str, Any]) -> bytes:
    """`tag || 0x00 || canonical(obj without "sig")`."""
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    return tag + b"\x00" + encode(unsigned)


def tx_sign_bytes(tx: dict[str, Any]) -> bytes:
    return sign_bytes(TX_TAG, tx)


TX_KEY_ORDER = ("body", "chain", "nonce", "sig", "signer", "type")  # canonical key order


def split_signed_tx(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(sign-bytes, signer, sig) cut straight from a tx's canonical bytes, or None.

    Dropping one entry from a canonical map leaves a canonical map, so for canonical input
    the result is exactly `tx_sign_bytes(tx)`, without re-encoding the tx. None when `raw`
    is not a 6-entry map with the envelope keys in canonical order (the caller then falls
    back to encoding).
    """
    if not raw or raw[0] != 0x86:
        return None
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(raw) + 1)
    unpacker.feed(raw)
    parts: list[bytes] = []
    signer: Any = None
    sig: Any = None
    try:
        unpacker.read_map_header()
        for expected in TX_KEY_ORDER:
            start = unpacker.tell()
            if unpacker.unpack() != expected:
                return None
            if expected == "sig":
                sig = unpacker.unpack()
                continue
            if expected == "signer":
                signer = unpacker.unpack()
            else:
                unpacker.skip()
            parts.append(raw[start : unpacker.tell()])
        if unpacker.tell() != len(raw):
            return None
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(signer, bytes) or not isinstance(sig, bytes):
        return None
    return TX_TAG + b"\x00\x85" + b"".join(parts), signer, sig


def proposal_sign_bytes(proposal: dict[str, Any]) -> bytes:
    return sign_bytes(PROPOSAL_TAG, proposal)


def vote_sign_bytes(vote: dict[str, Any]) -> bytes:
    return sign_bytes(VOTE_TAG, vote)


def rotation_sign_bytes(chain: str, party: bytes, new_key: bytes) -> bytes:
    """What a party's new key signs to prove it is held by whoever rotates to it.

    The chain and the party are inside, so the proof can be neither replayed on another
    chain nor used to hand the key to another party."""
    return sign_bytes(ROTATE_TAG, {"chain": chain, "party": party, "new_key": new_key})


def p2p_sign_bytes(envelope: dict[str, Any]) -> bytes:
    return sign_bytes(P2P_TAG, envelope)


def block_hash(header: dict[str, Any]) -> bytes:
    return H(HEADER_TAG + b"\x00" + encode(header))


def tx_id(tx: dict[str, Any]) -> bytes:
    """`H(canonical(tx))` over the whole signed map."""
    return H(encode(tx))
