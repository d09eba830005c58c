"""Blocking work stays off the event loop: while four validators in this process verify,
execute and commit a 1,000-tx block, the loop keeps turning and /v1/status answers.

The bound is on CPU time spent by the loop's own thread in one step (one callback), which
a loaded machine does not inflate (wall-clock latency on a shared 2-core machine
measures the machine): with the block run on the loop, that step took over 300 ms; off
it, the longest step (an in-process HTTP exchange) takes about 10 ms. Wall-clock figures,
/v1/status latency included, are printed by bench/event_loop.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.server.loadblock import BLOCK_TXS, run_block

MAX_STEP_S = 0.050  # the bound for /v1/status


def test_the_loop_keeps_turning_while_a_1000_tx_block_executes(tmp_path: Path) -> None:
    watch = asyncio.run(run_block(tmp_path))
    assert watch.tx_count == BLOCK_TXS
    assert len(watch.status_latencies) >= 3, "the API answered too rarely to measure"
    assert watch.longest_step < MAX_STEP_S, (
        f"one loop step took {watch.longest_step * 1000:.0f} ms of CPU: {watch.longest_step_was}"
    )
