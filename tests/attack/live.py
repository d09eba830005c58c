"""A live node for attack tests: a real devnet process with tightened limits, plus the two
checks every attack test makes (health answers within a second; commits continue)."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from almoner.node.devnet.network import create_devnet
from almoner.node.errors import AlmonerError
from almoner.node.server.config import CONFIG_NAME, write_config
from tests.cluster.harness import FAST_PARAMS, Cluster, running_cluster


def tighten(root: Path, overrides: dict[str, Any]) -> None:
    """Add config keys to every node of a devnet created under `root`."""
    for home in (root / "nodes").iterdir():
        path = home / CONFIG_NAME
        values = tomllib.loads(path.read_text(encoding="utf-8"))
        values.update(overrides)
        write_config(path, values)


@contextmanager
def attacked_cluster(
    root: Path,
    overrides: dict[str, Any],
    nodes: int = 1,
    observers: int = 0,
    params: dict[str, int] | None = None,
) -> Iterator[Cluster]:
    params = {**FAST_PARAMS, **(params or {})}
    create_devnet(root, nodes=nodes, base_port=None, params=params, observers=observers)
    tighten(root, overrides)
    with running_cluster(root, nodes=nodes, observers=observers) as cluster:
        yield cluster


def assert_healthy_fast(url: str, within_s: float = 1.0) -> float:
    """/healthz answers 200 within `within_s` on a fresh connection; returns the time."""
    started = time.monotonic()
    response = httpx.get(f"{url}/healthz", timeout=within_s)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert took < within_s, f"/healthz took {took:.2f}s"
    return took


def assert_commits(cluster: Cluster, node: str = "validator-0") -> None:
    """A fresh donation from another platform commits (waits for its receipt)."""
    started = time.monotonic()
    try:
        with cluster.client(node) as client:
            receipt = client.submit(cluster.donation("platform-2", "charity-1", 7), wait=True)
    except AlmonerError as exc:
        took = time.monotonic() - started
        report = cluster.report()
        raise AssertionError(f"no commit on {node} ({took:.1f} s): {exc}\n{report}") from exc
    assert receipt["status"] == "committed"
