"""Every key prefix of the store, in one place, with the schema version.

A node refuses to open a store whose schema version or chain differs from its own
(see `node.ledger`), so a change to any layout below must bump SCHEMA_VERSION and be
listed under "Protocol-breaking" (on-disk) in CHANGELOG.md.

Layout (all integers are unsigned 8-byte big-endian so keys sort numerically; variable
strings are length-prefixed with one byte so no key is a prefix of another):
"""

from __future__ import annotations

import functools

SCHEMA_VERSION = 2
# Version 2 added the secondary indexes (i/…); a version-1 store is upgraded on open by
# building them from its blocks (`node.chain.indexes.rebuild`), nothing else changes.
UPGRADABLE_FROM = (1,)

# -- metadata ---------------------------------------------------------------------------
META_SCHEMA_VERSION = b"meta/schema_version"
META_CHAIN_ID = b"meta/chain_id"
META_GENESIS_HASH = b"meta/genesis_hash"
META_GENESIS = b"meta/genesis"  # canonical genesis map
META_HEAD = b"meta/head"  # canonical {height, block_hash} of the newest committed block
META_LOT_SEQ = b"meta/lot_seq"  # next ledger-wide lot sequence number
META_HOP_SEQ = b"meta/hop_seq"  # next ledger-wide trace-hop sequence number

# -- chain ------------------------------------------------------------------------------
BLOCK = b"b/"  # + height -> canonical block {"header", "txs"}
CERT = b"c/"  # + height -> canonical commit certificate
BLOCK_BY_HASH = b"bh/"  # + block_hash -> height
TX_INDEX = b"t/"  # + tx_id -> canonical {height, index, leaf_index}
HEIGHT_BY_LOG_SIZE = b"ls/"  # + log_size -> newest height whose header has that log_size

# -- Merkle log (RFC 9162) ----------------------------------------------------------------
MERKLE_SIZE = b"meta/log_size"  # number of leaves in the log
MERKLE_NODE = b"m/"  # + level(1 byte) + index -> hash of a perfect subtree of 2^level leaves

# -- contract state ---------------------------------------------------------------------
PARTY = b"s/p/"  # + pubkey -> party record
VALIDATORS = b"s/v/"  # + height from which the set is in force -> canonical list of pubkeys
BUSINESS_ID = b"s/id/"  # + signer + type + id -> tx_id that used it
CAMPAIGN = b"s/cp/"  # + charity + campaign -> campaign record
FUND_BALANCE = b"s/fb/"  # + charity + currency + fund -> balance
FUND_LOT = b"s/fl/"  # + charity + currency + fund + lot_seq -> lot record (FIFO by seq)
FUND_HEAD = b"s/fh/"  # + charity + currency + fund -> lowest lot_seq that may still be live
DONATION = b"s/d/"  # + platform + donation id -> donation record
DONATION_LOT = b"s/dl/"  # + platform + donation id + lot_seq -> where that lot sits
DONATION_HOP = b"s/dh/"  # + platform + donation id + hop_seq -> one trace hop
ATTESTATION = b"s/at/"  # + regulator + attestation id -> attestation record
EVIDENCE = b"s/ev/"  # + culprit + height + round + kind -> committed evidence record

# -- governance (docs/governance.md; new prefixes only: a v1 store has none of them) ------
PROPOSAL = b"s/gp/"  # + proposer + lstr(id) -> validator or upgrade proposal record
RECOVERY = b"s/gr/"  # + regulator party + lstr(id) -> emergency key-rotation proposal
VALIDATOR_INFO = b"s/vi/"  # + pubkey -> name/org/when of a validator added by governance
UPGRADE = b"s/up/"  # + u64(height) -> the protocol version adopted from that height on
KEY_OWNER = b"s/ko/"  # + signing key -> {party, from_height, until_height} once rotated
PARTY_KEY = b"s/pk/"  # + party id -> the party's current signing key (after a rotation)
PARTY_EVENT = b"s/pe/"  # + party id + u64(height) + u64(index) -> one key/status change

# -- secondary indexes (query API and explorer; node.chain.indexes) ----------------------
# Written by `Ledger.commit` in the block's own batch. `seq` is the inverted position of a
# tx, u64(2^64-1-height) + u32(2^32-1-index), so a forward scan lists newest first.
# Derived data, not replicated state: rebuilt from the blocks when missing.
IX_PREFIX = b"i/"
IX_HEIGHT_TIME = b"i/ht/"  # + height -> u64 block time (ms)
IX_TIME_HEIGHT = b"i/th/"  # + u64 block time -> height (times strictly increase)
IX_DONATIONS = b"i/d/"  # + seq -> donation key (platform + lstr(id))
IX_DONATIONS_BY_CHARITY = b"i/dc/"  # + charity + seq -> donation key
IX_DONATIONS_BY_FUND = b"i/df/"  # + charity + lstr(fund) + seq -> donation key
IX_DONATIONS_BY_PLATFORM = b"i/dp/"  # + platform + seq -> donation key
IX_UNCONFIRMED = b"i/du/"  # + seq -> donation key, deleted on confirm
IX_UNCONFIRMED_BY_CHARITY = b"i/dv/"  # + charity + seq -> donation key, deleted on confirm
IX_CONFIRMED = b"i/dy/"  # + seq (of the donation) -> donation key, written on confirm
IX_CONFIRMED_BY_CHARITY = b"i/dz/"  # + charity + seq -> donation key, written on confirm
IX_DONATION_IDS = b"i/di/"  # + lstr(donation id) + platform -> b"" (search by id)
IX_DISBURSEMENTS = b"i/ds/"  # + charity + seq -> disbursement record
IX_DISBURSEMENTS_BY_CATEGORY = b"i/dk/"  # + charity + lstr(category) + seq -> record
IX_PARTIES_BY_ROLE = b"i/pr/"  # + lstr(role) + pubkey -> b""
IX_ATTESTATIONS = b"i/at/"  # + charity + seq -> attestation key
IX_FUND_TOTALS = b"i/ft/"  # + fund key -> {donated, transferred_in, transferred_out, ...}
IX_CHARITY_PERIOD = b"i/cp/"  # + charity + lstr(currency) + lstr("YYYY-MM") -> totals
IX_CHARITY_COUNTS = b"i/cc/"  # + charity -> {donations, confirmed}
IX_FLOW = b"i/fl/"  # + charity + lstr(currency) + lstr(source) + lstr(target) -> amount

# -- node-local (not part of the replicated state) --------------------------------------
# A validator's consensus persisted state (own votes, lock); the bytes predate the name.
CONSENSUS_STATE = b"x/wal/"


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def from_u64(data: bytes) -> int:
    return int.from_bytes(data, "big")


@functools.lru_cache(maxsize=1 << 16)
def lstr(text: str) -> bytes:
    """Length-prefixed UTF-8 (business ids are ≤64 ASCII chars, fund names likewise).

    Cached: every tx builds several keys from the same few fund and currency names."""
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("key component longer than 255 bytes")
    return bytes([len(raw)]) + raw
