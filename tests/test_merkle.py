"""The pure RFC 9162 functions against the published vectors and a naive reference.

The reference below is transcribed from the RFC's recursive definitions (MTH, PATH, PROOF,
SUBPROOF) and nothing else, so agreement with it, plus the published vectors, pins the
optimised code to the standard rather than to itself. `tests/test_merkle_log.py` reuses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almoner.node.chain.merkle import (
    EMPTY_ROOT,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS_NAME = "rfc6962_merkle_vectors.json"


# A copy of the published vectors, for clones that have no ../shared beside them; when
# the shared checkout is there it is used, and the copy must equal it.
VENDORED = Path(__file__).resolve().parent / "data" / VECTORS_NAME


def shared_vectors_path() -> Path | None:
    """The vectors of the shared checkout cloned beside this repo (../shared), if any."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "testdata" / VECTORS_NAME
        if candidate.is_file():
            return candidate
    return None


def vectors_path() -> Path:
    shared = shared_vectors_path()
    if shared is not None:
        return shared
    if not VENDORED.is_file():
        pytest.fail(f"cannot find {VECTORS_NAME} in ../shared/testdata nor in tests/data")
    return VENDORED


def test_vendored_copy_matches_shared() -> None:
    shared = shared_vectors_path()
    assert VENDORED.is_file()
    if shared is not None:
        assert json.loads(shared.read_text()) == json.loads(VENDORED.read_text())


def load_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(vectors_path().read_text(encoding="utf-8"))
    return data


def vector_leaves() -> list[bytes]:
    return [bytes.fromhex(h) for h in load_vectors()["leaf_inputs_hex"]]


# -- the naive reference, straight from RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 ------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n, found the slow, obvious way."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _split(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


class Reference:
    """MTH/PATH/PROOF over one fixed list of leaves, with MTH of each range memoised so
    exhaustive loops over many sizes stay fast (a range's hash doesn't depend on the size
    of the tree it sits in)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.mth: Callable[[int, int], bytes] = lru_cache(maxsize=None)(self._mth)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n <= 1:
            return ref_mth(self.leaves[start:end])
        k = _split(n)
        return hashlib.sha256(
            b"\x01" + self.mth(start, start + k) + self.mth(start + k, end)
        ).digest()

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]), m relative to start."""
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def root(self, size: int) -> bytes:
        return self.mth(0, size)

    def inclusion(self, m: int, size: int) -> list[bytes]:
        return self.path(m, 0, size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self.subproof(first, 0, second, True)


def make_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    """Distinct 32-byte leaf inputs, shaped like tx_ids."""
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def flip(data: bytes, at: int = 0) -> bytes:
    """`data` with one bit changed (an empty leaf input becomes one byte)."""
    if not data:
        return b"\x01"
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def inclusion_tampers(
    leaf: bytes, index: int, size: int, path: list[bytes]
) -> list[tuple[bytes, int, int, list[bytes]]]:
    """Every way a proof can be damaged that must make it fail: each path entry with a
    flipped byte, another index, another size, a shorter or longer path, another leaf."""
    out: list[tuple[bytes, int, int, list[bytes]]] = []
    for i in range(len(path)):
        out.append((leaf, index, size, [*path[:i], flip(path[i], i % 32), *path[i + 1 :]]))
    out.append((flip(leaf), index, size, path))
    for other in (index - 1, index + 1, index ^ 1, index + size):
        if other != index:
            out.append((leaf, other, size, path))
    for other_size in (size - 1, size + 1, 2 * size):
        if other_size != size:
            out.append((leaf, index, other_size, path))
    if path:
        out.append((leaf, index, size, path[:-1]))
        out.append((leaf, index, size, path[1:]))
    out.append((leaf, index, size, [*path, EMPTY_ROOT]))
    return out


def consistency_tampers(
    first: int, second: int, path: list[bytes]
) -> list[tuple[int, int, list[bytes]]]:
    out: list[tuple[int, int, list[bytes]]] = []
    for i in range(len(path)):
        out.append((first, second, [*path[:i], flip(path[i], i % 32), *path[i + 1 :]]))
    if path:
        out.append((first, second, path[:-1]))
        out.append((first, second, path[1:]))
    out.append((first, second, [*path, EMPTY_ROOT]))
    return out


def check_inclusion_rejects_tampering(
    ref: Reference, leaf: bytes, index: int, size: int, path: list[bytes]
) -> None:
    """A proof binds the tree size only through the root, so a claim of another size is
    checked against that size's true root (as a verifier would take it from that size's
    head); it may pass only where the RFC really gives that same proof."""
    root = ref.root(size)
    for t_leaf, t_index, t_size, t_path in inclusion_tampers(leaf, index, size, path):
        if t_size > len(ref.leaves):
            continue
        t_root = ref.root(t_size) if t_size >= 1 else root
        genuine = (
            0 <= t_index < t_size
            and t_leaf == ref.leaves[t_index]
            and ref.inclusion(t_index, t_size) == t_path
        )
        assert verify_inclusion(t_leaf, t_index, t_size, t_path, t_root) == genuine, (
            t_index,
            t_size,
            len(t_path),
        )
    assert not verify_inclusion(leaf, index, size, path, flip(root))


def check_consistency_rejects_tampering(
    ref: Reference, first: int, second: int, path: list[bytes]
) -> None:
    r1, r2 = ref.root(first), ref.root(second)
    for t_first, t_second, t_path in consistency_tampers(first, second, path):
        assert not verify_consistency(t_first, t_second, r1, r2, t_path), (first, second)
    assert not verify_consistency(first, second, flip(r1), r2, path)
    assert not verify_consistency(first, second, r1, flip(r2), path)
    # The same path claimed for other sizes (with those sizes' true roots) must fail too,
    # unless the RFC genuinely gives the same path for them (then it is a valid proof).
    for f, s in (
        (first - 1, second),
        (first + 1, second),
        (first, second - 1),
        (first, second + 1),
    ):
        if 1 <= f <= s <= len(ref.leaves) and ref.consistency(f, s) != path:
            assert not verify_consistency(f, s, ref.root(f), ref.root(s), path), (f, s)


# -- published vectors ------------------------------------------------------------------


def test_vectors_file_is_found_and_complete() -> None:
    v = load_vectors()
    assert len(v["leaf_inputs_hex"]) == 8
    assert sorted(int(s) for s in v["roots_by_size"]) == list(range(9))
    assert v["inclusion"]
    assert v["consistency"]


def test_vector_roots() -> None:
    v = load_vectors()
    leaves = vector_leaves()
    for size, root_hex in v["roots_by_size"].items():
        assert root_of(leaves[: int(size)]).hex() == root_hex
        assert ref_mth(leaves[: int(size)]).hex() == root_hex


def test_vector_inclusion_paths() -> None:
    v = load_vectors()
    leaves = vector_leaves()
    ref = Reference(leaves)
    for case in v["inclusion"]:
        index = case["leaf_index_1based"] - 1
        size = case["tree_size"]
        path = [bytes.fromhex(h) for h in case["path"]]
        assert ref.inclusion(index, size) == path
        assert verify_inclusion(leaves[index], index, size, path, root_of(leaves[:size]))
        check_inclusion_rejects_tampering(ref, leaves[index], index, size, path)


def test_vector_consistency_paths() -> None:
    v = load_vectors()
    leaves = vector_leaves()
    ref = Reference(leaves)
    for case in v["consistency"]:
        first, second = case["first"], case["second"]
        path = [bytes.fromhex(h) for h in case["path"]]
        assert ref.consistency(first, second) == path
        r1, r2 = root_of(leaves[:first]), root_of(leaves[:second])
        assert verify_consistency(first, second, r1, r2, path)
        check_consistency_rejects_tampering(ref, first, second, path)


# -- hashing primitives -----------------------------------------------------------------


def test_primitive_hashes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert root_of([b"x"]) == leaf_hash(b"x")
    assert root_of([b"a", b"b"]) == node_hash(a, b)


def test_split_point() -> None:
    for n in range(2, 1100):
        assert largest_power_of_two_below(n) == _split(n)
    for bad in (-1, 0, 1):
        with pytest.raises(ValueError, match="at least 2 leaves"):
            largest_power_of_two_below(bad)


# -- root_of: level-by-level pairing is the RFC's split rule ------------------------------


def test_root_of_matches_rfc_split_for_every_size_up_to_300() -> None:
    leaves = make_leaves(300)
    ref = Reference(leaves)
    for n in range(301):
        assert root_of(leaves[:n]) == ref.root(n) == ref_mth(leaves[:n]), n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_root_of_matches_reference_on_arbitrary_leaves(leaves: list[bytes]) -> None:
    assert root_of(leaves) == ref_mth(leaves)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=301, max_value=5000), st.binary(max_size=8))
def test_root_of_matches_reference_on_large_sizes(n: int, salt: bytes) -> None:
    leaves = make_leaves(n, salt)
    assert root_of(leaves) == Reference(leaves).root(n)


def test_root_of_accepts_any_sequence() -> None:
    leaves = make_leaves(5)
    assert root_of(tuple(leaves)) == root_of(leaves)


# -- verify_inclusion -------------------------------------------------------------------


def test_inclusion_exhaustive_small_trees() -> None:
    leaves = make_leaves(300)
    ref = Reference(leaves)
    for size in range(1, 301):
        root = ref.root(size)
        for index in range(size):
            path = ref.inclusion(index, size)
            assert verify_inclusion(leaves[index], index, size, path, root), (index, size)
    for size in range(1, 65):
        for index in range(size):
            check_inclusion_rejects_tampering(
                ref, leaves[index], index, size, ref.inclusion(index, size)
            )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_inclusion_random_large_trees(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=3000), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaves = make_leaves(2 * size + 1)
    ref = Reference(leaves)
    path = ref.inclusion(index, size)
    assert verify_inclusion(leaves[index], index, size, path, ref.root(size))
    check_inclusion_rejects_tampering(ref, leaves[index], index, size, path)


def test_inclusion_rejects_malformed_arguments() -> None:
    leaves = make_leaves(8)
    ref = Reference(leaves)
    path, root = ref.inclusion(3, 8), ref.root(8)
    assert verify_inclusion(leaves[3], 3, 8, path, root)
    assert not verify_inclusion(leaves[3], -1, 8, path, root)
    assert not verify_inclusion(leaves[3], 8, 8, path, root)
    assert not verify_inclusion(leaves[3], 3, 0, path, root)
    assert not verify_inclusion(leaves[3], 3, 8, path, root[:31])
    assert not verify_inclusion(leaves[3], 3, 8, [*path[:2], path[2] + b"\x00"], root)
    # A one-leaf tree: empty path, and the root is the leaf hash.
    assert verify_inclusion(b"x", 0, 1, [], leaf_hash(b"x"))
    assert not verify_inclusion(b"x", 0, 1, [EMPTY_ROOT], leaf_hash(b"x"))


# -- verify_consistency -----------------------------------------------------------------


def test_consistency_exhaustive_small_trees() -> None:
    leaves = make_leaves(300)
    ref = Reference(leaves)
    for second in range(1, 301):
        for first in range(1, second + 1):
            path = ref.consistency(first, second)
            assert verify_consistency(first, second, ref.root(first), ref.root(second), path), (
                first,
                second,
            )
    for second in range(1, 65):
        for first in range(1, second + 1):
            check_consistency_rejects_tampering(ref, first, second, ref.consistency(first, second))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_consistency_random_large_trees(data: st.DataObject) -> None:
    second = data.draw(st.integers(min_value=1, max_value=3000), label="second")
    first = data.draw(st.integers(min_value=1, max_value=second), label="first")
    ref = Reference(make_leaves(second + 1))
    path = ref.consistency(first, second)
    assert verify_consistency(first, second, ref.root(first), ref.root(second), path)
    check_consistency_rejects_tampering(ref, first, second, path)


def test_consistency_equal_sizes_and_bounds() -> None:
    ref = Reference(make_leaves(8))
    r5, r8 = ref.root(5), ref.root(8)
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, r8, [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    path = ref.consistency(5, 8)
    assert verify_consistency(5, 8, r5, r8, path)
    assert not verify_consistency(5, 8, r5, r8, [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, r8, path)
    assert not verify_consistency(8, 5, r8, r5, path)
    assert not verify_consistency(-1, 8, r5, r8, path)
    assert not verify_consistency(5, 8, r5[:31], r8, path)
    assert not verify_consistency(5, 8, r5, r8, [*path[:-1], path[-1][:31]])
