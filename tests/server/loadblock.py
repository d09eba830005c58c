"""A 1,000-tx block decided by four in-process validators, with the event loop watched.

Shared by the latency test (tests/server/test_event_loop.py) and its bench
(bench/event_loop.py): the proposer of height 2 holds 1,000 donations the others have
never seen, so every other validator verifies 1,000 signatures and executes the block
when the proposal arrives, then all four commit it. Meanwhile one task measures how late
the loop wakes it (the loop's stalls) and another times GET /v1/status on a validator
that is not the proposer.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from almoner.consensus import proposer_index
from almoner.node.chain.store import LevelStore
from tests.localchain import Workload, local_genesis
from tests.server.innet import FAST_PARAMS, running

BLOCK_TXS = 1000
SAMPLE_EVERY_S = 0.002
STATUS_EVERY_S = 0.01


@dataclass
class LoopWatch:
    """`stalls`: how late each wake-up of a sampling task was (wall clock, so it includes
    waiting for the CPU and for the GIL); `busy`: CPU time the loop's thread itself spent
    between two wake-ups, i.e. how long the loop ran other work without yielding (this
    does not grow when the machine is loaded, only when the loop does blocking work);
    `longest_step`: the CPU time of the longest single callback (one step of one task),
    which is what blocking work on the loop makes long. With four nodes and their HTTP
    clients in one loop, a turn runs the steps of all of them, so it is several times
    what one node's loop would do; a single step is one node's work."""

    stalls: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    longest_step: float = 0.0
    longest_step_was: str = ""
    longest_gc: float = 0.0
    status_latencies: list[float] = field(default_factory=list)
    block_seconds: float = 0.0
    tx_count: int = 0

    @property
    def max_stall(self) -> float:
        return max(self.stalls, default=0.0)

    @property
    def max_busy(self) -> float:
        return max(self.busy, default=0.0)

    @property
    def max_status(self) -> float:
        return max(self.status_latencies, default=0.0)


async def _sample_stalls(watch: LoopWatch, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started, cpu = time.perf_counter(), time.thread_time()
        await asyncio.sleep(SAMPLE_EVERY_S)
        watch.stalls.append(time.perf_counter() - started - SAMPLE_EVERY_S)
        watch.busy.append(time.thread_time() - cpu)


def _resumes_at(handle: asyncio.events.Handle) -> str:
    """Which task a callback steps, and where its coroutine stands (for the message)."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(handle)[:200]
    frame = task.get_coro().cr_frame  # type: ignore[union-attr]
    line = f"{frame.f_code.co_qualname}:{frame.f_lineno}" if frame is not None else "done"
    return f"{task.get_name()} at {line}"


@contextlib.contextmanager
def timing_steps(watch: LoopWatch) -> Iterator[None]:
    """Record the CPU time of every loop callback while active (test instrumentation).

    A full garbage collection runs in whichever thread allocates when it falls due and
    scans the whole heap (in a test process: pytest's too); it is not work the node put
    on the loop, so it is measured apart (`longest_gc`) and not counted in a step.
    """
    original = asyncio.events.Handle._run
    loop_thread = threading.get_ident()
    gc_spent = [0.0]
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if threading.get_ident() != loop_thread:
            return
        if phase == "start":
            gc_started[0] = time.thread_time()
        else:
            pause = time.thread_time() - gc_started[0]
            gc_spent[0] += pause
            watch.longest_gc = max(watch.longest_gc, pause)

    def timed(handle: asyncio.events.Handle) -> None:
        where = _resumes_at(handle)
        started, gc_before = time.thread_time(), gc_spent[0]
        try:
            original(handle)
        finally:
            spent = time.thread_time() - started - (gc_spent[0] - gc_before)
            if spent > watch.longest_step:
                watch.longest_step = spent
                watch.longest_step_was = f"{where} -> {_resumes_at(handle)}"

    asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]
    gc.callbacks.append(on_gc)
    try:
        yield
    finally:
        gc.callbacks.remove(on_gc)
        asyncio.events.Handle._run = original  # type: ignore[method-assign]


async def run_block(tmp: Path, txs: int = BLOCK_TXS) -> LoopWatch:
    genesis, keys = local_genesis(4, params={**FAST_PARAMS, "timeout_propose_ms": 5000})
    work = Workload(genesis, keys)
    raws = [work.donation(amount=1 + i) for i in range(txs)]
    watch = LoopWatch()
    async with running(genesis, keys.validators, tmp) as net:
        for i in range(4):
            await net.start(i, LevelStore(tmp / f"v{i}"))
        await net.wait_for(lambda: min(net.heights().values()) >= 1, 30, "height 1")
        proposer = proposer_index(2, 0, 4)
        observer = (proposer + 1) % 4
        mempool = net.nodes[proposer].runtime.mempool
        for raw in raws:  # admitted here only: the others see these txs first in the proposal
            mempool.add(raw)
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_stalls(watch, stop))
        url = net.nodes[observer].url + "/v1/status"

        async def poll_status() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                response = await net.client.get(url)
                watch.status_latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise AssertionError(f"/v1/status answered {response.status_code}")
                await asyncio.sleep(STATUS_EVERY_S)

        poller = asyncio.create_task(poll_status())
        started = time.perf_counter()
        with timing_steps(watch):
            await net.wait_for(lambda: min(net.heights().values()) >= 2, 120, "the big block")
            watch.block_seconds = time.perf_counter() - started
            stop.set()
            await asyncio.gather(sampler, poller)
        block = net.nodes[observer].runtime.ledger.block_at(2)
        watch.tx_count = len(block["txs"]) if block else 0
    return watch
