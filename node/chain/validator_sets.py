"""Validator sets and protocol versions by height: what governance scheduled, as state.

The set in force at a height is the `VALIDATORS` entry with the greatest start height
≤ that height (`state.validators_at`). Genesis writes the entry for height 1; an adopted
change writes the entry for `adopted height + SET_CHANGE_DELAY`, so every height's set is
fixed before the height before it is committed, and a height in progress never sees its
own set change (docs/governance.md). Protocol versions work the same way under `UPGRADE`:
version 1 until the first adopted upgrade height.
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import encode
from almoner.node.chain.schema import u64
from almoner.node.chain.state import decode_record, read_record, write_record
from almoner.node.chain.store import KVReader, Overlay

# Like CometBFT's H+2: a change adopted in block H is in force from height H+2.
SET_CHANGE_DELAY = 2
# The set never drops below this by one change: 4 validators tolerate one fault.
MIN_VALIDATORS = 4
# An open proposal can be approved for this many heights after the one that proposed it.
PROPOSAL_TTL = 1000
# An upgrade must be adopted at least this many heights before the height it names.
UPGRADE_NOTICE = SET_CHANGE_DELAY
# Protocol versions this release can build and check. Version 2 adds `version` to headers.
BASE_VERSION = 1
SUPPORTED_VERSION = 2


def latest_set(reader: KVReader) -> tuple[int, list[bytes]]:
    """(start height, keys) of the newest scheduled set: changes compose onto it."""
    for key, raw in reader.iterate(schema.VALIDATORS, reverse=True):
        keys: list[bytes] = decode_record(raw)
        return schema.from_u64(key[len(schema.VALIDATORS) :]), keys
    return 1, []


def schedule_set(state: Overlay, from_height: int, keys: list[bytes]) -> None:
    state.put(schema.VALIDATORS + u64(from_height), encode(keys))


def set_history(reader: KVReader) -> list[dict[str, Any]]:
    """Every scheduled set, oldest first: `{"from_height", "validators"}`."""
    return [
        {"from_height": schema.from_u64(key[len(schema.VALIDATORS) :]), "validators": keys}
        for key, raw in reader.iterate(schema.VALIDATORS)
        for keys in [decode_record(raw)]
    ]


def validator_info(reader: KVReader, pubkey: bytes) -> dict[str, Any] | None:
    """name, org_id and where a governance-added validator came from (None for genesis)."""
    record: dict[str, Any] | None = read_record(reader, schema.VALIDATOR_INFO + pubkey)
    return record


def write_validator_info(state: Overlay, record: dict[str, Any]) -> None:
    write_record(state, schema.VALIDATOR_INFO + record["pubkey"], record)


# -- protocol versions ------------------------------------------------------------------


def version_at(reader: KVReader, height: int) -> int:
    """The protocol version blocks at `height` follow."""
    for key, raw in reader.iterate(schema.UPGRADE, reverse=True):
        if schema.from_u64(key[len(schema.UPGRADE) :]) <= height:
            version: int = decode_record(raw)["version"]
            return version
    return BASE_VERSION


def latest_upgrade(reader: KVReader) -> dict[str, Any] | None:
    for _, raw in reader.iterate(schema.UPGRADE, reverse=True):
        record: dict[str, Any] = decode_record(raw)
        return record
    return None


def upgrades(reader: KVReader) -> list[dict[str, Any]]:
    return [decode_record(raw) for _, raw in reader.iterate(schema.UPGRADE)]


def schedule_upgrade(state: Overlay, record: dict[str, Any]) -> None:
    write_record(state, schema.UPGRADE + u64(record["height"]), record)
