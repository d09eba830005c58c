"""How responsive a node stays while a 1,000-tx block is decided (issue 9).

    python -m bench.event_loop [--runs 3] [--txs 1000]

Four validators run in this process over the in-memory network of tests/server/innet.py,
on real LevelDB stores. The proposer of height 2 holds the block's txs, so the three
others verify every signature and execute the block when its proposal arrives. Printed
per mode, worst of the runs: GET /v1/status latency (wall clock, p50/p99/max, polled
every 10 ms on a validator that is not the proposer), how late a 2 ms sleeper woke
(loop stall), the CPU time of the longest loop step (GC pauses apart) and the longest GC
pause on the loop's thread.

Modes, side by side: "worker thread" is the node as built (blocking work on the store
worker thread); "on the loop" runs the same driver with that work inline, as it was
before. Four nodes share one loop and one GIL here, so the wall-clock figures are an
upper bound for one node in its own process; on a busy machine they include waiting for
a CPU. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from almoner.node.server.driver import Driver
from tests.server.loadblock import LoopWatch, run_block

T = TypeVar("T")


async def _inline(self: Driver, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _one(txs: int) -> LoopWatch:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run_block(Path(tmp), txs))


def measure(runs: int, txs: int, inline: bool) -> list[LoopWatch]:
    original = Driver._off_loop
    if inline:
        Driver._off_loop = _inline  # type: ignore[method-assign]
    try:
        return [_one(txs) for _ in range(runs)]
    finally:
        Driver._off_loop = original  # type: ignore[method-assign]


def report(name: str, watches: list[LoopWatch]) -> None:
    ms = 1000
    status = [x for w in watches for x in w.status_latencies]
    print(
        f"{name:<14} block {statistics.median(w.block_seconds for w in watches):5.2f} s | "
        f"/v1/status p50 {_pct(status, 0.5) * ms:6.1f} p99 {_pct(status, 0.99) * ms:7.1f} "
        f"max {max(status) * ms:7.1f} ms (n={len(status)}) | "
        f"stall max {max(w.max_stall for w in watches) * ms:7.1f} ms | "
        f"longest step {max(w.longest_step for w in watches) * ms:6.1f} ms CPU | "
        f"longest GC {max(w.longest_gc for w in watches) * ms:5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--txs", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.txs}-tx block, 4 validators in one process, {args.runs} runs per mode")
    report("worker thread", measure(args.runs, args.txs, inline=False))
    report("on the loop", measure(args.runs, args.txs, inline=True))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
