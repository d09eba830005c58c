"""Fund lineage: FIFO lots per fund, and the per-donation trace written as money moves.

"Where did my donation go" must be answered from the state without replaying the chain,
and identically by every node. So each fund keeps its lots keyed by a ledger-wide lot
sequence number (FIFO order is key order), each donation keeps an index of where its lots
sit (DONATION_LOT), and every consumption is written, at apply time, as a trace hop under
the donation (DONATION_HOP, keyed by a ledger-wide hop sequence number). A trace is then
two prefix scans.

Balances (FUND_BALANCE) are only ever changed here, together with the lots, so a fund's
balance is always the sum of its lots' remainders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import encode
from almoner.node.chain.schema import u64
from almoner.node.chain.state import (
    decode_record,
    donation_key,
    fund_balance,
    fund_key,
    get_donation,
    read_record,
    take_seq,
    write_record,
)
from almoner.node.chain.store import KVReader, Overlay


@dataclass(frozen=True)
class Fund:
    """A fund is (charity, currency, name): `general` holds any currency, one queue each."""

    charity: bytes
    currency: str
    name: str

    @property
    def key(self) -> bytes:
        return fund_key(self.charity, self.currency, self.name)


@dataclass(frozen=True)
class Piece:
    """Part of one lot taken by one consumption."""

    platform: bytes
    donation: str
    amount: int
    source: Fund


def _balance_key(fund: Fund) -> bytes:
    return schema.FUND_BALANCE + fund.key


def _adjust_balance(state: Overlay, fund: Fund, delta: int) -> None:
    balance = fund_balance(state, fund.charity, fund.currency, fund.name) + delta
    if balance < 0:
        # The contract checks funds before consuming; reaching this is a bug, never input.
        raise RuntimeError(f"fund {fund} would go negative")
    write_record(state, _balance_key(fund), balance)


def ensure_fund(state: Overlay, fund: Fund) -> None:
    """Make a fund visible in the balances (at 0) from the moment it exists."""
    if state.get(_balance_key(fund)) is None:
        write_record(state, _balance_key(fund), 0)


def _append_lot(state: Overlay, fund: Fund, platform: bytes, donation: str, amount: int) -> None:
    seq = take_seq(state, schema.META_LOT_SEQ)
    write_record(
        state,
        schema.FUND_LOT + fund.key + u64(seq),
        {"platform": platform, "donation": donation, "remaining": amount},
    )
    write_record(
        state,
        schema.DONATION_LOT + donation_key(platform, donation) + u64(seq),
        {"charity": fund.charity, "currency": fund.currency, "fund": fund.name},
    )
    _adjust_balance(state, fund, amount)


def open_lot(state: Overlay, fund: Fund, platform: bytes, donation: str, amount: int) -> None:
    """A recorded donation becomes the newest lot of the fund it credits."""
    _append_lot(state, fund, platform, donation, amount)


def _take(state: Overlay, fund: Fund, seq: int, lot: dict[str, Any], amount: int) -> Piece:
    """Take `amount` from one lot; an emptied lot disappears from both indexes."""
    lot_key = schema.FUND_LOT + fund.key + u64(seq)
    remaining = lot["remaining"] - amount
    if remaining == 0:
        state.delete(lot_key)
        state.delete(
            schema.DONATION_LOT + donation_key(lot["platform"], lot["donation"]) + u64(seq)
        )
    else:
        write_record(state, lot_key, {**lot, "remaining": remaining})
    _adjust_balance(state, fund, -amount)
    return Piece(lot["platform"], lot["donation"], amount, fund)


def consume_fifo(state: Overlay, fund: Fund, amount: int) -> list[Piece]:
    """Take `amount` from the head of the fund's queue (the caller checked the balance).

    The scan starts at the fund's head cursor (every lot below it is gone), not at the
    start of the queue: within a block the lots emptied by earlier txs are still in the
    store under the overlay's deletions, and walking past them again for every transfer
    out of a busy fund made a block's cost grow with the square of its size.
    """
    prefix = schema.FUND_LOT + fund.key
    head_key = schema.FUND_HEAD + fund.key
    head_raw = state.get(head_key)
    head = 0 if head_raw is None else schema.from_u64(head_raw)
    lots = []
    need = amount
    for key, raw in state.iterate(prefix, start=prefix + u64(head)):
        if need == 0:
            break
        lot = decode_record(raw)
        take = min(need, lot["remaining"])
        lots.append((schema.from_u64(key[len(prefix) :]), lot, take))
        need -= take
    if need:
        raise RuntimeError(f"fund {fund} holds less than {amount} in lots")
    if lots:
        last_seq, last_lot, last_take = lots[-1]
        # Every lot taken before the last was emptied; the last one may still hold money.
        state.put(head_key, u64(last_seq + 1 if last_take == last_lot["remaining"] else last_seq))
    return [_take(state, fund, seq, lot, take) for seq, lot, take in lots]


def _donation_lots(
    reader: KVReader, platform: bytes, donation: str
) -> list[tuple[int, Fund, dict[str, Any]]]:
    """The donation's live lots in increasing sequence number, with where each sits."""
    prefix = schema.DONATION_LOT + donation_key(platform, donation)
    result = []
    for key, raw in reader.iterate(prefix):
        seq = schema.from_u64(key[len(prefix) :])
        where = decode_record(raw)
        fund = Fund(where["charity"], where["currency"], where["fund"])
        lot = read_record(reader, schema.FUND_LOT + fund.key + u64(seq))
        if lot is None:
            raise RuntimeError(f"lineage index points at a missing lot {seq}")
        result.append((seq, fund, lot))
    return result


def unspent_at(reader: KVReader, charity: bytes, platform: bytes, donation: str) -> int:
    """What of a donation still sits in `charity`'s funds: the most it can refund."""
    return sum(
        lot["remaining"]
        for _, fund, lot in _donation_lots(reader, platform, donation)
        if fund.charity == charity
    )


def consume_donation(
    state: Overlay, charity: bytes, platform: bytes, donation: str, amount: int
) -> list[Piece]:
    """A refund: only this donation's lots in `charity`'s funds, by increasing sequence."""
    pieces = []
    need = amount
    for seq, fund, lot in _donation_lots(state, platform, donation):
        if need == 0:
            break
        if fund.charity != charity:
            continue
        take = min(need, lot["remaining"])
        pieces.append(_take(state, fund, seq, lot, take))
        need -= take
    if need:
        raise RuntimeError(f"donation {donation!r} holds less than {amount} at the charity")
    return pieces


def append_pieces(state: Overlay, fund: Fund, pieces: list[Piece]) -> None:
    """A transfer's consumed pieces join the destination's tail, each with a new sequence."""
    for piece in pieces:
        _append_lot(state, fund, piece.platform, piece.donation, piece.amount)


def record_hops(state: Overlay, pieces: list[Piece], hop: dict[str, Any], to: Fund | None) -> None:
    """One hop per (donation, source fund) of this tx, pieces merged, in first-taken order.

    `hop` carries the fields common to the tx (kind, tx_id, height, payee, purpose,
    category, evidence); amount, from and to are filled in here.
    """
    merged: dict[tuple[bytes, str, Fund], int] = {}
    for piece in pieces:
        group = (piece.platform, piece.donation, piece.source)
        merged[group] = merged.get(group, 0) + piece.amount
    for (platform, donation, source), amount in merged.items():
        seq = take_seq(state, schema.META_HOP_SEQ)
        record = {
            **hop,
            "amount": amount,
            "from": {"charity": source.charity, "fund": source.name},
            "to": None if to is None else {"charity": to.charity, "fund": to.name},
        }
        state.put(schema.DONATION_HOP + donation_key(platform, donation) + u64(seq), encode(record))


def trace(
    reader: KVReader,
    platform: bytes,
    donation_id: str,
    hops_from: int = 0,
    hops_limit: int | None = None,
) -> dict[str, Any] | None:
    """The lineage of one donation (docs/spec/03), or None if it was never recorded.

    `hops_from`/`hops_limit` select a page of the hops (a busy donation can have
    thousands); only that page is decoded. `hops_total` counts them all.
    """
    donation = get_donation(reader, platform, donation_id)
    if donation is None:
        return None
    view = {
        k: donation[k]
        for k in ("platform", "donation", "charity", "amount", "currency", "tx_id", "height")
    }
    view["confirmed"] = donation["confirmed"]
    hops: list[dict[str, Any]] = []
    total = 0
    for _, raw in reader.iterate(schema.DONATION_HOP + donation_key(platform, donation_id)):
        if total >= hops_from and (hops_limit is None or len(hops) < hops_limit):
            hops.append(decode_record(raw))
        total += 1
    held: dict[tuple[bytes, str], int] = {}
    for _, fund, lot in _donation_lots(reader, platform, donation_id):
        where = (fund.charity, fund.name)
        held[where] = held.get(where, 0) + lot["remaining"]
    return {
        "donation": view,
        "hops": hops,
        "hops_total": total,
        "held": [
            {"charity": charity, "fund": fund, "amount": amount}
            for (charity, fund), amount in sorted(
                held.items(), key=lambda item: (item[0][0], item[0][1].encode("utf-8"))
            )
            if amount
        ],
    }
