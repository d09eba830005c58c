"""What validators say to each other, and the two ways it travels.

The fast path is the persistent TLS channel (channel.py): its handshake has authenticated
the sender before a frame is read, so a frame is just one msgpack array of messages.
The v1 path, kept for peers that cannot open the channel (a node with `p2p_channel`
off, e.g. behind an HTTP-only proxy, or an in-process test network), is a POST to
/v1/p2p/messages carrying one envelope `{"chain", "from", "msgs", "sig"}` signed with tag
`almoner/p2p/1`; many messages share one envelope signature. `msgs` is the msgpack array
of messages as one bin field, so the signature covers it without re-encoding a batch.

Message entries (maps with a "type" key):
- {"type": "proposal", "proposal": <§4 proposal map>, "block": <block map>}
- {"type": "vote", "vote": <§4 vote map>}
- {"type": "txs", "txs": [<raw signed tx bytes>, …]}  (gossip, never forwarded again)

Messages are decoded without a canonical-form check because every consumer re-checks
what it uses (consensus messages are parsed and their own signatures verified; txs go
through the mempool's strict decoder; a proposal's block is re-encoded and executed).
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
# A frame or an envelope holds at most this many messages: a sender coalesces up to it,
# a receiver refuses more before decoding anything.
MAX_FRAME_MSGS = 512


class P2PError(AlmonerError):
    """A frame, envelope or peer that must be refused; `status` is the HTTP answer and
    `code` labels the refusal in /metrics."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Envelope:
    sender: bytes
    msgs: list[dict[str, Any]]


def array_length(payload: bytes) -> int:
    """The element count in a msgpack array header, read without decoding the rest."""
    if not payload:
        raise P2PError(400, "malformed", "empty p2p frame")
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(payload) >= 3:
        return int.from_bytes(payload[1:3], "big")
    if first == 0xDD and len(payload) >= 5:
        return int.from_bytes(payload[1:5], "big")
    raise P2PError(400, "malformed", "a p2p frame must be a msgpack array")


def parse_frame(payload: bytes) -> list[dict[str, Any]]:
    """The messages of one frame, count-checked before decoding and shape-checked after."""
    count = array_length(payload)
    if count > MAX_FRAME_MSGS:
        raise P2PError(
            413, "too_many_messages", f"{count} messages in a frame, over {MAX_FRAME_MSGS}"
        )
    try:
        msgs = decode_payload(payload)
    except (AlmonerError, RecursionError) as exc:
        raise P2PError(400, "malformed", f"p2p frame: {exc}") from exc
    if not isinstance(msgs, list) or not all(
        isinstance(m, dict) and m.get("type") in MESSAGE_TYPES for m in msgs
    ):
        raise P2PError(400, "invalid_field", "a p2p frame must be a list of typed messages")
    return msgs


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
        return Envelope(sender, parse_frame(blob))
    except P2PError as exc:
        if exc.code == "too_many_messages":  # v1 names one code for every size limit
            raise P2PError(413, "too_large", exc.message) from exc
        raise
