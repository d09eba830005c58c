"""Validator-to-validator envelopes: who sent a batch of consensus messages, signed.

Consensus messages are signed by their authors already, but a node must also refuse
traffic from anyone who is not a validator of its chain before spending work on it, and
must know which peer to answer. So every POST to /v1/p2p/messages carries one envelope
`{"chain", "from", "msgs", "sig"}` signed with tag `almoner/p2p/1`; many messages share
one envelope signature, which keeps the per-message cost at one verify (the message's own).
`msgs` is the msgpack array of messages as one bin field: the envelope signature then
covers it without re-encoding a batch of blocks and txs, and the messages inside are
decoded without a canonical-form check because every consumer re-checks what it uses
(consensus messages are parsed and their own signatures verified; txs go through the
mempool's strict decoder; a proposal's block is re-encoded and executed).

Message entries (maps with a "type" key):
- {"type": "proposal", "proposal": <§4 proposal map>, "block": <block map>}
- {"type": "vote", "vote": <§4 vote map>}
- {"type": "txs", "txs": [<raw signed tx bytes>, …]}  (gossip, never forwarded again)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from almoner.node.chain.codec import decode, decode_payload, encode
from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.chain.signing import p2p_sign_bytes
from almoner.node.errors import AlmonerError

ENVELOPE_KEYS = frozenset({"chain", "from", "msgs", "sig"})
MESSAGE_TYPES = frozenset({"proposal", "vote", "txs"})


class P2PError(AlmonerError):
    """An envelope that must be refused; `status` is the HTTP answer (400/401/403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Envelope:
    sender: bytes
    msgs: list[dict[str, Any]]


def seal(key: KeyPair, chain: str, msgs: list[dict[str, Any]]) -> bytes:
    envelope: dict[str, Any] = {"chain": chain, "from": key.public_key, "msgs": encode(msgs)}
    envelope["sig"] = key.sign(p2p_sign_bytes(envelope))
    return encode(envelope)


def open_envelope(body: bytes, chain: str, validators: frozenset[bytes], max_size: int) -> Envelope:
    """Decode, authenticate and shape-check an envelope, cheapest checks first."""
    try:
        envelope = decode(body, max_size=max_size)
    except AlmonerError as exc:
        raise P2PError(400, "malformed", f"p2p envelope: {exc}") from exc
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_KEYS:
        raise P2PError(400, "invalid_field", "p2p envelope must have chain, from, msgs, sig")
    sender, sig = envelope["from"], envelope["sig"]
    if not isinstance(sender, bytes) or not isinstance(sig, bytes):
        raise P2PError(400, "invalid_field", "p2p envelope from/sig must be bin")
    if envelope["chain"] != chain:
        raise P2PError(400, "wrong_chain", "p2p envelope is for another chain")
    if sender not in validators:
        raise P2PError(403, "not_a_validator", "p2p sender is not a validator of this chain")
    blob = envelope["msgs"]
    if not isinstance(blob, bytes):
        raise P2PError(400, "invalid_field", "p2p msgs must be bin (an encoded array)")
    if not verify(sender, p2p_sign_bytes(envelope), sig):
        raise P2PError(401, "bad_signature", "p2p envelope signature does not verify")
    try:
        msgs = decode_payload(blob)
    except AlmonerError as exc:
        raise P2PError(400, "malformed", f"p2p msgs: {exc}") from exc
    if not isinstance(msgs, list) or not all(
        isinstance(m, dict) and m.get("type") in MESSAGE_TYPES for m in msgs
    ):
        raise P2PError(400, "invalid_field", "p2p msgs must be a list of typed messages")
    return Envelope(sender, msgs)
