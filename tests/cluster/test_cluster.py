"""A real 4-validator network: commits everywhere, survives a crash, halts without quorum."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from almoner.node.errors import ProtocolError
from tests.cluster.harness import Cluster, running_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path / "net", observers=1) as c:
        yield c


def heads_agree(c: Cluster, names: list[str], height: int) -> bool:
    heads = {c.status(n)["height"] for n in names}
    if min(heads) < height:
        return False
    return len({tuple(c.block_hashes(n, height)) for n in names}) == 1


def test_donation_submitted_anywhere_commits_on_all_nodes(cluster: Cluster) -> None:
    for i, name in enumerate(cluster.names):
        with cluster.client(name) as client:
            receipt = client.submit(cluster.donation("platform-1", "charity-1", 100 + i), wait=True)
        assert receipt["status"] == "committed"
        assert receipt["proof"]["tree_size"] >= receipt["proof"]["leaf_index"] + 1
    top = max(cluster.height(n) for n in cluster.names)
    everyone = [*cluster.names, "observer-0"]
    cluster.wait_until(
        lambda: heads_agree(cluster, everyone, top), 30, "identical heads on all nodes"
    )
    with cluster.client("observer-0") as observer:
        funds = observer.funds(cluster.key("charity-1").public_key)["funds"]
    assert sum(f["balance"] for f in funds if f["currency"] == "USD") == 100 + 101 + 102 + 103
    assert cluster.status("observer-0")["validator"] is False


def test_crash_under_load_catch_up_and_no_fork(cluster: Cluster) -> None:
    committed: list[bytes] = []
    stop = threading.Event()
    errors: list[Exception] = []

    def load(node: str) -> None:
        with cluster.client(node) as client:
            while not stop.is_set():
                try:
                    receipt = client.submit(cluster.donation("platform-2", "charity-2"), wait=True)
                    committed.append(receipt["tx_id"])
                except (ProtocolError, httpx.HTTPError) as exc:  # timeouts under a crash are fine
                    errors.append(exc)

    threads = [threading.Thread(target=load, args=(n,)) for n in cluster.names[:2]]
    for thread in threads:
        thread.start()
    try:
        cluster.wait_until(lambda: len(committed) >= 10, 60, "commits before the crash")
        cluster.kill("validator-3")
        before = len(committed)
        cluster.wait_until(
            lambda: len(committed) >= before + 20, 60, "commits with one validator dead"
        )
        cluster.start("validator-3")
        target = cluster.height("validator-0")
        cluster.wait_until(
            lambda: cluster.height("validator-3") >= target, 60, "the restarted node catching up"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Load has stopped: every node must reach the highest head, with identical histories.
    top = max(cluster.height(n) for n in cluster.names)
    cluster.wait_until(lambda: heads_agree(cluster, cluster.names, top), 30, "no fork")
    for name in cluster.names:
        with cluster.client(name) as client:
            seen = [client.tx(tx_id)["receipt"]["height"] for tx_id in committed]
        assert all(h >= 1 for h in seen)
    # Exactly once: every acknowledged tx id appears once in the whole chain.
    with cluster.client("validator-3") as client:
        ids = [t for h in range(1, top + 1) for t in client.block(h)["tx_ids"]]
    assert len(ids) == len(set(ids))
    assert set(committed) <= set(ids)


def test_no_quorum_no_commit_then_resume(cluster: Cluster) -> None:
    with cluster.client("validator-0") as client:
        client.submit(cluster.donation("platform-1", "charity-3"), wait=True)
    assert cluster.stop("validator-2") == 0  # SIGTERM: clean exit, LevelDB closed
    cluster.kill("validator-3")
    height = cluster.height("validator-0")
    with cluster.client("validator-0") as client:
        pending = client.submit(cluster.donation("platform-1", "charity-3"))
    assert pending["status"] == "pending"
    # Safety before liveness: with 2 of 4, nothing may commit, however long we look.
    for _ in range(30):
        assert cluster.height("validator-0") == height
        assert cluster.height("validator-1") == height
        threading.Event().wait(0.1)
    cluster.start("validator-2")
    cluster.wait_until(
        lambda: cluster.height("validator-0") > height, 60, "commits after quorum returns"
    )
    with cluster.client("validator-1") as client:
        cluster.wait_until(
            lambda: client.tx(pending["tx_id"])["status"] == "committed", 30, "the pending tx"
        )
