"""Deterministic simulation: safety after every step, liveness after the network heals.

Seeds are fixed lists; a failing seed becomes a named case below. The checker runs inside
every step (`consensus.testing.Checker`): agreement, validity, certificate validity and no
honest double-sign. The heights each table decides are summed by
`test_the_suite_decides_at_least_2000_heights`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from almoner.consensus import max_faulty
from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from tests.consensus.sim_byzantine import STRATEGIES
from tests.consensus.sim_support import validator_key
from tests.consensus.simnet import SimConfig, SimResult, simulate

SIZES = (4, 7, 10)
LIVENESS_MS = 20_000  # logical ms (2,000 ticks) to decide 3 heights past the heal

CALM = [
    SimConfig(n=n, seed=seed, heights=100, duplicate=0.05) for n in SIZES for seed in (11, 12, 13)
]
CHAOS: dict[str, Any] = {
    "chaos_ms": 8_000,
    "drop": 0.2,
    "duplicate": 0.1,
    "max_delay_ms": 80,
    "partitions": True,
    "crashes": True,
}
STORMS = [
    SimConfig(n=n, seed=seed, heights=40, liveness_ms=LIVENESS_MS, **CHAOS)
    for n in SIZES
    for seed in (21, 22, 23, 24, 25)
]
BYZANTINE = [
    SimConfig(
        n=n,
        seed=seed,
        heights=30,
        liveness_ms=LIVENESS_MS,
        byzantine={n - 1 - i: strategy for i in range(max_faulty(n))},
        **CHAOS,
    )
    for strategy in STRATEGIES
    for n in SIZES
    for seed in (31, 32, 33, 34)
]

# Odd sizes and several strategies at once, in the harshest weather.
MIXED = [
    SimConfig(
        n=13,
        seed=41,
        heights=20,
        liveness_ms=LIVENESS_MS,
        byzantine={1: "equivocate", 5: "double_vote", 8: "garbage", 12: "malformed"},
        **{**CHAOS, "drop": 0.4, "max_delay_ms": 150, "chaos_ms": 15_000},
    ),
    SimConfig(
        n=5,
        seed=42,
        heights=30,
        liveness_ms=LIVENESS_MS,
        byzantine={0: "split"},
        **{**CHAOS, "drop": 0.3, "chaos_ms": 12_000},
    ),
    SimConfig(
        n=7,
        seed=43,
        heights=30,
        liveness_ms=LIVENESS_MS,
        byzantine={2: "silent", 4: "split"},
        **{**CHAOS, "duplicate": 0.3, "max_delay_ms": 200},
    ),
]


def _name(cfg: SimConfig) -> str:
    kinds = sorted(set(cfg.byzantine.values())) or ["honest"]
    return f"n{cfg.n}-seed{cfg.seed}-{'+'.join(kinds)}"


def _check(cfg: SimConfig, result: SimResult) -> None:
    assert result.violation is None, result.violation
    assert result.live, f"not live within {cfg.liveness_ms} ms of the heal: {result}"
    assert result.decided >= cfg.heights
    byzantine = {validator_key(i) for i in cfg.byzantine}
    assert result.evidence_against <= byzantine  # an honest validator is never accused


@pytest.mark.parametrize("cfg", CALM, ids=_name)
def test_calm_network_decides_every_height(cfg: SimConfig) -> None:
    _check(cfg, simulate(cfg))


@pytest.mark.parametrize("cfg", STORMS, ids=_name)
def test_drops_partitions_and_crashes_then_heal(cfg: SimConfig) -> None:
    result = simulate(cfg)
    _check(cfg, result)
    assert result.heal_ms == cfg.chaos_ms


@pytest.mark.parametrize("cfg", BYZANTINE, ids=_name)
def test_up_to_f_byzantine_validators(cfg: SimConfig) -> None:
    result = simulate(cfg)
    _check(cfg, result)
    if set(cfg.byzantine.values()) == {"double_vote"}:
        assert result.evidence_against == {validator_key(i) for i in cfg.byzantine}


@pytest.mark.parametrize("cfg", MIXED, ids=_name)
def test_mixed_byzantine_strategies(cfg: SimConfig) -> None:
    _check(cfg, simulate(cfg))


def test_the_suite_decides_at_least_2000_heights() -> None:
    assert sum(cfg.heights for cfg in CALM + STORMS + BYZANTINE + MIXED) >= 2000


def test_a_run_is_a_pure_function_of_its_seed() -> None:
    cfg = BYZANTINE[0]
    assert simulate(cfg) == simulate(cfg)


def test_real_ed25519_signatures_in_the_loop() -> None:
    keys = [KeyPair.from_seed(bytes([i + 7]) * 32) for i in range(4)]
    cfg = SimConfig(
        n=4,
        seed=5,
        heights=8,
        crypto=(lambda i: NodeSigner(keys[i]), NodeVerifier()),
        byzantine={3: "double_vote"},
        **CHAOS,
    )
    result = simulate(replace(cfg, chaos_ms=2_000))
    assert result.violation is None and result.live and result.decided >= 8
    assert result.evidence_against == {keys[3].public_key}


# -- negative controls: the checker has teeth ------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", [1, 2])
def test_f_plus_1_colluders_break_agreement(n: int, seed: int) -> None:
    colluders = {n - 1 - i: "split" for i in range(max_faulty(n) + 1)}
    result = simulate(SimConfig(n=n, seed=seed, heights=30, byzantine=colluders))
    assert result.violation is not None and "agreement" in result.violation


BROKEN_LOCK_CASE = SimConfig(
    n=4,
    seed=29,
    heights=40,
    chaos_ms=20_000,
    drop=0.35,
    max_delay_ms=150,
    partitions=True,
    byzantine={3: "split"},
)


def test_a_broken_lock_rule_is_caught_on_a_known_seed() -> None:
    result = simulate(replace(BROKEN_LOCK_CASE, broken_lock=True))
    assert result.violation is not None and "agreement" in result.violation


def test_the_same_seed_is_safe_with_the_real_lock_rule() -> None:
    _check(BROKEN_LOCK_CASE, simulate(BROKEN_LOCK_CASE))
