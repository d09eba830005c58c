"""Keeping CPython's cyclic garbage collector off a node's start-up heap.

Before it serves, a node builds about 90,000 objects that live as long as the process:
the FastAPI app with its OpenAPI and pydantic models, the explorer, the imported modules.
A full (generation 2) collection walks every one of them with the event loop stopped:
about 60 ms on the 2-core bench machine. Under load enough objects survive to start one
now and then (on validator-0, one to three per 10-second bench run, 87 to 91 ms each).
Each is a pause for every client waiting on that validator and a late vote for its peers
(p99 at 8 connections: 110-150 ms with them, 60-90 ms without; docs/performance.md,
seventh round). `gc.freeze()` moves the start-up objects into the permanent generation,
which collections skip; they were never going to be freed, so nothing is lost.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("almoner.heap")


def freeze_startup_heap() -> int:
    """Collect start-up's garbage first (so it is freed, not frozen), then freeze the
    rest; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%d start-up objects moved out of the garbage collector's walks", frozen)
    return frozen
