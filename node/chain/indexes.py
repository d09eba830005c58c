"""Secondary indexes for the query API and the explorer, written with each block.

Lists ("a charity's donations", "unconfirmed ones", "disbursements by category") and
totals ("income per month", "raised by a campaign", the fund-flow diagram) must be
answered without scanning the chain, so each committed block also writes index entries
and running totals under `schema.IX_*`, in the same batch as the block (`Ledger.commit`):
an index never describes a block that is not there, nor misses one that is.

Only the block itself and immutable facts of the state (a donation's charity, amount,
height; a hop's source fund) are read, so replaying the blocks in order over the final
state rebuilds exactly the same indexes: that is how a store from before the indexes is
upgraded (`rebuild`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import decode_stored, encode
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.party_keys import party_id_for
from almoner.node.chain.schema import lstr, u64
from almoner.node.chain.state import (
    attestation_key,
    decode_record,
    donation_key,
    fund_key,
    get_donation,
)
from almoner.node.chain.store import KVReader, KVStore, Overlay
from almoner.node.chain.tx import CATEGORIES, GENERAL_FUND

log = logging.getLogger("almoner.indexes")

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
SEQ_SIZE = 12

FUND_TOTAL_KEYS = ("donated", "transferred_in", "transferred_out", "spent", "refunded")


def seq_of(height: int, index: int) -> bytes:
    """Inverted (height, index): bytewise order is newest first."""
    return u64(U64_MAX - height) + (U32_MAX - index).to_bytes(4, "big")


def seq_position(seq: bytes) -> tuple[int, int]:
    """(height, index) of a seq."""
    return U64_MAX - schema.from_u64(seq[:8]), U32_MAX - int.from_bytes(seq[8:12], "big")


def period_of(time_ms: int) -> str:
    """The calendar month (UTC) a block time falls in: totals are kept per month."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m")


def empty_period() -> dict[str, Any]:
    return {
        "donated": 0,
        "donations": 0,
        "transferred_in": 0,
        "transferred_out": 0,
        "spent": dict.fromkeys(CATEGORIES, 0),
        "refunded": 0,
        "unconfirmed": 0,
        "unconfirmed_count": 0,
    }


def height_time(reader: KVReader, height: int) -> int | None:
    raw = reader.get(schema.IX_HEIGHT_TIME + u64(height))
    return None if raw is None else schema.from_u64(raw)


class _Totals:
    """Running totals touched by one block, decoded once and written once at the end."""

    def __init__(self, state: Overlay) -> None:
        self._state = state
        self._cache: dict[bytes, Any] = {}

    def get(self, key: bytes, default: Callable[[], Any]) -> Any:
        if key not in self._cache:
            raw = self._state.get(key)
            self._cache[key] = default() if raw is None else decode_record(raw)
        return self._cache[key]

    def add(self, key: bytes, amount: int) -> None:
        self._cache[key] = self.get(key, int) + amount

    def flush(self) -> None:
        for key, value in self._cache.items():
            self._state.put(key, encode(value))


class _BlockIndexer:
    def __init__(self, state: Overlay, height: int, block_time: int) -> None:
        self.state = state
        self.height = height
        self.time = block_time
        self.period = period_of(block_time)
        self.totals = _Totals(state)

    # -- shared totals ---------------------------------------------------------------
    def fund_total(self, charity: bytes, currency: str, fund: str, name: str, amount: int) -> None:
        record = self.totals.get(
            schema.IX_FUND_TOTALS + fund_key(charity, currency, fund),
            lambda: dict.fromkeys(FUND_TOTAL_KEYS, 0),
        )
        record[name] += amount

    def charity_period(self, charity: bytes, currency: str, period: str) -> dict[str, Any]:
        key = schema.IX_CHARITY_PERIOD + charity + lstr(currency) + lstr(period)
        record: dict[str, Any] = self.totals.get(key, empty_period)
        return record

    def counts(self, charity: bytes) -> dict[str, int]:
        record: dict[str, int] = self.totals.get(
            schema.IX_CHARITY_COUNTS + charity, lambda: {"donations": 0, "confirmed": 0}
        )
        return record

    def flow(self, charity: bytes, currency: str, source: str, target: str, amount: int) -> None:
        if source != target:
            key = schema.IX_FLOW + charity + lstr(currency) + lstr(source) + lstr(target)
            self.totals.add(key, amount)

    # -- one handler per tx type that lists or totals something ------------------------
    def donation_record(self, signer: bytes, body: dict[str, Any], seq: bytes) -> None:
        charity, amount, currency = body["charity"], body["amount"], body["currency"]
        fund = GENERAL_FUND if body["campaign"] is None else body["campaign"]
        dkey = donation_key(signer, body["donation"])
        put = self.state.put
        put(schema.IX_DONATIONS + seq, dkey)
        put(schema.IX_DONATIONS_BY_CHARITY + charity + seq, dkey)
        put(schema.IX_DONATIONS_BY_FUND + charity + lstr(fund) + seq, dkey)
        put(schema.IX_DONATIONS_BY_PLATFORM + signer + seq, dkey)
        put(schema.IX_UNCONFIRMED + seq, dkey)
        put(schema.IX_UNCONFIRMED_BY_CHARITY + charity + seq, dkey)
        put(schema.IX_DONATION_IDS + lstr(body["donation"]) + signer, b"")
        self.fund_total(charity, currency, fund, "donated", amount)
        period = self.charity_period(charity, currency, self.period)
        period["donated"] += amount
        period["donations"] += 1
        period["unconfirmed"] += amount
        period["unconfirmed_count"] += 1
        self.counts(charity)["donations"] += 1
        self.flow(charity, currency, "platform:" + signer.hex(), "fund:" + fund, amount)

    def donation_confirm(self, signer: bytes, body: dict[str, Any], seq: bytes) -> None:
        donation = get_donation(self.state, body["platform"], body["donation"])
        if donation is None:
            raise RuntimeError("a committed confirmation names a missing donation")
        raw = self.state.get(schema.TX_INDEX + donation["tx_id"])
        if raw is None:
            raise RuntimeError("a committed donation has no tx location")
        location = decode_record(raw)
        recorded = seq_of(location["height"], location["index"])
        self.state.delete(schema.IX_UNCONFIRMED + recorded)
        self.state.delete(schema.IX_UNCONFIRMED_BY_CHARITY + donation["charity"] + recorded)
        dkey = donation_key(body["platform"], body["donation"])
        self.state.put(schema.IX_CONFIRMED + recorded, dkey)
        self.state.put(schema.IX_CONFIRMED_BY_CHARITY + donation["charity"] + recorded, dkey)
        when = height_time(self.state, donation["height"])
        period = self.charity_period(
            donation["charity"], donation["currency"], period_of(when or self.time)
        )
        period["unconfirmed"] -= donation["amount"]
        period["unconfirmed_count"] -= 1
        self.counts(donation["charity"])["confirmed"] += 1

    def funds_transfer(self, signer: bytes, body: dict[str, Any], seq: bytes) -> None:
        to, amount, currency = body["to"], body["amount"], body["currency"]
        self.fund_total(signer, currency, body["from_fund"], "transferred_out", amount)
        self.fund_total(to, currency, body["to_fund"], "transferred_in", amount)
        source = "fund:" + body["from_fund"]
        if to == signer:
            self.flow(signer, currency, source, "fund:" + body["to_fund"], amount)
            return
        self.charity_period(signer, currency, self.period)["transferred_out"] += amount
        self.charity_period(to, currency, self.period)["transferred_in"] += amount
        self.flow(signer, currency, source, "charity:" + to.hex(), amount)
        self.flow(to, currency, "charity:" + signer.hex(), "fund:" + body["to_fund"], amount)

    def funds_disburse(self, signer: bytes, body: dict[str, Any], seq: bytes, tid: bytes) -> None:
        record = {
            "charity": signer,
            **body,
            "tx_id": tid,
            "height": self.height,
            "time": self.time,
        }
        raw = encode(record)
        self.state.put(schema.IX_DISBURSEMENTS + signer + seq, raw)
        self.state.put(
            schema.IX_DISBURSEMENTS_BY_CATEGORY + signer + lstr(body["category"]) + seq, raw
        )
        amount, currency = body["amount"], body["currency"]
        self.fund_total(signer, currency, body["fund"], "spent", amount)
        self.charity_period(signer, currency, self.period)["spent"][body["category"]] += amount
        self.flow(signer, currency, "fund:" + body["fund"], "category:" + body["category"], amount)

    def donation_refund(self, signer: bytes, body: dict[str, Any], seq: bytes, tid: bytes) -> None:
        donation = get_donation(self.state, body["platform"], body["donation"])
        if donation is None:
            raise RuntimeError("a committed refund names a missing donation")
        currency = donation["currency"]
        prefix = schema.DONATION_HOP + donation_key(body["platform"], body["donation"])
        for _, raw in self.state.iterate(prefix):
            hop = decode_record(raw)
            if hop["tx_id"] == tid:
                fund = hop["from"]["fund"]
                self.fund_total(signer, currency, fund, "refunded", hop["amount"])
                self.flow(signer, currency, "fund:" + fund, "refund", hop["amount"])
        self.charity_period(signer, currency, self.period)["refunded"] += body["amount"]

    def party_register(self, body: dict[str, Any]) -> None:
        self.state.put(schema.IX_PARTIES_BY_ROLE + lstr(body["role"]) + body["party"], b"")

    def audit_attest(self, signer: bytes, body: dict[str, Any], seq: bytes) -> None:
        self.state.put(
            schema.IX_ATTESTATIONS + body["charity"] + seq,
            attestation_key(signer, body["attestation"]),
        )

    def tx(self, tx: dict[str, Any], tid: bytes, index: int) -> None:
        # The contract acts for the party a key signs for (keys rotate; ids do not).
        kind, signer, body = tx["type"], party_id_for(self.state, tx["signer"]), tx["body"]
        seq = seq_of(self.height, index)
        if kind == "donation.record":
            self.donation_record(signer, body, seq)
        elif kind == "donation.confirm":
            self.donation_confirm(signer, body, seq)
        elif kind == "funds.transfer":
            self.funds_transfer(signer, body, seq)
        elif kind == "funds.disburse":
            self.funds_disburse(signer, body, seq, tid)
        elif kind == "donation.refund":
            self.donation_refund(signer, body, seq, tid)
        elif kind == "party.register":
            self.party_register(body)
        elif kind == "audit.attest":
            self.audit_attest(signer, body, seq)


def index_block(state: Overlay, block: dict[str, Any], tx_ids: list[bytes]) -> None:
    """Write one executed block's index entries into its overlay (before the commit)."""
    header = block["header"]
    height, block_time = header["height"], header["time"]
    state.put(schema.IX_HEIGHT_TIME + u64(height), u64(block_time))
    state.put(schema.IX_TIME_HEIGHT + u64(block_time), u64(height))
    indexer = _BlockIndexer(state, height, block_time)
    for index, (tx, tid) in enumerate(zip(block["txs"], tx_ids, strict=True)):
        indexer.tx(tx, tid, index)
    indexer.totals.flush()


def index_genesis(state: Overlay, genesis: Genesis) -> None:
    """Genesis parties are listed by role like registered ones."""
    for party in genesis.parties:
        state.put(schema.IX_PARTIES_BY_ROLE + lstr(party.role) + party.pubkey, b"")


REBUILD_BATCH_BLOCKS = 200


def rebuild(
    store: KVStore,
    genesis: Genesis,
    head_height: int,
    tx_ids_of: Callable[[dict[str, Any]], list[bytes]],
) -> None:
    """Build every index of an older store from its blocks, logging progress.

    Any index entries left by an interrupted earlier run are deleted first, so running
    this again after a crash gives the same result. The caller bumps the schema version
    only after this returns: until then the store still opens as the older version and
    the rebuild starts over.
    """
    stale = [key for key, _ in store.iterate(schema.IX_PREFIX)]
    for start in range(0, len(stale), 10_000):
        store.write(dict.fromkeys(stale[start : start + 10_000]), sync=False)
    overlay = Overlay(store)
    index_genesis(overlay, genesis)
    last_log = time.monotonic()
    log.info("building the query indexes over %d blocks", head_height)
    for height in range(1, head_height + 1):
        raw = store.get(schema.BLOCK + u64(height))
        if raw is None:
            raise RuntimeError(f"block {height} is missing; cannot index the store")
        block = decode_stored(raw)
        index_block(overlay, block, tx_ids_of(block))
        if height % REBUILD_BATCH_BLOCKS == 0:
            store.write(overlay.changes(), sync=False)
            overlay = Overlay(store)
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            log.info(
                "indexed %d of %d blocks (%.0f%%)", height, head_height, 100 * height / head_height
            )
    store.write(overlay.changes(), sync=True)
    log.info("query indexes built over %d blocks", head_height)


def read_index_record(reader: KVReader, key: bytes) -> Any:
    raw = reader.get(key)
    return None if raw is None else decode_record(raw)
