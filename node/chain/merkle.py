"""RFC 9162 §2.1 Merkle tree hashing and proof verification, as pure functions.

The block header commits to two trees of this shape (docs/spec/05-chain.md): `txs_root` over one
block's tx_ids and `log_root` over every tx ever committed. A donor, an auditor or the
`verify` tool must reach the same bytes as every node with nothing but these functions, so
they take plain bytes, touch no store and follow the RFC's algorithms step by step; the
persistent, proof-producing side lives in `node.merkle_log`.

The verifiers return False instead of raising: a proof is untrusted input, and "does not
verify" is the only answer a caller needs for any malformed one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = HASH(): the tree hash of a log or block with no entries."""


def leaf_hash(data: bytes) -> bytes:
    """The 0x00 prefix keeps a leaf from ever being passed off as an inner node."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The 0x01 prefix is the inner-node half of the RFC's second-preimage defence."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """RFC 9162's split point k for MTH(D[n]): the largest power of two strictly less than n
    (n >= 2). Shared with `node.merkle_log`, whose stored subtrees follow the same split."""
    if n < 2:
        raise ValueError(f"the split point needs at least 2 leaves, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_inputs: Sequence[bytes]) -> bytes:
    """MTH over `leaf_inputs`, computed level by level.

    Pairing neighbours and promoting an odd last node unchanged builds exactly the RFC's
    tree (which splits at the largest power of two below n): the left part of every split
    is a perfect subtree, so pairs never straddle it, and the ragged right edge is what gets
    promoted. Iterating keeps a block of thousands of tx_ids free of recursion and of
    per-node function calls.
    """
    if not leaf_inputs:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    level = [sha256(_LEAF_PREFIX + data).digest() for data in leaf_inputs]
    while len(level) > 1:
        paired = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _valid_hashes(path: Sequence[bytes]) -> bool:
    return all(_is_hash(p) for p in path)


def verify_inclusion(
    leaf_input: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove `leaf_input` sits at `leaf_index` (0-based) in
    the tree of `tree_size` leaves whose hash is `root`?"""
    if not (0 <= leaf_index < tree_size) or not _is_hash(root) or not _valid_hashes(path):
        return False
    fn = leaf_index
    sn = tree_size - 1
    r = leaf_hash(leaf_input)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does `path` prove the tree of `second` leaves (hash `second_root`)
    extends the tree of `first` leaves (hash `first_root`)?

    docs/spec/05-chain.md requires 1 <= first <= second; first == second is proven by an empty
    path and equal roots, a case the RFC's algorithm itself does not cover.
    """
    if not (1 <= first <= second) or not _is_hash(first_root) or not _is_hash(second_root):
        return False
    if not _valid_hashes(path):
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
