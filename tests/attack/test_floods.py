"""Findings 1, 6 and 7 of issue 14 at full size against a live node (make test-attack):
a platform floods the mempool with valid txs in maximal batches, and then twenty clients
read the whole chain at once. Health answers within a second throughout, the flooder hits
its quota while another platform and the regulator get through, and memory stays bounded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from almoner.node.chain.codec import array_header
from almoner.node.chain.tx import encode_tx, make_tx
from tests.attack.live import assert_commits, attacked_cluster
from tests.cluster.harness import Cluster

ATTACKER = "127.0.0.2"
MSGPACK = {"content-type": "application/msgpack"}


WATCHER = """
import sys, time, httpx
url, latencies = sys.argv[1], []
with httpx.Client(timeout=30) as client:
    while not sys.stdin.closed:
        started = time.monotonic()
        status = client.get(url + "/healthz").status_code
        latencies.append(time.monotonic() - started if status == 200 else 99.0)
        time.sleep(0.02)  # dense enough that even a short attack gets many samples
        import select
        if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.read(1):
            break
print(" ".join(f"{x:.4f}" for x in latencies))
"""


@contextmanager
def health_watch(url: str) -> Iterator[list[float]]:
    """Polls /healthz from 127.0.0.1 in a separate process (so that this process's own
    work, signing and parsing, cannot delay it) while the block runs."""
    latencies: list[float] = []
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield latencies
    finally:
        out, _ = watcher.communicate(timeout=60)
        latencies.extend(float(x) for x in out.split())


def peak_rss_mb(cluster: Cluster) -> float:
    pid = cluster.procs.procs["validator-0"].pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def in_parallel(count: int, job: Callable[[int], None]) -> None:
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(job, range(count)))


@pytest.mark.attack
def test_floods_and_large_reads_leave_the_node_responsive(tmp_path: Path) -> None:
    limits = {"mempool_max_txs": 8000, "mempool_max_per_party": 1000, "rate_limit": "1000/second"}
    # Small blocks: the pool drains slower than a batch fills it, so the quota is met.
    with attacked_cluster(tmp_path, limits, params={"max_block_txs": 50}) as cluster:
        url = cluster.url("validator-0")
        attacker = httpx.Client(transport=httpx.HTTPTransport(local_address=ATTACKER), timeout=60)
        batches = [
            [cluster.donation("platform-1", "charity-1", 1) for _ in range(2000)] for _ in range(3)
        ]
        with health_watch(url) as latencies:
            busy = 0
            for raws in batches:  # 3 x 2,000 valid donations from one platform
                response = attacker.post(
                    f"{url}/v1/txs/batch",
                    content=array_header(len(raws)) + b"".join(raws),
                    headers=MSGPACK,
                )
                assert response.status_code == 200, response.text[:500]
                results = response.json()["results"]
                busy += sum(r.get("error", {}).get("code") == "busy" for r in results)
            suspend = make_tx(
                cluster.chain_id,
                "party.suspend",
                cluster.key("regulator"),
                {"party": cluster.key("platform-1").public_key, "reason": "flooding"},
                1,
            )
            with cluster.client("validator-0") as client:
                assert_commits(cluster)  # platform-2 gets through
                assert client.submit(encode_tx(suspend), wait=True)["status"] == "committed"

            statuses: list[int] = []

            def read_all(i: int) -> None:
                accept = "application/msgpack" if i % 2 else "application/json"
                with httpx.Client(
                    transport=httpx.HTTPTransport(local_address=ATTACKER), timeout=120
                ) as reader:
                    response = reader.get(
                        f"{url}/v1/blocks", params={"from": 1, "limit": 1000},
                        headers={"accept": accept},
                    )  # fmt: skip
                    statuses.append(response.status_code)
                    if response.status_code != 200:
                        assert response.json()["error"]["code"] == "busy"
                        assert int(response.headers["retry-after"]) >= 1

            in_parallel(20, read_all)
            assert_commits(cluster)
        attacker.close()
        print(f"healthz max {max(latencies):.3f}s over {len(latencies)} polls; busy {busy}")
        print(f"node peak RSS {peak_rss_mb(cluster):.0f} MiB")
        assert busy > 0, "the flooder met its quota"
        assert statuses.count(200) >= 4 and set(statuses) <= {200, 503}, statuses
        assert len(latencies) > 10 and max(latencies) < 1.0
        assert peak_rss_mb(cluster) < 1024
