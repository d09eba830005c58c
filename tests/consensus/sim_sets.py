"""Validator set changes for the simulator: what governance would schedule on the ledger.

Every `every` heights the block decided at that height carries one change (cycling add,
remove, replace), in force `delay` heights later (the contract's SET_CHANGE_DELAY is 2).
Changes keep the rules the contract enforces: never below 4 validators, and they never
remove a Byzantine validator or add so many honest ones that the Byzantine ones exceed
f of the new set. `truth(h)` is the set the chain says is in force at h (what `verify`
checks certificates against); `known(h, decided)` is what a node that has decided
`decided` heights can know of it, so a delay of 0 (a change applied at once, in the very
height that carries it) makes the two differ: the negative control.
"""

from __future__ import annotations

from bisect import bisect_right

from almoner.consensus.messages import max_faulty

MIN_VALIDATORS = 4
ACTIONS = ("add", "remove", "replace")


class SetSchedule:
    def __init__(
        self,
        initial: list[bytes],
        spare: list[bytes],
        byzantine: set[bytes],
        every: int,
        delay: int,
    ) -> None:
        self.pool = [*initial, *spare]
        self.byzantine = byzantine
        self.every = every
        self.delay = delay
        # (effective height, height whose block carried the change, keys), by effective
        self.entries: list[tuple[int, int, tuple[bytes, ...]]] = [(1, 0, tuple(initial))]
        self.changes = 0
        self._planned_to = 0

    def _extend(self, height: int) -> None:
        while self.every and self._planned_to + self.every <= height:
            self._planned_to += self.every
            carried = self._planned_to
            current = list(self.entries[-1][2])
            changed = self._change(current, self.changes)
            if changed is not None:
                self.changes += 1
                self.entries.append((carried + self.delay, carried, tuple(changed)))

    def _change(self, keys: list[bytes], k: int) -> list[bytes] | None:
        outside = [key for key in self.pool if key not in keys]
        honest = [key for key in keys if key not in self.byzantine]
        for action in (ACTIONS[k % 3], *ACTIONS):
            if action == "add" and outside:
                return [*keys, outside[k % len(outside)]]
            if action == "remove" and honest and self._safe(len(keys) - 1):
                leaving = honest[k % len(honest)]
                return [key for key in keys if key != leaving]
            if action == "replace" and honest and outside:
                leaving, joining = honest[k % len(honest)], outside[k % len(outside)]
                return [joining if key == leaving else key for key in keys]
        return None

    def _safe(self, size: int) -> bool:
        return size >= MIN_VALIDATORS and len(self.byzantine) <= max_faulty(size)

    def truth(self, height: int) -> list[bytes]:
        self._extend(height)
        effective = [e[0] for e in self.entries]
        return list(self.entries[bisect_right(effective, height) - 1][2])

    def known(self, height: int, decided: int) -> list[bytes]:
        self._extend(height)
        for effective, carried, keys in reversed(self.entries):
            if effective <= height and carried <= decided:
                return list(keys)
        return list(self.entries[0][2])
