"""The chain on disk: open a store for one genesis, execute blocks, commit them atomically.

A block is executed into an `Overlay` (header checks, every tx through the contract, the
Merkle log appended, the roots compared with the header) and committed with ONE synced
`KVStore.write`, together with its certificate, indexes and the new head. A crash leaves
the previous head or the new one, never a mixture. The same code serves the proposer
(`build_block`), a validator checking a proposal (`execute_block`), catch-up, and the
independent verifier, so they cannot disagree on what a valid block is.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.codec import H, decode, decode_stored, encode
from almoner.node.chain.contract.engine import check_and_apply, seed_genesis
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.governance_cache import GovernanceCache
from almoner.node.chain.indexes import index_block, index_genesis, rebuild
from almoner.node.chain.merkle import root_of
from almoner.node.chain.merkle_log import MerkleLog, RangeCache
from almoner.node.chain.signing import block_hash, tx_id
from almoner.node.chain.store import KVReader, KVStore, Overlay
from almoner.node.chain.validator_sets import BASE_VERSION, SUPPORTED_VERSION
from almoner.node.errors import AlmonerError, ProtocolError, StoreError

HEADER_KEYS = frozenset(
    {
        "chain",
        "height",
        "time",
        "prev",
        "proposer",
        "tx_count",
        "txs_root",
        "log_size",
        "log_root",
        "validators_hash",
    }
)
# From the first upgrade height on, every header also names its protocol version.
VERSIONED_HEADER_KEYS = HEADER_KEYS | {"version"}


class BlockError(AlmonerError):
    """A block breaks a rule; `rule` is a docs/spec/03 code or one of the §5 block rules."""

    def __init__(self, rule: str, message: str, tx_index: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.tx_index = tx_index


class UpgradeRequired(BlockError):
    """The chain adopted a protocol version this node does not run (or was told not to)."""

    def __init__(self, height: int, version: int, supported: int) -> None:
        super().__init__(
            "unsupported_version",
            f"the chain upgrades to protocol version {version} at height {height}; this node "
            f"runs versions up to {supported}. Stopped before height {height}: restart on a "
            f"release that supports version {version} (docs/operators.md, upgrades)",
        )
        self.height = height
        self.version = version


@dataclass(frozen=True)
class Head:
    """The newest committed block (height 0: the genesis, with the empty log)."""

    height: int
    block_hash: bytes
    time: int
    log_size: int
    log_root: bytes


@dataclass
class ExecutedBlock:
    """A block whose effects sit in `overlay`, ready for `Ledger.commit`."""

    block: dict[str, Any]
    block_hash: bytes
    tx_ids: list[bytes]
    overlay: Overlay
    rejected: list[tuple[bytes, ProtocolError]] = field(default_factory=list)

    @property
    def height(self) -> int:
        height: int = self.block["header"]["height"]
        return height


def validators_hash(keys: Iterable[bytes]) -> bytes:
    return H(encode(sorted(keys)))


class Ledger:
    """One chain in one store. Not thread-safe: the node drives it from one task."""

    def __init__(
        self, store: KVStore, genesis: Genesis, *, max_version: int = SUPPORTED_VERSION
    ) -> None:
        self.store = store
        self.genesis = genesis
        # The newest protocol version this node will build and accept blocks for; an
        # operator may pin it lower to rehearse an upgrade (docs/operators.md).
        self.max_version = min(max_version, SUPPORTED_VERSION)
        self.chain_id = genesis.chain_id
        self._open()
        self.head = self._load_head()
        self._governed = GovernanceCache(store)  # validator sets and versions by height
        self._ranges = RangeCache()  # subtree hashes of the committed log, for proofs

    # -- opening --------------------------------------------------------------------
    def _open(self) -> None:
        version = self.store.get(schema.META_SCHEMA_VERSION)
        if version is None:
            overlay = Overlay(self.store)
            overlay.put(schema.META_SCHEMA_VERSION, schema.u64(schema.SCHEMA_VERSION))
            overlay.put(schema.META_CHAIN_ID, self.chain_id.encode())
            overlay.put(schema.META_GENESIS_HASH, self.genesis.hash)
            overlay.put(schema.META_GENESIS, encode(self.genesis.to_protocol()))
            seed_genesis(overlay, self.genesis)
            index_genesis(overlay, self.genesis)
            self.store.write(overlay.changes(), sync=True)
            return
        if schema.from_u64(version) in schema.UPGRADABLE_FROM:
            self._check_identity()
            self._upgrade(schema.from_u64(version))
            return
        if schema.from_u64(version) != schema.SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {schema.from_u64(version)}, this node needs "
                f"{schema.SCHEMA_VERSION}; migrate or re-sync the data directory"
            )
        self._check_identity()

    def _upgrade(self, version: int) -> None:
        """A store of an older schema gets the secondary indexes built from its blocks."""
        raw = self.store.get(schema.META_HEAD)
        head = 0 if raw is None else int(_decode_stored(raw, "head")["height"])
        rebuild(self.store, self.genesis, head, lambda block: [tx_id(tx) for tx in block["txs"]])
        self.store.write({schema.META_SCHEMA_VERSION: schema.u64(schema.SCHEMA_VERSION)}, sync=True)

    def _check_identity(self) -> None:
        stored_chain = (self.store.get(schema.META_CHAIN_ID) or b"").decode(errors="replace")
        if stored_chain != self.chain_id:
            raise StoreError(
                f"the store belongs to chain {stored_chain!r}, not {self.chain_id!r}; "
                "point the node at the right data directory or genesis"
            )
        if self.store.get(schema.META_GENESIS_HASH) != self.genesis.hash:
            raise StoreError(
                f"the store was created from a different genesis of chain {self.chain_id!r} "
                f"(this genesis hash is {self.genesis.hash.hex()})"
            )

    def _load_head(self) -> Head:
        raw = self.store.get(schema.META_HEAD)
        if raw is None:
            return Head(0, self.genesis.hash, self.genesis.genesis_time, 0, H(b""))
        head = decode(raw)
        block = self.block_at(head["height"])
        if block is None:
            raise StoreError(f"the store is corrupt: head block {head['height']} is missing")
        header = block["header"]
        return Head(
            header["height"],
            head["block_hash"],
            header["time"],
            header["log_size"],
            header["log_root"],
        )

    # -- reads ----------------------------------------------------------------------
    def block_at(self, height: int) -> dict[str, Any] | None:
        raw = self.store.get(schema.BLOCK + schema.u64(height))
        return None if raw is None else _decode_stored(raw, f"block {height}")

    def certificate_at(self, height: int) -> dict[str, Any] | None:
        raw = self.store.get(schema.CERT + schema.u64(height))
        return None if raw is None else _decode_stored(raw, f"certificate {height}")

    def block_hash_at(self, height: int) -> bytes | None:
        """The hash of committed block `height`, from its certificate (a few hundred bytes)
        rather than by decoding the block: a receipt needs it for every tx it answers."""
        head = self.head
        if height == head.height:
            return head.block_hash
        cert = self.certificate_at(height)
        if cert is None:
            return None
        value = cert.get("block_hash")
        return value if isinstance(value, bytes) else None

    def height_of(self, block_hash_: bytes) -> int | None:
        raw = self.store.get(schema.BLOCK_BY_HASH + block_hash_)
        return None if raw is None else schema.from_u64(raw)

    def height_at_log_size(self, size: int) -> int | None:
        raw = self.store.get(schema.HEIGHT_BY_LOG_SIZE + schema.u64(size))
        return None if raw is None else schema.from_u64(raw)

    def tx_location(self, tx_id: bytes) -> dict[str, int] | None:
        """`{"height", "index", "leaf_index"}` of a committed tx."""
        raw = self.store.get(schema.TX_INDEX + tx_id)
        return None if raw is None else _decode_stored(raw, "tx index")

    def log(self) -> MerkleLog:
        """The committed log, for reading and proofs only (its subtree hashes are cached:
        appending goes through a block's own overlay, never through this)."""
        return MerkleLog(Overlay(self.store), self._ranges)

    def validators(self, height: int) -> list[bytes]:
        return self._governed.validators(height)

    def version(self, height: int) -> int:
        """The protocol version blocks at `height` follow (1 until an adopted upgrade)."""
        return self._governed.version(height)

    def require_supported(self, height: int) -> None:
        """Raise UpgradeRequired when `height` follows a version this node does not run."""
        version = self.version(height)
        if version > self.max_version:
            raise UpgradeRequired(height, version, self.max_version)

    def iter_blocks(self, start: int = 1) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for height in range(start, self.head.height + 1):
            block, cert = self.block_at(height), self.certificate_at(height)
            if block is None or cert is None:
                raise StoreError(f"the store is corrupt: block or certificate {height} missing")
            yield block, cert

    # -- building and executing -----------------------------------------------------
    def build_block(
        self,
        candidates: Iterable[bytes],
        *,
        time_ms: int,
        proposer: bytes,
        max_txs: int,
        max_bytes: int,
        verified: Container[bytes] = frozenset(),
    ) -> ExecutedBlock:
        """Take candidate txs in order, keep those valid against the head, and build a block.

        `verified` holds tx ids whose signature the caller already checked (the mempool's
        cache), so each signature is verified once. Rejected txs are returned so the caller
        can drop them from its pool.
        """
        builder = self.builder(max_txs=max_txs, max_bytes=max_bytes)
        builder.add(candidates, verified)
        return builder.finish(time_ms=time_ms, proposer=proposer)

    def builder(
        self, *, max_txs: int, max_bytes: int, on: ExecutedBlock | None = None
    ) -> BlockBuilder:
        """An empty block for the height after the head, or, `on` an executed block that
        extends the head but is not committed yet, for the height after that one."""
        if on is None:
            return BlockBuilder(self, self.head, self.store, max_txs, max_bytes)
        header = on.block["header"]
        if header["prev"] != self.head.block_hash or on.height != self.head.height + 1:
            raise BlockError("bad_link", f"block {on.height} does not extend the head")
        parent = Head(
            on.height, on.block_hash, header["time"], header["log_size"], header["log_root"]
        )
        # A private copy: the commit of `on` adds its indexes to on.overlay meanwhile.
        base = on.overlay.snapshot(self.store)
        return BlockBuilder(self, parent, base, max_txs, max_bytes, skip=on.tx_ids, ahead=True)

    def header_for(
        self, overlay: Overlay, height: int, time_ms: int, proposer: bytes, tx_ids: list[bytes]
    ) -> dict[str, Any]:
        """The header of the block after the head whose txs' effects are in `overlay`
        (appends their ids to the overlay's Merkle log)."""
        log = MerkleLog(overlay)
        log.append(tx_ids)
        header = {
            "chain": self.chain_id,
            "height": height,
            "time": time_ms,
            "prev": self.head.block_hash,
            "proposer": proposer,
            "tx_count": len(tx_ids),
            "txs_root": root_of(tx_ids),
            "log_size": log.size(),
            "log_root": log.root(),
            "validators_hash": validators_hash(self.validators(height)),
        }
        version = self.version(height)
        if version > BASE_VERSION:
            header["version"] = version
        return header

    def execute_block(
        self,
        block: Any,
        *,
        verified: Container[bytes] = frozenset(),
        check_limits: bool = True,
    ) -> ExecutedBlock:
        """Check a block against the head in docs/spec/08-verify.md order; raise BlockError."""
        header = self.check_header(block)
        height = header["height"]
        overlay = Overlay(self.store)
        tx_ids: list[bytes] = []
        params = self.genesis.params
        if check_limits and len(block["txs"]) > params["max_block_txs"]:
            raise BlockError("invalid_field", f"block {height} holds more than max_block_txs")
        total = 0
        for index, tx in enumerate(block["txs"]):
            try:
                raw = encode(tx)
            except ProtocolError as exc:
                raise BlockError(exc.code, exc.message, index) from exc
            total += len(raw)
            try:
                _, tid = check_and_apply(
                    overlay,
                    raw,
                    height,
                    index,
                    self.chain_id,
                    verify_signature=H(raw) not in verified,
                    decoded=tx if isinstance(tx, dict) else None,
                )
            except ProtocolError as exc:
                raise BlockError(exc.code, f"tx {index}: {exc.message}", index) from exc
            index_tx(overlay, tid, height, index, self.head.log_size)
            tx_ids.append(tid)
        if check_limits and total > params["max_block_bytes"]:
            raise BlockError("invalid_field", f"block {height} is over max_block_bytes")
        if header["tx_count"] != len(tx_ids) or header["txs_root"] != root_of(tx_ids):
            raise BlockError("bad_txs_root", f"block {height}: tx_count or txs_root mismatch")
        log = MerkleLog(overlay)
        log.append(tx_ids)
        if header["log_size"] != log.size() or header["log_root"] != log.root():
            raise BlockError("bad_log_root", f"block {height}: log_size or log_root mismatch")
        return ExecutedBlock(block, block_hash(header), tx_ids, overlay)

    def check_header(self, block: Any) -> dict[str, Any]:
        """Header keys, link, height, time and validators_hash against the current head."""
        if not isinstance(block, dict) or set(block) != {"header", "txs"}:
            raise BlockError("invalid_field", "a block is a map with exactly header and txs")
        header, txs = block["header"], block["txs"]
        if not isinstance(txs, list):
            raise BlockError("invalid_field", "block txs must be a list")
        height = self.head.height + 1
        self.require_supported(height)
        version = self.version(height)
        keys = HEADER_KEYS if version == BASE_VERSION else VERSIONED_HEADER_KEYS
        if not isinstance(header, dict) or set(header) != keys:
            if isinstance(header, dict) and set(header) ^ keys == {"version"}:
                raise BlockError(
                    "bad_version", f"block {height} must follow protocol version {version}"
                )
            raise BlockError("invalid_field", "the header does not have exactly the §3 keys")
        if header.get("version", BASE_VERSION) != version:
            raise BlockError(
                "bad_version",
                f"block {height} names protocol version {header['version']}, not {version}",
            )
        ints = ("height", "time", "tx_count", "log_size")
        bins = ("prev", "proposer", "txs_root", "log_root", "validators_hash")
        if not isinstance(header["chain"], str) or any(
            isinstance(header[k], bool) or not isinstance(header[k], int) for k in ints
        ):
            raise BlockError("invalid_field", "header field of the wrong type")
        if any(not isinstance(header[k], bytes) or len(header[k]) != 32 for k in bins):
            raise BlockError("invalid_field", "header hash fields must be 32 bytes")
        if header["chain"] != self.chain_id:
            raise BlockError("wrong_chain", f"header is for chain {header['chain']!r}")
        if header["prev"] != self.head.block_hash:
            raise BlockError("bad_link", f"block {header['height']} does not link to the head")
        if header["height"] != height:
            raise BlockError("bad_height", f"expected height {height}, got {header['height']}")
        if header["time"] <= self.head.time:
            raise BlockError("bad_time", f"block {height} time is not after the previous one")
        validators = self.validators(height)
        if header["validators_hash"] != validators_hash(validators):
            raise BlockError("bad_validators_hash", f"block {height}: wrong validators_hash")
        if header["proposer"] not in validators:
            raise BlockError("invalid_field", f"block {height}: proposer is not a validator")
        return header

    # -- committing -----------------------------------------------------------------
    def commit(
        self,
        executed: ExecutedBlock,
        certificate: dict[str, Any],
        also: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Write the block, its certificate, indexes, state and head in one synced batch.

        The certificate must already have been checked by the caller (consensus produced
        it, or catch-up verified it against the validator set). `also` rides in the same
        batch: the consensus driver's state save, so one fsync makes both durable.
        """
        height = executed.height
        if height != self.head.height + 1 or executed.block["header"]["prev"] != (
            self.head.block_hash
        ):
            raise BlockError("bad_link", f"block {height} no longer extends the head")
        overlay = executed.overlay
        index_block(overlay, executed.block, executed.tx_ids)
        overlay.put(schema.BLOCK + schema.u64(height), encode(executed.block))
        overlay.put(schema.CERT + schema.u64(height), encode(certificate))
        overlay.put(schema.BLOCK_BY_HASH + executed.block_hash, schema.u64(height))
        overlay.put(
            schema.HEIGHT_BY_LOG_SIZE + schema.u64(executed.block["header"]["log_size"]),
            schema.u64(height),
        )
        overlay.put(schema.META_HEAD, encode({"height": height, "block_hash": executed.block_hash}))
        changes = overlay.changes()
        self.store.write({**changes, **(also or {})}, sync=True)
        self._governed.committed(changes)
        header = executed.block["header"]
        self.head = Head(
            height, executed.block_hash, header["time"], header["log_size"], header["log_root"]
        )


class BlockBuilder:
    """The next block, filled tx by tx and finished when its proposer's turn comes.

    `Ledger.build_block` fills and finishes one at once. A proposer may also start one on
    a block that is executed but not committed yet (`Ledger.builder(on=...)`): its txs
    then run on a private copy of that block's effects while the height is still being
    decided, and only the txs that arrive later are left to run when the block is
    proposed. `finish` refuses unless that parent has become the head, and makes the
    header (time, validator set, version) from the committed chain at that moment, so a
    block built on a parent that lost is never proposed.

    Not thread-safe: one thread at a time fills it (the caller awaits each step).
    """

    def __init__(
        self,
        ledger: Ledger,
        parent: Head,
        base: KVReader,
        max_txs: int,
        max_bytes: int,
        skip: Iterable[bytes] = (),
        ahead: bool = False,
    ) -> None:
        self.ledger = ledger
        self.parent = parent
        self.height = parent.height + 1
        self.overlay = Overlay(base)
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.txs: list[dict[str, Any]] = []
        self.tx_ids: list[bytes] = []
        self.size = 0
        self._rejected: list[tuple[bytes, ProtocolError]] = []
        self._seen: set[bytes] = set(skip)  # in the block, rejected, or in its parent
        # The candidates' bytes `add` has looked at. A block built ahead is filled again
        # with every pending tx each time a few more arrive: hashing each one again made
        # every fill cost O(pending) and a block O(pending²) (with 1,800 pending, 2.0 ms
        # to add one tx; 0.3 ms with this set, since bytes keep their hash).
        self._looked_at: set[bytes] = set()
        self.ahead = ahead  # started before its parent was committed

    @property
    def full(self) -> bool:
        return len(self.txs) >= self.max_txs

    def unseen(self, candidates: Iterable[bytes]) -> int:
        """How many of the candidates `add` has not looked at yet (the work it would do)."""
        looked_at = self._looked_at
        return sum(1 for raw in candidates if raw not in looked_at)

    def add(self, candidates: Iterable[bytes], verified: Container[bytes] = frozenset()) -> None:
        """Run the candidates not seen before, in order, until the block is full."""
        looked_at = self._looked_at
        for raw in candidates:
            if self.full:
                break
            if raw in looked_at:
                continue
            if self.size + len(raw) > self.max_bytes:
                break
            looked_at.add(raw)
            raw_id = H(raw)
            if raw_id in self._seen:
                continue
            self._seen.add(raw_id)
            index = len(self.txs)
            try:
                tx, tid = check_and_apply(
                    self.overlay,
                    raw,
                    self.height,
                    index,
                    self.ledger.chain_id,
                    verify_signature=raw_id not in verified,
                )
            except ProtocolError as exc:
                self._rejected.append((raw_id, exc))
                continue
            index_tx(self.overlay, tid, self.height, index, self.parent.log_size)
            self.txs.append(tx)
            self.tx_ids.append(tid)
            self.size += len(raw)

    def take_rejected(self) -> list[tuple[bytes, ProtocolError]]:
        """Candidates refused since the last call (the caller drops them from its pool)."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def finish(self, *, time_ms: int, proposer: bytes) -> ExecutedBlock:
        head = self.ledger.head
        if (head.height, head.block_hash) != (self.parent.height, self.parent.block_hash):
            raise BlockError("bad_link", f"block {self.height} was built on another parent")
        self.ledger.require_supported(self.height)
        header = self.ledger.header_for(self.overlay, self.height, time_ms, proposer, self.tx_ids)
        block = {"header": header, "txs": self.txs}
        return ExecutedBlock(
            block, block_hash(header), list(self.tx_ids), self.overlay, self.take_rejected()
        )


def index_tx(overlay: Overlay, tid: bytes, height: int, index: int, log_size_before: int) -> None:
    """Where a tx is: read by the duplicate check and by receipts."""
    location = {"height": height, "index": index, "leaf_index": log_size_before + index}
    overlay.put(schema.TX_INDEX + tid, encode(location))


def _decode_stored(raw: bytes, what: str) -> Any:
    try:
        return decode_stored(raw)
    except ProtocolError as exc:
        raise StoreError(f"the store is corrupt: {what} does not decode ({exc.message})") from exc


__all__ = [
    "BlockBuilder",
    "BlockError",
    "ExecutedBlock",
    "Head",
    "Ledger",
    "UpgradeRequired",
    "validators_hash",
]
