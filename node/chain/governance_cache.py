"""Answers that only governance can change, kept across heads.

The validator set and the protocol version in force at a height are asked for each
admitted tx, each p2p frame and each step of a height, and read from the store each was a
reverse LevelDB scan, for every new height. Both are schedules (each entry holds from its
start height until the next one) that change only when a committed block writes a set
change or an upgrade. So the ledger keeps each schedule whole, in memory, until such a
commit, and answers any height with a bisection.

Commits run on the store worker thread while the event loop reads. Each answer is tagged
with the generation read before its scan, and a commit bumps the generation after its
write: an answer whose scan may have raced a governance commit is never served again. A
read that overlaps the commit may still see the chain as it was just before it, exactly
as if it had run a moment earlier.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from almoner.node.chain import schema
from almoner.node.chain.store import KVReader

T = TypeVar("T")

GOVERNED_PREFIXES = (schema.VALIDATORS, schema.UPGRADE)
MAX_ENTRIES = 64


@dataclass(frozen=True)
class Schedule(Generic[T]):
    """Values by start height: the one in force at a height is the entry with the greatest
    start at or below it (`state.validators_at`, `validator_sets.version_at`)."""

    starts: tuple[int, ...]
    values: tuple[T, ...]

    @classmethod
    def load(cls, reader: KVReader, prefix: bytes, parse: Callable[[bytes], T]) -> Schedule[T]:
        entries = [
            (schema.from_u64(key[len(prefix) :]), parse(raw)) for key, raw in reader.iterate(prefix)
        ]
        return cls(tuple(start for start, _ in entries), tuple(value for _, value in entries))

    def at(self, height: int, default: T) -> T:
        index = bisect_right(self.starts, height) - 1
        return self.values[index] if index >= 0 else default


class GovernanceCache:
    """Values computed from governance state (the two schedules), each kept until a
    commit writes that state; bounded, though the ledger asks for two keys only."""

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
