"""The start-up heap is frozen out of the collector's walks, and the collector still works."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from almoner.node.server.heap import freeze_startup_heap


class Node:
    """A cyclic object, collectable only by the cyclic collector."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_startup_objects_leave_the_walks_and_startup_garbage_is_freed(unfrozen: None) -> None:
    kept = [Node() for _ in range(1_000)]
    garbage = weakref.ref(Node())  # unreachable already: a cycle only gc can free
    assert garbage() is not None

    frozen = freeze_startup_heap()

    assert garbage() is None, "start-up garbage must be freed, not frozen"
    assert frozen >= len(kept)
    walked = {id(obj) for obj in gc.get_objects()}
    assert not any(id(node) in walked for node in kept)


def test_cycles_made_after_the_freeze_are_still_collected(unfrozen: None) -> None:
    freeze_startup_heap()
    later = weakref.ref(Node())
    assert later() is not None
    gc.collect()
    assert later() is None
