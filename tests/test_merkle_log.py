"""MerkleLog against the vectors and the naive RFC reference, on both store twins.

The log is only trustworthy if a proof for an *old* head, served years later from LevelDB
after many commits and restarts, is byte-identical to what the RFC defines; so every check
here compares with `tests.test_merkle.Reference` and runs on MemoryStore and LevelStore.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almoner.node.chain import schema
from almoner.node.chain.merkle import EMPTY_ROOT, root_of, verify_consistency, verify_inclusion
from almoner.node.chain.merkle_log import MerkleLog, RangeCache, node_key
from almoner.node.chain.store import KVStore, LevelStore, MemoryStore, Overlay
from almoner.node.errors import StoreError
from tests.test_merkle import (
    Reference,
    check_consistency_rejects_tampering,
    check_inclusion_rejects_tampering,
    load_vectors,
    make_leaves,
    vector_leaves,
)


def commit(store: KVStore, leaves: Sequence[bytes]) -> None:
    """One block's worth: append in an overlay, then one atomic write, as the node does."""
    overlay = Overlay(store)
    MerkleLog(overlay).append(leaves)
    store.write(overlay.changes())


def reader(store: KVStore) -> MerkleLog:
    return MerkleLog(Overlay(store))


@pytest.fixture(params=["memory", "level"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    kv: KVStore = MemoryStore() if request.param == "memory" else LevelStore(tmp_path / "db")
    yield kv
    kv.close()


def assert_matches_reference(log: MerkleLog, ref: Reference, sizes: Sequence[int]) -> None:
    for size in sizes:
        assert log.root(size) == ref.root(size), size
        for index in range(size):
            path = log.inclusion_proof(index, size)
            assert path == ref.inclusion(index, size), (index, size)
            assert verify_inclusion(ref.leaves[index], index, size, path, ref.root(size))
        for first in range(1, size + 1):
            path = log.consistency_proof(first, size)
            assert path == ref.consistency(first, size), (first, size)
            assert verify_consistency(first, size, ref.root(first), ref.root(size), path)


# -- vectors ----------------------------------------------------------------------------


def test_vectors_on_both_stores(store: KVStore) -> None:
    v = load_vectors()
    leaves = vector_leaves()
    commit(store, leaves[:3])
    commit(store, leaves[3:5])
    commit(store, leaves[5:])
    log = reader(store)
    assert log.size() == 8
    for size, root_hex in v["roots_by_size"].items():
        assert log.root(int(size)).hex() == root_hex
    for case in v["inclusion"]:
        index = case["leaf_index_1based"] - 1
        assert [h.hex() for h in log.inclusion_proof(index, case["tree_size"])] == case["path"]
    for case in v["consistency"]:
        path = log.consistency_proof(case["first"], case["second"])
        assert [h.hex() for h in path] == case["path"]


# -- agreement with the reference -------------------------------------------------------


def test_every_size_index_and_first_up_to_300() -> None:
    """One log of 300 leaves answers for every historical size as the RFC does."""
    leaves = make_leaves(300)
    ref = Reference(leaves)
    store = MemoryStore()
    pos = 0
    for batch in (1, 2, 3, 1, 7, 16, 50, 13, 64, 100, 43):
        commit(store, leaves[pos : pos + batch])
        pos += batch
    assert pos == 300
    log = reader(store)
    assert log.size() == 300
    assert log.root() == ref.root(300) == root_of(leaves)
    assert log.root(0) == EMPTY_ROOT
    assert_matches_reference(log, ref, range(301))


def test_tampered_log_proofs_do_not_verify() -> None:
    leaves = make_leaves(130)
    ref = Reference(leaves)
    store = MemoryStore()
    commit(store, leaves)
    log = reader(store)
    for size in (1, 2, 3, 5, 8, 13, 64, 65, 100, 127, 128):
        for index in {0, size // 2, size - 1}:
            check_inclusion_rejects_tampering(
                ref, leaves[index], index, size, log.inclusion_proof(index, size)
            )
        for first in {1, size // 2 or 1, size - 1 or 1, size}:
            check_consistency_rejects_tampering(
                ref, first, size, log.consistency_proof(first, size)
            )


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_batches_and_large_sizes(data: st.DataObject) -> None:
    total = data.draw(st.integers(min_value=1, max_value=3000), label="total")
    leaves = make_leaves(total, salt=b"random")
    ref = Reference(leaves)
    store = MemoryStore()
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=total), max_size=12))
    pos = 0
    for cut in [*sorted(cuts), total]:
        commit(store, leaves[pos:cut])  # empty batches included: they must change nothing
        pos = cut
        assert reader(store).size() == pos
        assert reader(store).root() == ref.root(pos)
    log = reader(store)
    for _ in range(5):
        size = data.draw(st.integers(min_value=1, max_value=total), label="size")
        index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
        first = data.draw(st.integers(min_value=1, max_value=size), label="first")
        assert log.root(size) == ref.root(size)
        assert log.inclusion_proof(index, size) == ref.inclusion(index, size)
        assert log.consistency_proof(first, size) == ref.consistency(first, size)


# -- persistence --------------------------------------------------------------------------


def test_many_commits_on_both_stores(store: KVStore) -> None:
    leaves = make_leaves(200, salt=b"commits")
    ref = Reference(leaves)
    pos = 0
    sizes = []
    for batch in (5, 1, 0, 27, 31, 32, 64, 40):
        commit(store, leaves[pos : pos + batch])
        pos += batch
        sizes.append(pos)
        log = reader(store)
        assert log.size() == pos
        assert log.root() == ref.root(pos)
    log = reader(store)
    assert_matches_reference(log, ref, [s for s in sizes if s <= 70])
    for old in sizes:
        if old:
            path = log.consistency_proof(old, pos)
            assert verify_consistency(old, pos, log.root(old), log.root(), path)


def test_cached_subtrees_stay_right_as_the_log_grows(store: KVStore) -> None:
    """The cache outlives commits (a node keeps one for its life): every proof made
    through it, block after block, at old sizes and new, is the RFC's, and a full cache
    starts over rather than serving a stale or wrong hash."""
    leaves = make_leaves(300, salt=b"cache")
    ref = Reference(leaves)
    cache = RangeCache(limit=40)  # small: it fills and is emptied many times below
    pos = 0
    for batch in (1, 6, 25, 64, 33, 2, 100, 69):
        commit(store, leaves[pos : pos + batch])
        pos += batch
        log = MerkleLog(Overlay(store), cache)
        for index in range(max(0, pos - batch), pos):  # this block's receipts
            assert log.inclusion_proof(index, pos) == ref.inclusion(index, pos), (index, pos)
        for old in (1, pos // 3, pos - 1):  # older heads, asked again after growth
            if old:
                assert log.inclusion_proof(old - 1, old) == ref.inclusion(old - 1, old)
                assert log.consistency_proof(old, pos) == ref.consistency(old, pos)
        assert log.root() == ref.root(pos)
    assert pos == 300


def test_reopened_level_store_keeps_answering(tmp_path: Path) -> None:
    leaves = make_leaves(150, salt=b"reopen")
    ref = Reference(leaves)
    db = LevelStore(tmp_path / "db")
    commit(db, leaves[:37])
    commit(db, leaves[37:64])
    old_root = reader(db).root()
    db.close()

    db = LevelStore(tmp_path / "db")
    log = reader(db)
    assert log.size() == 64
    assert log.root() == old_root == ref.root(64)
    commit(db, leaves[64:101])
    db.close()

    db = LevelStore(tmp_path / "db")
    commit(db, leaves[101:])
    log = reader(db)
    assert log.size() == 150
    assert log.root() == ref.root(150)
    assert log.consistency_proof(64, 150) == ref.consistency(64, 150)
    assert log.inclusion_proof(40, 64) == ref.inclusion(40, 64)
    assert log.inclusion_proof(149, 150) == ref.inclusion(149, 150)
    db.close()


def test_discarded_overlay_leaves_the_store_untouched(store: KVStore) -> None:
    commit(store, make_leaves(10))
    before = reader(store).root()
    overlay = Overlay(store)
    MerkleLog(overlay).append(make_leaves(5, salt=b"rejected block"))
    assert MerkleLog(overlay).size() == 15
    assert reader(store).size() == 10
    assert reader(store).root() == before


def test_writes_only_log_keys_and_amortised_constant_writes() -> None:
    overlay = Overlay(MemoryStore())
    log = MerkleLog(overlay)
    log.append([])
    assert overlay.changes() == {}
    n = 1000
    log.append(make_leaves(n))
    keys = overlay.changes()
    assert all(k == schema.MERKLE_SIZE or k.startswith(schema.MERKLE_NODE) for k in keys)
    # Each leaf, each completed perfect subtree (n - popcount(n) of them), and the size.
    assert len(keys) == n + (n - n.bit_count()) + 1
    assert len(keys) <= 2 * n + 1
    assert keys[node_key(0, 999)] == overlay.get(node_key(0, 999))
    assert node_key(3, 124) in keys  # leaves 992..999
    assert node_key(3, 125) not in keys


# -- cost: O(log n) reads -----------------------------------------------------------------


class CountingKV:
    """Counts reads on the way to an overlay, so the cost claims are checked, not trusted."""

    def __init__(self, inner: Overlay) -> None:
        self.inner = inner
        self.reads = 0
        self.writes = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return self.inner.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        self.inner.put(key, value)


def test_reads_are_logarithmic_at_100k_leaves() -> None:
    n = 100_003
    overlay = Overlay(MemoryStore())
    leaves = make_leaves(n, salt=b"big")
    MerkleLog(overlay).append(leaves)
    counting = CountingKV(overlay)
    log = MerkleLog(counting)
    bound = 4 * math.log2(n) + 8

    def reads_of(action: Callable[[], object]) -> int:
        counting.reads = 0
        action()
        return counting.reads

    sizes = [1, 2, 1000, 65_535, 65_536, 65_537, 99_999, n - 1, n]
    for size in sizes:
        assert reads_of(partial(log.root, size)) < bound
        for index in {0, size // 3, size // 2, size - 2 if size > 1 else 0, size - 1}:
            cost = reads_of(partial(log.inclusion_proof, index, size))
            assert cost < bound, (index, size, cost)
        for first in {1, size // 3 or 1, size - 1 or 1, size}:
            cost = reads_of(partial(log.consistency_proof, first, size))
            assert cost < bound, (first, size, cost)

    assert reads_of(partial(log.append, [b"one more"])) < bound
    counting.writes = 0
    assert reads_of(partial(log.append, make_leaves(1000, salt=b"batch"))) < bound
    assert counting.writes <= 2 * 1000 + 1

    # Spot-check the answers at this size against the level-by-level root.
    size = 65_537
    assert log.root(size) == root_of(leaves[:size])
    path = log.inclusion_proof(12_345, size)
    assert verify_inclusion(leaves[12_345], 12_345, size, path, log.root(size))
    path = log.consistency_proof(40_000, n)
    assert verify_consistency(40_000, n, log.root(40_000), log.root(n), path)


# -- errors -------------------------------------------------------------------------------


def test_out_of_range_arguments_raise_value_error() -> None:
    overlay = Overlay(MemoryStore())
    log = MerkleLog(overlay)
    assert log.size() == 0
    assert log.root() == EMPTY_ROOT
    assert log.root(0) == EMPTY_ROOT
    with pytest.raises(ValueError, match="holds 0 leaves"):
        log.root(1)
    with pytest.raises(ValueError, match="inclusion proof"):
        log.inclusion_proof(0, 1)
    with pytest.raises(ValueError, match="consistency proof"):
        log.consistency_proof(1, 1)
    log.append(make_leaves(10))
    with pytest.raises(ValueError, match="holds 10 leaves"):
        log.root(11)
    with pytest.raises(ValueError, match="holds 10 leaves"):
        log.root(-1)
    with pytest.raises(ValueError, match="tree size 0"):
        log.inclusion_proof(0, 0)
    with pytest.raises(ValueError, match="tree size 11"):
        log.inclusion_proof(0, 11)
    with pytest.raises(ValueError, match="leaf 5 in a tree of 5"):
        log.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="leaf -1"):
        log.inclusion_proof(-1, 5)
    for first, second in ((0, 5), (6, 5), (1, 11), (-1, 3)):
        with pytest.raises(ValueError, match="consistency proof"):
            log.consistency_proof(first, second)
    assert log.consistency_proof(10, 10) == []
    assert log.consistency_proof(4, 4) == []


def test_corrupt_store_is_reported_not_papered_over() -> None:
    store = MemoryStore()
    commit(store, make_leaves(6))
    store.write({node_key(1, 2): None})  # the subtree of leaves 4..5
    log = reader(store)
    with pytest.raises(StoreError, match="level 1, index 2 is missing"):
        log.root()
    with pytest.raises(StoreError, match="corrupt"):
        log.append([b"x"])
    store.write({node_key(1, 2): b"short"})
    with pytest.raises(StoreError, match="holds 5 bytes"):
        reader(store).root()
    store.write({schema.MERKLE_SIZE: b"\x01"})
    with pytest.raises(StoreError, match="8-byte leaf count"):
        reader(store).size()
