"""The node's own supervision (`/v1/supervision/*`, /metrics) on the explorer's real chain,
served by the real node process: it must say exactly what `almoner supervise --json` says
when run against the same node, and label itself as that node's computation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from almoner.node.chain.supervision.rules import ALL_RULES
from tests.explorer.conftest import RunningNode

RULES = [rule.name for rule in ALL_RULES]


def analysed(node: RunningNode, timeout: float = 60) -> dict[str, Any]:
    """The first signals page once the node has analysed its whole chain."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(f"{node.url}/v1/supervision/signals").json()
        if body["computed_by"]["complete"] and body["computed_by"]["height"] > 0:
            return body
        time.sleep(0.1)
    raise AssertionError("the node did not finish analysing its chain")


def cli_supervise(node: RunningNode, *window: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "almoner.cli",
            "supervise",
            "--node",
            node.url,
            "--genesis",
            str(node.chain.genesis_path),
            "--jobs",
            "0",
            "--json",
            *window,
        ],
        check=True,
        capture_output=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def all_items(node: RunningNode, route: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{node.url}/v1/supervision/{route}", params=query).json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
def cli(node: RunningNode) -> dict[str, Any]:
    analysed(node)
    return cli_supervise(node)


def test_the_node_says_what_supervise_says_on_the_same_chain(
    node: RunningNode, cli: dict[str, Any]
) -> None:
    first = analysed(node)
    by = first["computed_by"]
    status = httpx.get(f"{node.url}/v1/status").json()
    assert by["node"] == status["node"]
    assert by["height"] == node.chain.height == cli["head"]["height"]
    assert by["block_hash"] == cli["head"]["block_hash"]
    assert by["error"] is None
    assert "almoner supervise" in first["trust"]["en"]
    assert "almoner supervise" in first["trust"]["zh"] and "本节点" in first["trust"]["zh"]
    # The chain holds planted cases: overhead above the limit, unconfirmed donations.
    assert cli["counts"]["overhead_above_limit"] == 3
    assert cli["counts"]["unconfirmed_donation"] > 0
    assert first["counts"] == {rule: cli["counts"].get(rule, 0) for rule in RULES}
    assert len(first["items"]) == 50 and first["next_cursor"]
    # Paged in sevens or all at once: the same list, item for item, as the CLI's.
    assert all_items(node, "signals", limit=7) == cli["signals"]
    assert all_items(node, "signals", limit=500) == cli["signals"]
    assert all_items(node, "scores", limit=3) == cli["scores"]


def test_filters(node: RunningNode, cli: dict[str, Any]) -> None:
    overhead = all_items(node, "signals", rule="overhead_above_limit")
    assert overhead == [s for s in cli["signals"] if s["rule"] == "overhead_above_limit"]
    assert len(overhead) == 3
    high = all_items(node, "signals", severity="high")
    assert high == [s for s in cli["signals"] if s["severity"] == "high"]
    charity = node.chain.keys["charity-1"].public_key.hex()
    mine = all_items(node, "signals", party=charity)
    assert mine and mine == [s for s in cli["signals"] if s["party"] == charity]
    scores = all_items(node, "scores", party=charity)
    assert scores and scores == [s for s in cli["scores"] if s["party"] == charity]
    both = all_items(node, "signals", rule="unconfirmed_donation", severity="info")
    assert both == []
    # Dates as the CLI takes them: the node's window is the CLI's window.
    window = cli_supervise(node, "--from", "2026-09-01", "--to", "2026-10-01")
    september = all_items(node, "signals", **{"from": "2026-09-01", "to": "2026-10-01"})
    assert september == window["signals"]
    assert 0 < len(september) < len(cli["signals"])
    assert (
        all_items(node, "scores", **{"from": "2026-09-01", "to": "2026-10-01"})
        == (window["scores"])
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rule": "no_such_rule"}, "rule"),
        ({"severity": "urgent"}, "severity"),
        ({"party": "zz"}, "party"),
        ({"party": "AB" * 32}, "party"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-10-01", "to": "2026-09-01"}, "to"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "²"}, "limit"),
    ],
)
def test_bad_parameters_are_invalid_field(
    node: RunningNode, params: dict[str, str], field: str
) -> None:
    for route in ("signals", "scores"):
        if route == "scores" and field in ("rule", "severity"):
            continue
        response = httpx.get(f"{node.url}/v1/supervision/{route}", params=params)
        assert response.status_code == 400, (route, params, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_field"
        assert error["details"]["field"] == field


def test_metrics_count_signals_by_rule(node: RunningNode, cli: dict[str, Any]) -> None:
    text = httpx.get(f"{node.url}/metrics").text
    series = {}
    for line in text.splitlines():
        if line.startswith("almoner_supervision_open_signals{"):
            labels, value = line.rsplit(" ", 1)
            series[labels.split('"')[1]] = float(value)
    assert series == {rule: float(cli["counts"].get(rule, 0)) for rule in RULES}
    assert series["disbursement_without_evidence"] == 0  # every rule listed, 0 included
    assert f"almoner_supervision_height {node.chain.height}" in text.splitlines()


def test_the_page_refuses_bad_filters_without_a_500(node: RunningNode) -> None:
    for query in ("rule=no_such_rule", "severity=urgent", "cursor=!!!"):
        response = httpx.get(f"{node.url}/regulator/signals?{query}")
        assert response.status_code == 404, query
        assert "text/html" in response.headers["content-type"]
    assert httpx.get(f"{node.url}/regulator/signals?rule=&severity=").status_code == 200
