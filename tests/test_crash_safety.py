"""SIGKILL a process mid-way through applying blocks; every block is all there or absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from almoner.node.chain import schema
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.merkle_log import MerkleLog
from almoner.node.chain.signing import block_hash, tx_id
from almoner.node.chain.store import LevelStore, MemoryStore, Overlay
from bench.workload import make_parties

ROOT = Path(__file__).resolve().parent.parent
# Delays after the worker reported a commit: spread so kills land in building and in writing.
KILL_DELAYS_S = (0.0, 0.013, 0.031, 0.057, 0.089, 0.11)


def run_and_kill(db: Path, delay: float) -> int:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        reported = 0
        for _ in range(2):  # let it commit a couple of blocks, then kill at an arbitrary moment
            line = proc.stdout.readline()
            if not line:
                proc.kill()
                raise AssertionError(f"worker died: {proc.stderr.read().decode()}")
            reported = int(line)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return reported


def check_store(db: Path) -> int:
    """Reopen and check: head, blocks, certificates, indexes, log and state agree."""
    parties = make_parties()
    store = LevelStore(db)
    try:
        ledger = Ledger(store, parties.genesis)
        head = ledger.head
        assert ledger.block_at(head.height + 1) is None
        assert ledger.certificate_at(head.height + 1) is None
        log = MerkleLog(Overlay(store))
        assert log.size() == head.log_size
        assert log.root() == head.log_root
        # Replaying the committed blocks on a fresh store must give byte-identical state.
        replay = Ledger(MemoryStore(), parties.genesis)
        leaf = 0
        for height in range(1, head.height + 1):
            block, cert = ledger.block_at(height), ledger.certificate_at(height)
            assert block is not None and cert is not None, f"block {height} half there"
            assert cert["block_hash"] == block_hash(block["header"])
            assert ledger.height_of(cert["block_hash"]) == height
            for index, tx in enumerate(block["txs"]):
                assert ledger.tx_location(tx_id(tx)) == {
                    "height": height,
                    "index": index,
                    "leaf_index": leaf,
                }
                leaf += 1
            replay.commit(replay.execute_block(block), cert)
        assert replay.head == head
        expected = dict(replay.store.iterate(b"s/"))
        actual = dict(store.iterate(b"s/"))
        assert actual == expected
        assert dict(store.iterate(b"m/")) == dict(replay.store.iterate(b"m/"))
        return head.height
    finally:
        store.close()


def test_sigkill_never_leaves_half_a_block(tmp_path: Path) -> None:
    db = tmp_path / "ledger"
    last = 0
    for delay in KILL_DELAYS_S:
        reported = run_and_kill(db, delay)
        height = check_store(db)
        # Everything the worker reported as committed survived; nothing beyond one more.
        assert height >= reported
        assert height >= last
        last = height
    assert last > len(KILL_DELAYS_S)
    assert schema.SCHEMA_VERSION == 2
