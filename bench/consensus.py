"""Decided heights per second of pure consensus work, with real Ed25519 on every message.

Runs `consensus.testing` on a calm network (no faults, 1-40 ms simulated delays) with the
node's signer and verifier, so the figure is the CPU cost of the state machine plus signing
and verifying every proposal and vote -- what a validator spends per height besides
blocks, storage and the network. Messages per height counts deliveries.

    .venv/bin/python bench/consensus.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from tests.consensus.simnet import SimConfig, simulate

HEIGHTS = {4: 2000, 7: 600, 10: 300, 31: 50}


def run(n: int, heights: int) -> tuple[float, float, float]:
    keys = [KeyPair.from_seed(i.to_bytes(32, "big")) for i in range(1, n + 1)]
    verifier = NodeVerifier()
    cfg = SimConfig(
        n=n,
        seed=n,
        heights=heights,
        crypto=(lambda i: NodeSigner(keys[i]), verifier),
    )
    started = time.perf_counter()
    result = simulate(cfg)
    elapsed = time.perf_counter() - started
    if result.violation is not None or result.decided < heights:
        raise SystemExit(f"n={n}: the run failed: {result}")
    return result.decided / elapsed, result.delivered / result.decided, elapsed


def main() -> None:
    quick = "--quick" in sys.argv
    print("all n validators run in this one process; heights/s is for the whole network")
    header = f"{'n':>3} {'heights':>8} {'heights/s':>10} {'msgs/height':>12} {'seconds':>8}"
    print(f"{header} {'cpu ms/height/validator':>24}")
    for n, full in HEIGHTS.items():
        heights = max(3, full // 10) if quick else full
        rate, per_height, elapsed = run(n, heights)
        per_validator = 1000 / rate / n
        print(
            f"{n:>3} {heights:>8} {rate:>10.1f} {per_height:>12.0f} {elapsed:>8.1f}"
            f" {per_validator:>24.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
