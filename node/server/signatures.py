"""Signature checks of a burst of submissions, on worker threads ahead of admission.

Admission itself is single-threaded (the mempool's pending state is one sequence), but a
tx's signature depends on nothing else: libsodium verifies without holding the GIL, so a
batch's signatures are checked in parallel on both cores while the event loop keeps
serving, and admission then skips them (`Mempool.add(signature_checked=True)`). A tx whose
check failed here is admitted the usual way, which reports its error as before.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from almoner.node.chain.tx import verified_tx_ids

# Below this, handing the work to threads costs more than it saves.
MIN_BURST = 16
WORKERS = 2


@functools.cache
def _executor() -> ThreadPoolExecutor:
    """One pool per process, made on first use (a node that never sees a batch has none)."""
    return ThreadPoolExecutor(WORKERS, thread_name_prefix="almoner-sig")


async def checked_ids(raws: list[bytes]) -> frozenset[bytes]:
    """The ids (H(raw)) of those raw txs whose signatures verify; empty for small bursts."""
    if len(raws) < MIN_BURST:
        return frozenset()
    loop = asyncio.get_running_loop()
    step = -(-len(raws) // WORKERS)
    chunks = [raws[i : i + step] for i in range(0, len(raws), step)]
    found = await asyncio.gather(
        *(loop.run_in_executor(_executor(), verified_tx_ids, chunk) for chunk in chunks)
    )
    return frozenset(tid for ids in found for tid in ids)
