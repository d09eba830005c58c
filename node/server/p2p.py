"""What validators say to each other on the p2p channel (channel.py carries it).

A frame's payload is one msgpack array of messages, each a map with a "type" key:
- {"type": "proposal", "proposal": <§4 proposal map>, "block": <block map>}
- {"type": "vote", "vote": <§4 vote map>}
- {"type": "txs", "txs": [<raw signed tx bytes>, …]}  (gossip, never forwarded again)

The channel has authenticated the sender before a frame is read, so a frame carries no
signature of its own: consensus messages are signed by their authors, and the messages
are decoded without a canonical-form check because every consumer re-checks what it uses
(consensus messages are parsed and their own signatures verified; txs go through the
mempool's strict decoder; a proposal's block is re-encoded and executed).
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain.codec import decode_payload
from almoner.node.errors import AlmonerError

MESSAGE_TYPES = frozenset({"proposal", "vote", "txs"})
# A frame holds at most this many messages: a sender coalesces up to it, a receiver
# refuses more before decoding anything.
MAX_FRAME_MSGS = 512


class P2PError(AlmonerError):
    """A frame or a peer that must be refused; `code` labels the refusal in /metrics."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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
