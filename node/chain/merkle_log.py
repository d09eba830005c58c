"""The ledger-wide append-only Merkle log (docs/spec/05-chain.md), persisted in the node's store.

Every header commits to `log_size`/`log_root`, and a donor holding a receipt from an old
head must be able to get inclusion and consistency proofs against any later head. So the
log has to answer for *every* historical size, cheaply, without ever rebuilding a tree.

Layout (keys from `node.schema`): `MERKLE_SIZE` holds the leaf count; `MERKLE_NODE +
level + u64(index)` holds the hash of the perfect subtree of 2^level leaves starting at
leaf index * 2^level. Those nodes never change once written (the log only grows), so they
serve every later size alike. Any subtree the RFC 9162 recursion asks for is either such a
perfect subtree or a "ragged" right edge [a, b) whose start is aligned to the largest power
of two not above b - a; the latter is the right-to-left fold of the perfect subtrees given
by the binary decomposition of b - a. A proof therefore meets at most one ragged subtree
(the first step off the right spine) and costs O(log n) reads; appends keep the frontier
(the perfect subtrees of the current size) in memory for the batch, so they cost
O(popcount(n)) reads per call and amortised two writes per leaf.

`MerkleLog` holds no state of its own between calls: it is meant to sit on a block's
`Overlay`, which may still be thrown away, so everything it knows comes from the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from almoner.node.chain import schema
from almoner.node.chain.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
)
from almoner.node.errors import StoreError


class MerkleKV(Protocol):
    """The slice of `node.store.Overlay` the log needs; kept minimal so tests can wrap it."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


def node_key(level: int, index: int) -> bytes:
    """Store key of the perfect subtree of 2^level leaves starting at leaf index * 2^level."""
    return schema.MERKLE_NODE + bytes([level]) + schema.u64(index)


class RangeCache:
    """Subtree hashes of a committed log, shared by the proofs made against it.

    The receipts of one block are proofs at one tree size, whose siblings are mostly the
    same subtrees; each costs popcount(width) store reads and hashes when made anew. A
    range [start, end) inside the committed log never changes (the log only grows), so its
    hash can be kept: the cache belongs only to logs that read committed data
    (`Ledger.log`), never to one a block is being appended through. Bounded: it is
    emptied when full, and refills with whatever the current proofs need.
    """

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        self._hashes: dict[tuple[int, int], bytes] = {}

    def get(self, start: int, end: int) -> bytes | None:
        return self._hashes.get((start, end))

    def put(self, start: int, end: int, digest: bytes) -> None:
        if len(self._hashes) >= self._limit:
            self._hashes = {}  # a new dict: a reader on another thread keeps the old one
        self._hashes[(start, end)] = digest


class MerkleLog:
    """RFC 9162 log over a key-value store: append, historical roots, and proofs."""

    def __init__(self, kv: MerkleKV, cache: RangeCache | None = None) -> None:
        self._kv = kv
        self._cache = cache

    # -- reading ----------------------------------------------------------------------------

    def size(self) -> int:
        raw = self._kv.get(schema.MERKLE_SIZE)
        if raw is None:
            return 0
        if len(raw) != 8:
            raise StoreError(
                f"the Merkle log is corrupt: {schema.MERKLE_SIZE!r} holds {len(raw)} bytes, "
                "expected an 8-byte leaf count"
            )
        return schema.from_u64(raw)

    def _node(self, level: int, index: int) -> bytes:
        value = self._kv.get(node_key(level, index))
        if value is None or len(value) != HASH_SIZE:
            what = "is missing" if value is None else f"holds {len(value)} bytes"
            raise StoreError(
                f"the Merkle log is corrupt: the node at level {level}, index {index} {what} "
                f"(the log claims {self.size()} leaves)"
            )
        return value

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC recursion can produce (start aligned to the
        largest power of two <= end - start), from popcount(end - start) stored nodes."""
        cache = self._cache
        if cache is None:
            return self._range_hash_read(start, end)
        digest = cache.get(start, end)
        if digest is None:
            digest = self._range_hash_read(start, end)
            cache.put(start, end, digest)
        return digest

    def _range_hash_read(self, start: int, end: int) -> bytes:
        width = end - start
        if width <= 0 or start % (1 << (width.bit_length() - 1)):
            raise AssertionError(f"[{start}, {end}) is not a subtree of the RFC 9162 recursion")
        parts: list[bytes] = []
        pos = start
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                parts.append(self._node(level, pos >> level))
                pos += 1 << level
        acc = parts[-1]
        for part in reversed(parts[:-1]):
            acc = node_hash(part, acc)
        return acc

    def root(self, size: int | None = None) -> bytes:
        """Tree hash at the current size, or at any earlier `size` (what an old header
        committed to)."""
        current = self.size()
        if size is None:
            size = current
        elif not 0 <= size <= current:
            raise ValueError(f"no root for size {size}: the log holds {current} leaves")
        if size == 0:
            return EMPTY_ROOT
        return self._range_hash(0, size)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(leaf_index, D[tree_size]) for any tree_size <= size()."""
        current = self.size()
        if not 0 < tree_size <= current:
            raise ValueError(
                f"no inclusion proof at tree size {tree_size}: "
                f"the log holds {current} leaves (need 1 <= tree_size <= {current})"
            )
        if not 0 <= leaf_index < tree_size:
            raise ValueError(
                f"no inclusion proof for leaf {leaf_index} in a tree of {tree_size} leaves "
                f"(need 0 <= leaf_index < {tree_size})"
            )
        # Walk the RFC recursion top-down; its output lists the deepest sibling first.
        siblings: list[bytes] = []
        start, end = 0, tree_size
        while end - start > 1:
            mid = start + largest_power_of_two_below(end - start)
            if leaf_index < mid:
                siblings.append(self._range_hash(mid, end))
                end = mid
            else:
                siblings.append(self._range_hash(start, mid))
                start = mid
        siblings.reverse()
        return siblings

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(first, D[second]) for any 1 <= first <= second <= size();
        first == second gives the empty path (docs/spec/05-chain.md)."""
        current = self.size()
        if not 1 <= first <= second <= current:
            raise ValueError(
                f"no consistency proof from size {first} to {second}: "
                f"need 1 <= first <= second <= {current} (the log's size)"
            )
        if first == second:
            return []
        # SUBPROOF(first, D[start:end], complete) walked top-down, deepest entry last.
        proof: list[bytes] = []
        start, end = 0, second
        complete = True  # the RFC's flag b: D[start:end] is still the whole old tree's prefix
        while end != first:
            mid = start + largest_power_of_two_below(end - start)
            if first <= mid:
                proof.append(self._range_hash(mid, end))
                end = mid
            else:
                proof.append(self._range_hash(start, mid))
                start = mid
                complete = False
        if not complete:
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof

    # -- writing ----------------------------------------------------------------------------

    def append(self, leaf_inputs: Iterable[bytes]) -> None:
        """Add leaves (tx_ids) in order, writing each leaf hash and each perfect subtree it
        completes, then the new size (only if something was appended)."""
        kv = self._kv
        size = self.size()
        # The frontier: the perfect subtrees making up the current tree, largest first.
        frontier: list[tuple[int, bytes]] = []
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                frontier.append((level, self._node(level, pos >> level)))
                pos += 1 << level
        start_size = size
        for data in leaf_inputs:
            digest = leaf_hash(data)
            kv.put(node_key(0, size), digest)
            size += 1
            level = 0
            while frontier and frontier[-1][0] == level:
                digest = node_hash(frontier.pop()[1], digest)
                level += 1
                kv.put(node_key(level, (size >> level) - 1), digest)
            frontier.append((level, digest))
        if size != start_size:
            kv.put(schema.MERKLE_SIZE, schema.u64(size))
