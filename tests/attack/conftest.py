"""Attack tests marked `attack` take tens of seconds each: they run in `make test-attack`
(`pytest -m attack`, called by .ci/run), not in `make test`. Deselected, never skipped."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "attack" in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("attack") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
