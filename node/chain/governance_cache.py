"""The validator-set and protocol-version schedules, kept in memory across heads.

The validator set and the protocol version in force at a height are asked for each
admitted tx, each p2p frame and each step of a height, and read from the store each was a
reverse LevelDB scan, for every new height. Both are schedules (each entry holds from its
start height until the next one) that change only when a committed block writes a set
change or an upgrade. So the ledger keeps each schedule whole, in memory, until such a
commit, and answers any height with a bisection.

Commits run on the store worker thread while the event loop reads. Each schedule is tagged
with the generation read before its scan, and a commit bumps the generation after its
write: a schedule whose scan may have raced a governance commit is never served again. A
read that overlaps the commit may still see the chain as it was just before it, exactly
as if it had run a moment earlier.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from almoner.node.chain import schema
from almoner.node.chain.state import decode_record
from almoner.node.chain.store import KVReader
from almoner.node.chain.validator_sets import BASE_VERSION

T = TypeVar("T")

GOVERNED_PREFIXES = (schema.VALIDATORS, schema.UPGRADE)


@dataclass(frozen=True)
class Schedule(Generic[T]):
    """Values by start height: the one in force at a height is the entry with the greatest
    start at or below it (`state.validators_at`, `validator_sets.version_at`)."""

    generation: int
    starts: tuple[int, ...]
    values: tuple[T, ...]

    @classmethod
    def load(
        cls, reader: KVReader, prefix: bytes, parse: Callable[[bytes], T], generation: int
    ) -> Schedule[T]:
        entries = [
            (schema.from_u64(key[len(prefix) :]), parse(raw)) for key, raw in reader.iterate(prefix)
        ]
        starts = tuple(start for start, _ in entries)
        return cls(generation, starts, tuple(value for _, value in entries))

    def at(self, height: int, default: T) -> T:
        index = bisect_right(self.starts, height) - 1
        return self.values[index] if index >= 0 else default


def _validator_set(raw: bytes) -> tuple[bytes, ...]:
    return tuple(decode_record(raw))


def _version(raw: bytes) -> int:
    return int(decode_record(raw)["version"])


class GovernanceCache:
    """The two schedules of one store, each loaded on first use after a governance commit."""

    def __init__(self, reader: KVReader) -> None:
        self._reader = reader
        self._generation = 0
        self._sets: Schedule[tuple[bytes, ...]] | None = None
        self._versions: Schedule[int] | None = None

    def validators(self, height: int) -> list[bytes]:
        self._sets = self._fresh(self._sets, schema.VALIDATORS, _validator_set)
        return list(self._sets.at(height, ()))

    def version(self, height: int) -> int:
        self._versions = self._fresh(self._versions, schema.UPGRADE, _version)
        return self._versions.at(height, BASE_VERSION)

    def committed(self, written: Iterable[bytes]) -> None:
        """After a commit's write: reload both schedules if it touched governance state."""
        if any(key.startswith(GOVERNED_PREFIXES) for key in written):
            self._generation += 1

    def _fresh(
        self, schedule: Schedule[T] | None, prefix: bytes, parse: Callable[[bytes], T]
    ) -> Schedule[T]:
        """`schedule` if no governance commit came since its scan began, else a new scan."""
        generation = self._generation  # read before the scan: see the module docstring
        if schedule is not None and schedule.generation == generation:
            return schedule
        return Schedule.load(self._reader, prefix, parse, generation)
