"""Deterministic simulation of validator set changes (docs/governance.md): adds, removes
and replaces every few heights, interleaved with drops, partitions, crashes and f
Byzantine validators; zero safety violations, certificates checked against the set the
chain says is in force at each height. The negative control applies each change in the
very height that carries it (no delay), and the checker must catch it.

`make test-governance-sim` runs the long table (ALMONER_GOV_SIM_HEIGHTS=260: ≥ 2,000
heights in all); `make test` runs the same table shorter.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from almoner.consensus import max_faulty
from tests.consensus.simnet import SimConfig, Simulation

HEIGHTS = int(os.environ.get("ALMONER_GOV_SIM_HEIGHTS", "60"))
CHAOS: dict[str, Any] = {
    "chaos_ms": 8_000,
    "drop": 0.2,
    "duplicate": 0.1,
    "max_delay_ms": 80,
    "partitions": True,
    "crashes": True,
}
TABLE = [
    SimConfig(
        n=n,
        seed=seed,
        heights=HEIGHTS,
        spare=3,
        change_every=every,
        byzantine={n - 1 - i: strategy for i in range(max_faulty(n))},
        liveness_ms=20_000,
        **CHAOS,
    )
    for n, every in ((4, 5), (7, 7))
    for seed, strategy in ((61, "equivocate"), (62, "double_vote"), (63, "split"), (64, "silent"))
]


@pytest.mark.parametrize("cfg", TABLE, ids=lambda c: f"n{c.n}-seed{c.seed}")
def test_set_changes_are_safe_and_live(cfg: SimConfig) -> None:
    sim = Simulation(cfg)
    result = sim.run()
    assert result.violation is None, result.violation
    assert result.live, result
    assert result.decided >= cfg.heights
    # the set really changed all along: one change per `change_every` decided heights
    assert sim.sets.changes >= cfg.heights // cfg.change_every - 1
    sizes = {len(sim.sets.truth(h)) for h in range(1, cfg.heights)}
    assert min(sizes) >= 4 and len(sizes) > 1


def test_the_table_decides_its_heights() -> None:
    """With ALMONER_GOV_SIM_HEIGHTS=260 the table covers at least 2,000 heights."""
    assert sum(c.heights for c in TABLE) == 8 * HEIGHTS


@pytest.mark.parametrize("seed", [71, 72, 73])
def test_negative_control_changes_applied_without_delay_are_caught(seed: int) -> None:
    """A change applied in the height whose block carries it: the validators ran that
    height with the set they knew, so its certificate does not match the set the chain
    says was in force, and the checker names it."""
    cfg = SimConfig(n=4, seed=seed, heights=60, spare=3, change_every=3, change_delay=0)
    result = Simulation(cfg).run()
    assert result.violation is not None
    assert "bad certificate" in result.violation
