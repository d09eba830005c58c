"""A seeded fault schedule: the same seed and duration always give the same faults.

Faults come one at a time, each bounded in time, with a quiet gap after each so that the
run can measure how long commits take to resume. Kinds cycle through a seeded order so
that a run of N faults covers min(N, number of kinds) different kinds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NETWORK = ("partition-2-2", "partition-1-3", "isolate-proposer", "one-way", "loss", "delay")
PROCESS = ("pause", "kill-restart", "clock-skew", "disk-full")
BYZANTINE = ("byz-equivocate", "byz-invalid-block", "byz-replay", "byz-garbage")
KINDS = NETWORK + PROCESS + BYZANTINE
WARMUP_S = 6.0


@dataclass(frozen=True)
class Fault:
    kind: str
    start: float  # seconds after the load started
    length: float  # seconds the fault is held
    target: str  # the node it is aimed at ("" where the kind picks at run time)
    params: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"t+{self.start:5.1f}s {self.kind:<18} {self.length:4.1f}s {self.target} {extra}"


def build_schedule(
    seed: int,
    duration: float,
    names: list[str],
    kinds: tuple[str, ...] = KINDS,
    longest: float | None = None,
) -> list[Fault]:
    """Faults within [WARMUP_S, duration); each fault and its gap fit before the end.

    A fault lasts 2 s to `longest` (default: a fifth of the run, at most a minute).
    """
    rng = random.Random(seed)
    order = list(kinds)
    rng.shuffle(order)
    longest = max(3.0, longest or min(60.0, duration / 5))
    faults: list[Fault] = []
    t = WARMUP_S
    while True:
        kind = order[len(faults) % len(order)]
        length = round(rng.uniform(2.0, longest), 1)
        gap = round(rng.uniform(3.0, 6.0), 1)
        if t + length + gap > duration:
            return faults
        faults.append(Fault(kind, t, length, rng.choice(names), _params(kind, rng, names)))
        t = round(t + length + gap, 1)


def _params(kind: str, rng: random.Random, names: list[str]) -> dict[str, int]:
    if kind == "loss":
        return {"percent": rng.randint(5, 30)}
    if kind == "delay":
        return {"ms": rng.randint(30, 200), "jitter_ms": rng.randint(5, 50)}
    if kind == "clock-skew":
        return {"seconds": rng.choice([-45, -20, 20, 45])}
    if kind == "partition-2-2":
        other = rng.choice(range(1, len(names)))
        return {"with": other}
    if kind == "one-way":
        return {"to": rng.randrange(len(names))}
    if kind == "byz-garbage":
        return {"requests": rng.randint(100, 300)}
    return {}
