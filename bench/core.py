"""Ledger core throughput on this machine; prints figures, asserts nothing about speed.

    python bench/core.py [--txs 20000]

- raw Ed25519 verify rate (the ceiling for a single core),
- contract apply throughput for a 70/20/10 mix in blocks of 1,000, committed to LevelDB,
  with signature checks and without,
- Merkle log append rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from almoner.node.audit.verify import signature_pool
from almoner.node.chain.codec import H
from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.chain.tx import verified_tx_ids
from bench.merkle import merkle_append_rate
from bench.workload import make_parties, mixed_txs

BLOCK = 1000


def raw_verify_rate(n: int = 20_000) -> float:
    key = KeyPair.from_seed(H(b"raw"))
    message = b"m" * 400  # about a tx's sign-bytes
    sig = key.sign(message)
    started = time.perf_counter()
    for _ in range(n):
        verify(key.public_key, message, sig)
    return n / (time.perf_counter() - started)


def apply_block(ledger: Ledger, proposer: bytes, chunk: list[bytes], verified: set[bytes]) -> int:
    """Build, check and commit one block of `chunk`; every workload tx must apply."""
    executed = ledger.build_block(
        chunk,
        time_ms=ledger.head.time + 1,
        proposer=proposer,
        max_txs=BLOCK,
        max_bytes=1 << 30,
        verified=verified,
    )
    if executed.rejected:
        raise SystemExit(f"workload tx rejected: {executed.rejected[0][1]!r}")
    ledger.commit(executed, {"bench": True})
    return len(executed.tx_ids)


def apply_rate(txs: list[bytes], check_signatures: bool) -> tuple[float, int]:
    parties = make_parties()
    with tempfile.TemporaryDirectory() as tmp:
        store = LevelStore(Path(tmp) / "db")
        ledger = Ledger(store, parties.genesis)
        # Without signature checks: every tx id counts as already verified.
        verified = set() if check_signatures else {H(raw) for raw in txs}
        started = time.perf_counter()
        committed = 0
        for start in range(0, len(txs), BLOCK):
            chunk = txs[start : start + BLOCK]
            committed += apply_block(ledger, parties.validators[0].public_key, chunk, verified)
        elapsed = time.perf_counter() - started
        store.close()
    return committed / elapsed, committed


def apply_rate_parallel(txs: list[bytes], jobs: int) -> float:
    """Signatures verified by `jobs` worker processes one block ahead of the in-order apply.

    The contract must run in order on one core; signature checks need not, so the node's
    verifier (and here the bench) hands them to other cores and gives the apply the ids
    that verified. A tx that failed there would be checked again, and fail, in order.
    """
    parties = make_parties()
    blocks = [txs[start : start + BLOCK] for start in range(0, len(txs), BLOCK)]
    with tempfile.TemporaryDirectory() as tmp, signature_pool(jobs) as pool:
        store = LevelStore(Path(tmp) / "db")
        ledger = Ledger(store, parties.genesis)
        started = time.perf_counter()
        split = max(1, BLOCK // jobs)
        pending = [
            [
                pool.apply_async(verified_tx_ids, (b[i : i + split],))
                for i in range(0, len(b), split)
            ]
            for b in blocks[:2]
        ]
        for number, chunk in enumerate(blocks):
            if number + 2 < len(blocks):
                ahead = blocks[number + 2]
                pending.append(
                    [
                        pool.apply_async(verified_tx_ids, (ahead[i : i + split],))
                        for i in range(0, len(ahead), split)
                    ]
                )
            verified = {tid for job in pending[number] for tid in job.get()}
            if len(verified) != len(chunk):
                raise SystemExit("a workload signature failed")
            apply_block(ledger, parties.validators[0].public_key, chunk, verified)
        elapsed = time.perf_counter() - started
        store.close()
    return len(txs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--txs", type=int, default=20_000)
    args = parser.parse_args()
    parties = make_parties()
    txs = mixed_txs(parties, args.txs)
    raw = raw_verify_rate()
    with_sigs, n = apply_rate(txs, check_signatures=True)
    without, _ = apply_rate(txs, check_signatures=False)
    workers = max(1, (os.cpu_count() or 1) - 1)  # the apply itself keeps one core busy
    parallel = apply_rate_parallel(txs, jobs=workers)
    merkle = merkle_append_rate()
    print(f"raw Ed25519 verify rate (1 core):      {raw:10,.0f} sig/s")
    print(
        f"contract apply, signatures checked:    {with_sigs:10,.0f} tx/s "
        f"({n:,} txs, blocks of {BLOCK}; {with_sigs:,.0f} sig/s = {with_sigs / raw:.0%} of raw)"
    )
    print(
        f"contract apply, signatures on {workers} worker process(es): {parallel:,.0f} tx/s "
        f"({parallel / raw:.0%} of the raw 1-core verify rate)"
    )
    print(f"contract apply, no signature checks:   {without:10,.0f} tx/s")
    print(f"Merkle log append (LevelDB, synced):   {merkle:10,.0f} leaves/s")


if __name__ == "__main__":
    main()
