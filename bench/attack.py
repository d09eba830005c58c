"""Issue 14's attacks replayed against one local validator; prints what each costs the node.

    python -m bench.attack

For each attack: how long the attacker's request took, the worst /healthz latency seen
from another address while it ran, and the node's peak RSS afterwards. Asserts nothing:
the regression tests in tests/attack/ do; this prints figures to compare across versions
(issue 14 measured, before the fixes: 23-36 s unresponsive and 1.58 GB for the batch of a
million nils; 2.95 GB and 55 s /healthz for 20 concurrent range reads).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from almoner.node.chain.codec import array_header
from tests.attack.live import attacked_cluster
from tests.cluster.harness import Cluster

ATTACKER = "127.0.0.2"
MSGPACK = {"content-type": "application/msgpack"}


def peak_rss_mb(cluster: Cluster) -> float:
    pid = cluster.procs.procs["validator-0"].pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(cluster: Cluster, name: str, attack: Callable[[httpx.Client], None]) -> None:
    url = cluster.url("validator-0")
    worst = 0.0
    stop = threading.Event()

    def watch() -> None:
        nonlocal worst
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.monotonic()
                client.get(f"{url}/healthz")
                worst = max(worst, time.monotonic() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    transport = httpx.HTTPTransport(local_address=ATTACKER)
    started = time.monotonic()
    with httpx.Client(transport=transport, timeout=120) as attacker:
        attack(attacker)
    took = time.monotonic() - started
    stop.set()
    watcher.join()
    print(
        f"{name:<38} attack {took:7.2f} s   worst /healthz {worst * 1000:7.1f} ms"
        f"   node peak RSS {peak_rss_mb(cluster):6.0f} MiB"
    )


def main() -> None:
    limits = {"rate_limit": "100000/second", "max_connections_per_client": 100}
    with tempfile.TemporaryDirectory() as tmp, attacked_cluster(Path(tmp), limits) as cluster:
        url = cluster.url("validator-0")
        million = b"\xdd\x00\x0f\x42\x40" + b"\xc0" * 1_000_000

        def batch_of_nils(client: httpx.Client) -> None:
            client.post(f"{url}/v1/txs/batch", content=million, headers=MSGPACK)

        def deep_nesting(client: httpx.Client) -> None:
            for _ in range(200):
                client.post(f"{url}/v1/txs", content=b"\x91" * 1000 + b"\xc0", headers=MSGPACK)

        def valid_batches(client: httpx.Client) -> None:
            for _ in range(5):
                raws = [cluster.donation("platform-1", "charity-1", 1) for _ in range(2000)]
                body = array_header(len(raws)) + b"".join(raws)
                client.post(f"{url}/v1/txs/batch", content=body, headers=MSGPACK)

        def range_reads(client: httpx.Client) -> None:
            def one(_: int) -> None:
                with httpx.Client(
                    transport=httpx.HTTPTransport(local_address=ATTACKER), timeout=120
                ) as reader:
                    reader.get(f"{url}/v1/blocks", params={"from": 1, "limit": 1000})

            with ThreadPoolExecutor(20) as pool:
                list(pool.map(one, range(20)))

        measure(cluster, "batch of 1,000,000 nils", batch_of_nils)
        measure(cluster, "200 x arrays nested 1000 deep", deep_nesting)
        measure(cluster, "5 x 2000 valid donations (batches)", valid_batches)
        measure(cluster, "20 concurrent GET /v1/blocks (1000)", range_reads)


if __name__ == "__main__":
    main()
