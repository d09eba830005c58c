"""A 4-validator devnet on this machine under batch load from this (separate) process.

    python bench/cluster.py [--txs 20000] [--batch 500]

Prints committed tx/s at saturation, commit latency p50/p99 at low load and under
saturation (sampled with ?wait=commit), and each node's peak RSS. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from almoner.node.audit.client import Client
from almoner.node.chain.codec import H, array_header
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.devnet.network import NodeProcesses, create_devnet

PARAMS = {
    "timeout_propose_ms": 1000,
    "timeout_prevote_ms": 500,
    "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250,
    "max_block_txs": 2000,
}


def donation(chain: str, key: KeyPair, charity: bytes, n: int, prefix: str = "b") -> bytes:
    """The n-th unique signed donation.record of a bench run (the same shape in every bench)."""
    body = {
        "donation": f"{prefix}{n}",
        "donor": H(b"%d" % n),
        "charity": charity,
        "campaign": None,
        "amount": 1000 + n % 500,
        "currency": "CNY",
        "received_at": 1_700_000_000_000,
    }
    return encode_tx(make_tx(chain, "donation.record", key, body, n))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def log_size(url: str) -> int:
    head = httpx.get(f"{url}/v1/head", timeout=10)
    return int(head.json()["header"]["log_size"]) if head.status_code == 200 else 0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--low", type=int, default=50, help="txs for the low-load latency")
    parser.add_argument("--paced-rate", type=int, default=600, help="tx/s of the paced phase")
    parser.add_argument("--paced-seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net = create_devnet(Path(tmp) / "net", base_port=None, params=PARAMS)
        procs = NodeProcesses(net)
        procs.start_all()
        try:
            procs.wait_healthy()
            run(net, procs, args)
        finally:
            procs.stop_all()


def paced_phase(urls: list[str], txs: list[bytes], rate: int) -> list[float]:
    """Submit txs at a steady `rate` (batches of 20, round-robin over the nodes) and time
    each batch's last tx from submission to commit: latency when the network keeps up."""
    batch = 20
    interval = batch / rate
    latencies: list[float] = []
    pending: list[tuple[float, bytes, int]] = []
    with httpx.Client(timeout=30) as http:
        next_at = time.perf_counter()
        for number, start in enumerate(range(0, len(txs), batch)):
            chunk = txs[start : start + batch]
            url = urls[number % len(urls)]
            sent = time.perf_counter()
            http.post(f"{url}/v1/txs/batch", content=array_header(len(chunk)) + b"".join(chunk),
                      headers={"content-type": "application/msgpack"})  # fmt: skip
            pending.append((sent, H(chunk[-1]), number % len(urls)))
            next_at += interval
            while pending and time.perf_counter() < next_at:
                sent_at, tx_id, node = pending[0]
                status = http.get(f"{urls[node]}/v1/txs/{tx_id.hex()}").json().get("status")
                if status == "committed":
                    latencies.append(time.perf_counter() - sent_at)
                    pending.pop(0)
                else:
                    break
            time.sleep(max(0.0, next_at - time.perf_counter()))
        deadline = time.perf_counter() + 60
        for sent_at, tx_id, node in pending:
            while time.perf_counter() < deadline:
                if (
                    http.get(f"{urls[node]}/v1/txs/{tx_id.hex()}").json().get("status")
                    == "committed"
                ):
                    latencies.append(time.perf_counter() - sent_at)
                    break
                time.sleep(0.01)
    return latencies


def run(net: object, procs: NodeProcesses, args: argparse.Namespace) -> None:
    devnet = procs.devnet
    urls = list(devnet.urls.values())
    chain = devnet.genesis.chain_id
    platform = devnet.key("platform-1")
    charity = devnet.key("charity-1").public_key
    total = args.txs + args.low + 1000 + args.paced_rate * args.paced_seconds
    print(f"signing {total:,} txs …", flush=True)
    low = [donation(chain, platform, charity, n) for n in range(args.low)]
    load = [donation(chain, platform, charity, n) for n in range(10_000, 10_000 + args.txs)]
    samples = [donation(chain, platform, charity, n) for n in range(900_000, 901_000)]
    paced = [
        donation(chain, platform, charity, n)
        for n in range(500_000, 500_000 + args.paced_rate * args.paced_seconds)
    ]

    latencies_low = []
    with Client(urls[0]) as client:
        for raw in low:
            started = time.perf_counter()
            client.submit(raw, wait=True)
            latencies_low.append(time.perf_counter() - started)
    print(
        f"low load ({args.low} txs, one at a time, wait=commit): "
        f"p50 {statistics.median(latencies_low) * 1000:.0f} ms, "
        f"p99 {percentile(latencies_low, 0.99) * 1000:.0f} ms",
        flush=True,
    )

    paced_latencies = paced_phase(urls, paced, args.paced_rate)
    if paced_latencies:
        print(
            f"paced load ({args.paced_rate} tx/s for {args.paced_seconds} s, below saturation): "
            f"p50 {statistics.median(paced_latencies) * 1000:.0f} ms, "
            f"p99 {percentile(paced_latencies, 0.99) * 1000:.0f} ms "
            f"({len(paced_latencies)} sampled txs)",
            flush=True,
        )

    start_size = log_size(urls[0])
    stop = threading.Event()
    loaded: list[float] = []

    def sampler(offset: int) -> None:
        """Submit one tx every half second and poll it until committed: latency under
        load is how long a tx queues behind the backlog, so no ?wait=commit time limit."""
        with Client(urls[1 + offset % 3]) as client:
            for raw in samples[offset::3]:
                if stop.is_set():
                    return
                started = time.perf_counter()
                tx_id = client.submit(raw)["tx_id"]
                while not stop.is_set():
                    if client.tx(tx_id)["status"] == "committed":
                        loaded.append(time.perf_counter() - started)
                        break
                    time.sleep(0.02)
                time.sleep(0.5)

    def pusher(index: int) -> None:
        mine = load[index :: len(urls)]
        with httpx.Client(timeout=60) as http:
            for start in range(0, len(mine), args.batch):
                chunk = mine[start : start + args.batch]
                body = array_header(len(chunk)) + b"".join(chunk)
                while True:
                    response = http.post(
                        f"{urls[index]}/v1/txs/batch",
                        content=body,
                        headers={"content-type": "application/msgpack"},
                    )
                    busy = [r for r in response.json()["results"] if r["status"] == "rejected"]
                    if not busy:
                        break
                    time.sleep(0.2)  # mempool full: back off, resubmit (idempotent)

    started = time.perf_counter()
    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(len(urls))]
    samplers = [threading.Thread(target=sampler, args=(i,)) for i in range(3)]
    for thread in [*threads, *samplers]:
        thread.start()
    target = start_size + len(load)
    while log_size(urls[0]) < target and time.perf_counter() - started < 600:
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in [*threads, *samplers]:
        thread.join()
    committed = log_size(urls[0]) - start_size
    print(
        f"saturating load ({len(load):,} txs in batches of {args.batch} to 4 nodes): "
        f"{committed / elapsed:,.0f} committed tx/s over {elapsed:.1f} s"
    )
    if loaded:
        print(
            f"  commit latency under saturation ({len(loaded)} sampled txs, each queued behind "
            f"the backlog): p50 {statistics.median(loaded) * 1000:.0f} ms, "
            f"p99 {percentile(loaded, 0.99) * 1000:.0f} ms"
        )
    for name, proc in procs.procs.items():
        print(f"  {name}: peak RSS {peak_rss_mib(proc.pid):.0f} MiB")


if __name__ == "__main__":
    main()
