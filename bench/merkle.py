"""Merkle log throughput: appends committed block by block, and proof generation
(random historical proofs, and the receipts of newly committed blocks with and without
the ledger's subtree cache).

Run `python bench/merkle.py`. Appends go through an Overlay and one `write()` per batch,
exactly as a node commits a block, so the figures include the store's own cost (for
LevelDB a synced write batch per block). `merkle_append_rate` (LevelStore unless given a
store) is the single figure bench/core.py reports.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from pathlib import Path

from almoner.node.chain.merkle import root_of
from almoner.node.chain.merkle_log import MerkleLog, RangeCache
from almoner.node.chain.store import KVStore, LevelStore, MemoryStore, Overlay

LEAVES = 200_000
BATCH = 1_000
PROOFS = 20_000


def _tx_ids(n: int, salt: bytes = b"bench") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def _append_rate(store: KVStore, leaves: int, batch: int) -> float:
    """Leaves per second; ids are made beforehand so only the log and the store are timed."""
    ids = _tx_ids(leaves)
    start = time.perf_counter()
    for pos in range(0, leaves, batch):
        overlay = Overlay(store)
        MerkleLog(overlay).append(ids[pos : pos + batch])
        store.write(overlay.changes())
    return leaves / (time.perf_counter() - start)


def merkle_append_rate(
    leaves: int = LEAVES, batch: int = BATCH, store: KVStore | None = None
) -> float:
    """Leaves/s appended in synced commits of `batch` leaves.

    Without a store this uses a fresh LevelStore in a temporary directory: that is what a
    node runs on, and MemoryStore's sorted-list inserts (O(n) per new key) would make the
    figure measure the test twin rather than the log.
    """
    if store is not None:
        return _append_rate(store, leaves, batch)
    with tempfile.TemporaryDirectory(prefix="almoner-bench-") as tmp:
        level = LevelStore(Path(tmp) / "db")
        try:
            return _append_rate(level, leaves, batch)
        finally:
            level.close()


def log_only_append_rate(leaves: int = LEAVES, batch: int = BATCH) -> float:
    """Leaves/s of the log's own work (hashing, keys, overlay puts), with no store write."""
    ids = _tx_ids(leaves)
    overlay = Overlay(MemoryStore())
    log = MerkleLog(overlay)
    start = time.perf_counter()
    for pos in range(0, leaves, batch):
        log.append(ids[pos : pos + batch])
    return leaves / (time.perf_counter() - start)


def proof_rates(store: KVStore, proofs: int = PROOFS, seed: int = 0) -> tuple[float, float]:
    """(inclusion, consistency) proofs per second at random historical sizes, the way old
    receipts are checked against newer heads."""
    log = MerkleLog(Overlay(store))
    size = log.size()
    rng = random.Random(seed)
    queries = [rng.randint(1, size) for _ in range(proofs)]
    pairs = [(rng.randint(1, s), s) for s in queries]
    start = time.perf_counter()
    for tree_size in queries:
        log.inclusion_proof(rng.randrange(tree_size), tree_size)
    inclusion = proofs / (time.perf_counter() - start)
    start = time.perf_counter()
    for first, second in pairs:
        log.consistency_proof(first, second)
    consistency = proofs / (time.perf_counter() - start)
    return inclusion, consistency


def receipt_proof_costs(store: KVStore, block: int = 64, blocks: int = 50) -> tuple[float, float]:
    """(µs per proof without, with the ledger's RangeCache) for the receipts a node makes
    when blocks commit: inclusion proofs of each block's `block` leaves at its tree size,
    for the last `blocks` sizes of the log, newest first, as the cache sees them."""
    size = MerkleLog(Overlay(store)).size()
    sizes = [size - k * block for k in range(blocks) if size - k * block >= block]
    costs = []
    for cache in (None, RangeCache()):
        start = time.perf_counter()
        for tree_size in reversed(sizes):
            log = MerkleLog(Overlay(store), cache)  # per block, as Ledger.log() is asked
            for leaf in range(tree_size - block, tree_size):
                log.inclusion_proof(leaf, tree_size)
        costs.append((time.perf_counter() - start) / (len(sizes) * block) * 1e6)
    return costs[0], costs[1]


def block_root_rate(block_txs: int = 5_000, rounds: int = 20) -> float:
    """tx_ids/s hashed into a block's txs_root by `root_of`."""
    ids = _tx_ids(block_txs, b"block")
    start = time.perf_counter()
    for _ in range(rounds):
        root_of(ids)
    return block_txs * rounds / (time.perf_counter() - start)


def main() -> None:
    shape = f"{LEAVES:,} leaves, batches of {BATCH:,}"
    print(f"Merkle append, log only (no store write): {log_only_append_rate():,.0f} leaves/s")
    memory = MemoryStore()
    rate = merkle_append_rate(store=memory)
    print(f"Merkle append, MemoryStore: {rate:,.0f} leaves/s ({shape})")
    inc, cons = proof_rates(memory)
    print(f"  proofs, MemoryStore: {inc:,.0f} inclusion/s, {cons:,.0f} consistency/s")
    with tempfile.TemporaryDirectory(prefix="almoner-bench-") as tmp:
        level = LevelStore(Path(tmp) / "db")
        try:
            rate = merkle_append_rate(store=level)
            print(f"Merkle append, LevelStore: {rate:,.0f} leaves/s ({shape}, synced commits)")
            inc, cons = proof_rates(level)
            print(f"  proofs, LevelStore: {inc:,.0f} inclusion/s, {cons:,.0f} consistency/s")
            plain, cached = receipt_proof_costs(level)
            print(
                f"  receipts at the head (64 per block), LevelStore: {plain:.1f} µs per proof, "
                f"{cached:.1f} µs with the subtree cache"
            )
        finally:
            level.close()
    print(f"txs_root (root_of), 5,000-tx blocks: {block_root_rate():,.0f} tx_ids/s")


if __name__ == "__main__":
    main()
