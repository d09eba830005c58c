"""The persisted state that makes a restart safe against double-signing.

A snapshot, not a log: each save replaces the previous record (one key in the node's
store), and only the newest matters.

It holds what the machine has signed at its current height, its lock, its valid value and
where it is (height, round, step). Older heights are never needed: the machine never signs
below its height. The record is plain ints/str/bytes/lists/dicts so the node can store it
with its canonical msgpack codec unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from almoner.consensus.messages import Message, MessageError, parse_message

RECORD_VERSION = 1
STEPS = ("propose", "prevote", "precommit")
RECORD_KEYS = frozenset(
    {
        "version",
        "height",
        "round",
        "step",
        "decided",
        "locked_round",
        "locked_value",
        "valid_round",
        "valid_value",
        "own",
    }
)


class PersistedStateError(ValueError):
    """A persisted record that cannot be trusted; the node must stop, not guess."""


@dataclass(frozen=True, slots=True)
class PersistedState:
    height: int
    round: int
    step: str
    decided: bool
    locked_round: int
    locked_value: bytes | None
    valid_round: int
    valid_value: bytes | None
    own: tuple[Message, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "height": self.height,
            "round": self.round,
            "step": self.step,
            "decided": self.decided,
            "locked_round": self.locked_round,
            "locked_value": self.locked_value,
            "valid_round": self.valid_round,
            "valid_value": self.valid_value,
            "own": [m.to_map() for m in self.own],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PersistedState:
        if not isinstance(record, Mapping) or set(record) != RECORD_KEYS:
            raise PersistedStateError("consensus record keys differ from version 1's")
        if record["version"] != RECORD_VERSION:
            raise PersistedStateError(f"unknown consensus record version {record['version']!r}")
        if record["step"] not in STEPS:
            raise PersistedStateError(f"unknown step {record['step']!r}")
        try:
            own = tuple(parse_message(m) for m in record["own"])
        except (MessageError, TypeError) as exc:
            raise PersistedStateError(f"a persisted own message is malformed: {exc}") from exc
        state = cls(
            height=record["height"],
            round=record["round"],
            step=record["step"],
            decided=record["decided"],
            locked_round=record["locked_round"],
            locked_value=record["locked_value"],
            valid_round=record["valid_round"],
            valid_value=record["valid_value"],
            own=own,
        )
        if any(m.height != state.height for m in own):
            raise PersistedStateError("a persisted own message is for another height")
        return state
