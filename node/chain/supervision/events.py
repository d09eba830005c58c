"""Turn each verified block into `Event`s: its txs in order, with the lineage hops each
wrote.

The hops are read from the block's own state changes (the contract's `DONATION_HOP`
records), so "whose money did this disbursement spend" is answered by the same FIFO
lineage every node computes, not by a second model of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.ledger import ExecutedBlock
from almoner.node.chain.state import decode_record
from almoner.node.chain.supervision.model import Event, Hop, TxRef

_PLATFORM = 32


def _hop_from(key: bytes, raw: bytes) -> tuple[bytes, int, Hop]:
    """(tx_id, hop sequence, hop) of one DONATION_HOP entry."""
    rest = key[len(schema.DONATION_HOP) :]
    platform = rest[:_PLATFORM]
    length = rest[_PLATFORM]
    donation = rest[_PLATFORM + 1 : _PLATFORM + 1 + length].decode("utf-8")
    seq = schema.from_u64(rest[_PLATFORM + 1 + length :])
    record: dict[str, Any] = decode_record(raw)
    to = record["to"]
    hop = Hop(
        platform=platform,
        donation=donation,
        kind=record["kind"],
        amount=record["amount"],
        from_charity=record["from"]["charity"],
        from_fund=record["from"]["fund"],
        to_charity=None if to is None else to["charity"],
        to_fund=None if to is None else to["fund"],
    )
    return record["tx_id"], seq, hop


def block_events(executed: ExecutedBlock, party_of: Callable[[bytes], bytes]) -> list[Event]:
    """The block's txs as events; `signer` is the party id the signing key belongs to
    (after a key rotation the key differs from the party's id)."""
    block = executed.block
    header = block["header"]
    first_leaf = header["log_size"] - len(executed.tx_ids)
    hops: dict[bytes, list[tuple[int, Hop]]] = {}
    if any(tx["type"] in _MOVES for tx in block["txs"]):
        for key, raw in executed.overlay.changes().items():
            if raw is not None and key.startswith(schema.DONATION_HOP):
                tx_id, seq, hop = _hop_from(key, raw)
                hops.setdefault(tx_id, []).append((seq, hop))
    events = []
    for index, (tx, tx_id) in enumerate(zip(block["txs"], executed.tx_ids, strict=True)):
        ref = TxRef(tx_id, header["height"], first_leaf + index)
        own = tuple(hop for _, hop in sorted(hops.get(tx_id, ()), key=lambda h: h[0]))
        signer = party_of(tx["signer"])
        events.append(Event(tx["type"], header["time"], ref, index, signer, tx["body"], own))
    return events


_MOVES = frozenset({"funds.transfer", "funds.disburse", "donation.refund"})
