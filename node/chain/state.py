"""Typed reads (and the few record writes) of the replicated contract state.

The contract, the lineage and the HTTP API all read the same records; keeping their key
layout and decoding here means a layout change is made once. Every record is a canonical
msgpack map (`node.codec.encode`), so two nodes that applied the same txs hold the same
bytes. Key layout under the prefixes of `node.schema`:

    PARTY        + pubkey                                  -> party record
    VALIDATORS   + u64(from_height)                        -> [pubkey, …] in genesis order
    BUSINESS_ID  + signer + lstr(type) + lstr(id)          -> tx_id that used the id
    CAMPAIGN     + charity + lstr(campaign)                -> campaign record
    FUND_BALANCE + charity + lstr(currency) + lstr(fund)   -> int balance
    FUND_LOT     + <fund> + u64(lot_seq)                   -> lot record (see node.lineage)
    DONATION     + platform + lstr(donation)               -> donation record
    DONATION_LOT + <donation> + u64(lot_seq)               -> where that lot sits
    DONATION_HOP + <donation> + u64(hop_seq)               -> one trace hop
    ATTESTATION  + regulator + lstr(attestation)           -> attestation record
    EVIDENCE     + culprit + u64(height) + u64(round) + lstr(kind) -> evidence record
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import decode_stored, encode
from almoner.node.chain.schema import lstr, u64
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.chain.tx import GENERAL_FUND

# State records are written only by this code, so a record that does not decode is
# corruption, not bad input: they skip the canonical re-encoding check.


def decode_record(raw: bytes) -> Any:
    return decode_stored(raw)


def read_record(reader: KVReader, key: bytes) -> Any:
    raw = reader.get(key)
    return None if raw is None else decode_record(raw)


def write_record(state: Overlay, key: bytes, value: Any) -> None:
    state.put(key, encode(value))


# -- keys -------------------------------------------------------------------------------


def party_key(pubkey: bytes) -> bytes:
    return schema.PARTY + pubkey


def campaign_key(charity: bytes, campaign: str) -> bytes:
    return schema.CAMPAIGN + charity + lstr(campaign)


def fund_key(charity: bytes, currency: str, fund: str) -> bytes:
    """The identity of a fund: (charity, currency, fund name); see docs/contract.md."""
    return charity + lstr(currency) + lstr(fund)


def donation_key(platform: bytes, donation_id: str) -> bytes:
    return platform + lstr(donation_id)


def business_id_key(signer: bytes, tx_type: str, bid: str) -> bytes:
    return schema.BUSINESS_ID + signer + lstr(tx_type) + lstr(bid)


def evidence_key(culprit: bytes, height: int, round_: int, kind: str) -> bytes:
    return schema.EVIDENCE + culprit + u64(height) + u64(round_) + lstr(kind)


def attestation_key(regulator: bytes, attestation_id: str) -> bytes:
    return schema.ATTESTATION + regulator + lstr(attestation_id)


# -- reads ------------------------------------------------------------------------------


def get_party(reader: KVReader, pubkey: bytes) -> dict[str, Any] | None:
    """Registry entry: pubkey, role, name, org_id, suspended, registered_height,
    registered_tx (None for genesis parties), suspended_height, suspended_tx,
    suspend_reason."""
    record: dict[str, Any] | None = read_record(reader, party_key(pubkey))
    return record


def get_campaign(reader: KVReader, charity: bytes, campaign: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = read_record(reader, campaign_key(charity, campaign))
    return record


def fund_exists(reader: KVReader, charity: bytes, fund: str) -> bool:
    """`general` exists for every charity; a campaign fund once it was opened."""
    return fund == GENERAL_FUND or get_campaign(reader, charity, fund) is not None


def fund_balance(reader: KVReader, charity: bytes, currency: str, fund: str) -> int:
    value = read_record(reader, schema.FUND_BALANCE + fund_key(charity, currency, fund))
    return 0 if value is None else int(value)


def fund_balances(reader: KVReader, charity: bytes) -> list[dict[str, Any]]:
    """Every fund of a charity that was opened or ever credited, by (currency, fund name)."""
    result = []
    prefix = schema.FUND_BALANCE + charity
    for key, raw in reader.iterate(prefix):
        rest = key[len(prefix) :]
        currency = rest[1 : 1 + rest[0]].decode("utf-8")
        rest = rest[1 + rest[0] :]
        fund = rest[1 : 1 + rest[0]].decode("utf-8")
        result.append(
            {
                "fund": fund,
                "currency": currency,
                "balance": decode_record(raw),
                "restricted": fund != GENERAL_FUND,
            }
        )
    return result


def validators_at(reader: KVReader, height: int) -> list[bytes]:
    """The set in force at `height`: the entry with the greatest start height ≤ height."""
    for key, raw in reader.iterate(schema.VALIDATORS, reverse=True):
        if schema.from_u64(key[len(schema.VALIDATORS) :]) <= height:
            keys: list[bytes] = decode_record(raw)
            return keys
    return []


def get_donation(reader: KVReader, platform: bytes, donation_id: str) -> dict[str, Any] | None:
    """platform, donation, donor, charity, campaign, fund, amount, currency, received_at,
    tx_id, height, confirmed, confirm_tx."""
    record: dict[str, Any] | None = read_record(
        reader, schema.DONATION + donation_key(platform, donation_id)
    )
    return record


def business_id_used(reader: KVReader, signer: bytes, tx_type: str, bid: str) -> bool:
    return reader.get(business_id_key(signer, tx_type, bid)) is not None


def get_attestation(
    reader: KVReader, regulator: bytes, attestation_id: str
) -> dict[str, Any] | None:
    record: dict[str, Any] | None = read_record(reader, attestation_key(regulator, attestation_id))
    return record


def list_evidence(reader: KVReader) -> list[dict[str, Any]]:
    """Committed evidence, ordered by (culprit, height, round, kind)."""
    return [decode_record(raw) for _, raw in reader.iterate(schema.EVIDENCE)]


# -- counters ---------------------------------------------------------------------------


def take_seq(state: Overlay, counter: bytes) -> int:
    """Hand out the next value of a ledger-wide counter (lot or hop sequence numbers)."""
    current = read_record(state, counter)
    value = 0 if current is None else int(current)
    write_record(state, counter, value + 1)
    return value
