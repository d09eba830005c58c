"""Answers that only governance can change, kept across heads.

The validator set and the protocol version in force at a height are asked for each
admitted tx, each p2p frame and each step of a height, and each answer is a reverse
LevelDB scan. They change only when a committed block writes a set change or an upgrade,
so the ledger keeps them until such a commit, not just for one head.

Commits run on the store worker thread while the event loop reads. Each answer is tagged
with the generation read before its scan, and a commit bumps the generation after its
write: an answer whose scan may have raced a governance commit is never served again. A
read that overlaps the commit may still see the chain as it was just before it, exactly
as if it had run a moment earlier.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar, cast

from almoner.node.chain import schema

T = TypeVar("T")

GOVERNED_PREFIXES = (schema.VALIDATORS, schema.UPGRADE)
MAX_ENTRIES = 64


class GovernanceCache:
    def __init__(self) -> None:
        self._generation = 0
        self._entries: dict[Hashable, tuple[int, object]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        generation = self._generation
        hit = self._entries.get(key)
        if hit is not None and hit[0] == generation:
            return cast(T, hit[1])  # stored by `compute` for this key
        value = compute()
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (generation, value)
        return value

    def committed(self, written: Iterable[bytes]) -> None:
        """After a commit's write: forget every answer if it touched governance state."""
        if any(key.startswith(GOVERNED_PREFIXES) for key in written):
            self._generation += 1
