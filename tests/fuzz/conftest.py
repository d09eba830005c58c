"""Fuzzing budget and run counts.

Each fuzz target runs `ALMONER_FUZZ_EXAMPLES` hypothesis examples (default 150: seconds in
`make test`); `make test-attack` runs 3000, and a longer offline run is just a bigger
number. The counts of inputs each target actually tried are printed at the end of the run.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ALMONER_FUZZ_EXAMPLES", "150"))
RUNS: Counter[str] = Counter()

settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("ALMONER_FUZZ_RANDOM") is None,
)
FUZZ = settings.get_profile("fuzz")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RUNS:
        line = ", ".join(f"{name} {count}" for name, count in sorted(RUNS.items()))
        terminalreporter.write_line(f"fuzz inputs tried ({EXAMPLES} examples each): {line}")
