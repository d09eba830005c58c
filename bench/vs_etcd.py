"""Almoner vs etcd under the same client load, side by side, in one run.

    python -m bench.vs_etcd [--connections 8,64,256] [--seconds 10]

What a platform does: one `POST /v1/txs?wait=commit` per donation, many connections at
once, each body a unique signed `donation.record`. wrk drives a 4-validator devnet
(validator-0) and a 3-member etcd cluster on loopback (the same bytes, base64 in a JSON
put to the leader's `/v3/kv/put`), at each connection count in turn. Printed: committed/s,
p50/p99, the CPU both systems used (cores, from /proc), the ratio Almoner/etcd, and a check
that every acknowledged tx was committed (the head's `log_size` grows by at least the 2xx
answers). Also the batched mode (`/v1/txs/batch`, 500 txs a request) and this machine's
signature ceiling (Ed25519 verifies/s x cores / validators: every validator verifies every
tx). Installs nothing: wrk comes from Debian `wrk`, etcd from `etcd-server` (both
`apt-get install -y wrk etcd-server`); a missing one is reported and its side skipped.
Asserts nothing; every run is bounded by --seconds per phase.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nacl.signing

from almoner.node.chain.codec import H, array_header
from almoner.node.devnet.network import NodeProcesses, create_devnet, free_port
from bench.cluster import donation

ETCD_MEMBERS = 3
BATCH = 500
MSGPACK = {"content-type": "application/msgpack"}

# wrk sends body i of its thread's slice to each request in turn (see write_bodies).
WRK_SCRIPT = r"""
local bodies, index, counter = {}, 0, 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  -- Length-prefixed bodies, read at once: each thread starts its load as soon as its init
  -- returns, so a slow decode here would let the first thread load alone for seconds.
  local path, nthreads = args[1], tonumber(args[2])
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  local pos, n = 1, 0
  while pos <= #data do
    local b1, b2, b3, b4 = data:byte(pos, pos + 3)
    local size = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    if n % nthreads == id - 1 then
      table.insert(bodies, data:sub(pos + 4, pos + 3 + size))
    end
    pos, n = pos + 4 + size, n + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[3]
  local ready = io.open(args[4] .. "." .. id, "w")  -- bodies decoded: the load starts now
  ready:close()
end
function request()
  index = index + 1
  if index > #bodies then index = 1 end
  return wrk.format(nil, nil, nil, bodies[index])
end
"""


@dataclass
class Run:
    requests: int
    non_2xx: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cores: float
    committed: int = 0
    first_cores: float = 0.0  # of `cores`, the first process's: the node taking requests

    @property
    def cpu_ms_per_tx(self) -> float:
        """CPU of the whole cluster per acknowledged request, in ms."""
        return 1000 * self.cores / self.rate if self.rate else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes and their threads, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def parse_wrk(out: str) -> tuple[int, int, float, float, float]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(non.group(1)) if non else 0
    if errors:
        failed += int(errors.group(4))
    # Anchored: "Req/Sec ... 77.50%" also ends in "50%".
    p50 = ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    # "in 10.01s", or "in 1.00m" from a minute on
    took = re.search(r"requests in ([\d.]+(?:us|ms|s|m)),", out).group(1)  # type: ignore[union-attr]
    duration = ms(took) / 1000
    return requests, failed, duration, p50, p99


def start_profile(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy (`pip install py-spy`) sampling one node while wrk runs; None without it."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy not found (pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def top_costs(raw: Path, count: int = 5) -> list[tuple[str, float]]:
    """Share of samples in which each function is on the stack (inclusive), for the
    functions that most often are the innermost frame: where the time goes, with its
    callers' view. Idle samples (the event loop waiting in select) are left out."""
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [f.split(" (")[0] for f in stack.split(";")]
        if len(frames) > 1:
            frames[-1] = f"{frames[-1]} <- {frames[-2]}"
        if not samples.isdigit() or not frames or frames[-1].split(" <- ")[0].endswith("select"):
            continue
        n = int(samples)
        total += n
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + n
    ranked = sorted(leaf, key=lambda name: -leaf[name])[:count]
    return [(name, 100 * leaf[name] / max(total, 1)) for name in ranked]


def run_wrk(
    url: str, bodies: Path, content_type: str, conns: int, seconds: int, pids: list[int]
) -> Run:
    threads = min(2, conns)
    with tempfile.TemporaryDirectory() as tmp:
        script, ready, report = (Path(tmp) / name for name in ("load.lua", "ready", "report"))
        script.write_text(WRK_SCRIPT)
        args = ["-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency"]
        args += ["--timeout", "30s", "-s", str(script), url, "--", str(bodies), str(threads)]
        with (
            report.open("w") as sink,
            subprocess.Popen(
                ["wrk", *args, content_type, str(ready)], stdout=sink, text=True
            ) as wrk,
        ):
            markers = [Path(f"{ready}.{i}") for i in range(1, threads + 1)]
            cpu, first_cpu, wall = cpu_during_load(wrk, markers, pids, seconds + 60)
        out = report.read_text()
    if wrk.returncode:
        raise SystemExit(f"wrk failed ({wrk.returncode}) against {url}:\n{out}")
    try:
        requests, failed, duration, p50, p99 = parse_wrk(out)
    except (AttributeError, ValueError) as exc:
        raise SystemExit(f"wrk gave no figures for {url} ({exc}):\n{out}") from None
    return Run(requests, failed, duration, p50, p99, cpu / wall, first_cores=first_cpu / wall)


def cpu_during_load(
    wrk: subprocess.Popen[str], markers: list[Path], pids: list[int], timeout: float
) -> tuple[float, float, float]:
    """CPU seconds of `pids` (all, and the first) and the wall seconds, from the moment
    every wrk thread is loading (each writes its marker as its init returns) until wrk
    exits: the CPU of the load alone, without wrk's start-up."""
    deadline = time.monotonic() + timeout
    while wrk.poll() is None and not all(m.exists() for m in markers):
        if time.monotonic() > deadline:
            wrk.kill()
            raise SystemExit("wrk did not start its load in time")
        time.sleep(0.005)
    started, cpu_before, first_before = (
        time.perf_counter(),
        cpu_seconds(pids),
        cpu_seconds(pids[:1]),
    )
    try:
        wrk.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        wrk.kill()
        raise SystemExit("wrk ran past its time") from None
    wall = time.perf_counter() - started
    return cpu_seconds(pids) - cpu_before, cpu_seconds(pids[:1]) - first_before, wall


# -- Almoner ---------------------------------------------------------------------------
def head_log_size(url: str) -> int:
    head = httpx.get(f"{url}/v1/head", timeout=10)
    return int(head.json()["header"]["log_size"]) if head.status_code == 200 else 0


def head_height(url: str) -> int:
    return int(httpx.get(f"{url}/v1/status", timeout=10).json()["height"])


def slow_rounds(url: str, first: int, last: int) -> list[tuple[int, int]]:
    """(height, round) of the blocks in first..last decided after round 0: a failed round
    costs at least timeout_propose_ms, so it is what a p99 of a second or more is made of."""
    found: list[tuple[int, int]] = []
    with httpx.Client(timeout=10) as http:
        for height in range(first, last + 1):
            commit = http.get(f"{url}/v1/blocks/{height}").json().get("commit") or {}
            if commit.get("round", 0):
                found.append((height, commit["round"]))
    return found


@contextmanager
def almoner_devnet(root: Path) -> Iterator[tuple[NodeProcesses, list[str]]]:
    net = create_devnet(root, base_port=None)
    procs = NodeProcesses(net)
    procs.start_all()
    try:
        procs.wait_healthy()
        yield procs, list(net.urls.values())
    finally:
        procs.stop_all()


def wait_settled(url: str, at_least: int, timeout: float = 30) -> int:
    """The log size once it reaches `at_least` or stops growing (bounded by timeout)."""
    deadline, last, still = time.monotonic() + timeout, -1, 0
    while time.monotonic() < deadline:
        size = head_log_size(url)
        if size >= at_least:
            return size
        still = still + 1 if size == last else 0
        if still >= 10:
            return size
        last = size
        time.sleep(0.2)
    return head_log_size(url)


def batched(urls: list[str], txs: list[bytes], pids: list[int]) -> tuple[float, float]:
    """Committed tx/s and cores when four clients push batches of BATCH to all validators."""
    start_size = head_log_size(urls[0])
    cpu_before, started = cpu_seconds(pids), time.perf_counter()

    def pusher(index: int) -> None:
        mine = txs[index :: len(urls)]
        with httpx.Client(timeout=60) as http:
            for start in range(0, len(mine), BATCH):
                chunk = mine[start : start + BATCH]
                body = array_header(len(chunk)) + b"".join(chunk)
                for _ in range(200):
                    try:
                        response = http.post(
                            f"{urls[index]}/v1/txs/batch", content=body, headers=MSGPACK
                        )
                        results = response.json().get("results", [])
                    except (httpx.HTTPError, ValueError) as exc:
                        print(f"  batch to {urls[index]} failed ({exc!r}); retrying")
                        results, response = [{"status": "rejected"}], None
                    if (
                        response is not None
                        and response.status_code < 300
                        and not any(r.get("status") == "rejected" for r in results)
                    ):
                        break
                    time.sleep(0.2)  # mempool full or busy: back off, resubmit (idempotent)

    workers = [threading.Thread(target=pusher, args=(i,)) for i in range(len(urls))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    size = wait_settled(urls[0], start_size + len(txs), timeout=120)
    wall = time.perf_counter() - started
    return (size - start_size) / wall, (cpu_seconds(pids) - cpu_before) / wall


# -- etcd ------------------------------------------------------------------------------
@contextmanager
def etcd_cluster(root: Path) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[str]]]:
    peers = [(f"m{i}", free_port(), free_port()) for i in range(ETCD_MEMBERS)]
    initial = ",".join(f"{name}=http://127.0.0.1:{peer}" for name, peer, _ in peers)
    procs = []
    try:
        for name, peer, client in peers:
            log = open(root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
            procs.append(
                subprocess.Popen(
                    [
                        "etcd",
                        "--name",
                        name,
                        "--data-dir",
                        str(root / name),
                        "--listen-peer-urls",
                        f"http://127.0.0.1:{peer}",
                        "--initial-advertise-peer-urls",
                        f"http://127.0.0.1:{peer}",
                        "--listen-client-urls",
                        f"http://127.0.0.1:{client}",
                        "--advertise-client-urls",
                        f"http://127.0.0.1:{client}",
                        "--initial-cluster",
                        initial,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "almoner-bench",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        urls = [f"http://127.0.0.1:{client}" for _, _, client in peers]
        yield procs, [etcd_leader(urls)]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def etcd_leader(urls: list[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for url in urls:
            try:
                status = httpx.post(f"{url}/v3/maintenance/status", json={}, timeout=2).json()
            except (httpx.HTTPError, ValueError):
                continue
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return url
        time.sleep(0.2)
    raise SystemExit("etcd elected no leader in time")


def etcd_bodies(txs: list[bytes]) -> list[bytes]:
    return [
        json.dumps(
            {"key": base64.b64encode(H(raw)).decode(), "value": base64.b64encode(raw).decode()}
        ).encode()
        for raw in txs
    ]


# -- the run ---------------------------------------------------------------------------
def write_bodies(path: Path, bodies: list[bytes]) -> Path:
    """The bodies wrk sends, each after its length (4 bytes, big-endian); on disk before
    the phase starts, so the bench's own writeback (megabytes per phase) does not compete
    with the fsyncs of the system it measures."""
    path.write_bytes(b"".join(len(body).to_bytes(4, "big") + body for body in bodies))
    os.sync()
    return path


def signature_ceiling() -> float:
    key = nacl.signing.SigningKey.generate()
    signed = key.sign(b"x" * 300)
    verify_key, count, started = key.verify_key, 0, time.perf_counter()
    while time.perf_counter() - started < 1.0:
        verify_key.verify(signed)
        count += 1
    rate = count / (time.perf_counter() - started)
    return rate * (os.cpu_count() or 1) / 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", default="8,64,256")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate-guess", type=int, default=3000, help="bodies per second made")
    parser.add_argument("--batched-txs", type=int, default=20_000, help="0 skips the phase")
    parser.add_argument("--skip-etcd", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy validator-0, 1st phase")
    args = parser.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    have_wrk, have_etcd = shutil.which("wrk"), shutil.which("etcd") and not args.skip_etcd
    if not have_wrk:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if not have_etcd and not args.skip_etcd:
        print("etcd not found (apt-get install -y etcd-server): the etcd side is skipped")
    ceiling = signature_ceiling()
    print(f"signature ceiling of this machine: {ceiling:,.0f} tx/s "
          f"(Ed25519 verifies/s x {os.cpu_count()} cores / 4 validators)", flush=True)  # fmt: skip
    results: dict[tuple[str, int], Run] = {}
    per_phase = args.rate_guess * args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with almoner_devnet(root / "net") as (procs, urls):
            devnet = procs.devnet
            chain = devnet.genesis.chain_id
            platform, charity = devnet.key("platform-1"), devnet.key("charity-1").public_key
            total = per_phase * len(conns) + args.batched_txs
            print(f"signing {total:,} donations …", flush=True)
            txs = [donation(chain, platform, charity, n, prefix="w") for n in range(total)]
            pids = [p.pid for p in procs.procs.values()]
            for i, c in enumerate(conns):
                phase = txs[i * per_phase : (i + 1) * per_phase]
                bodies = write_bodies(root / f"almoner-{c}.bodies", phase)
                before, first_height = head_log_size(urls[0]), head_height(urls[0]) + 1
                profile_out = root / "profile.txt"
                spy = start_profile(pids[0], args.seconds, profile_out) if args.profile else None
                args.profile = False  # the first phase only
                run = run_wrk(f"{urls[0]}/v1/txs?wait=commit", bodies, "application/msgpack",
                              c, args.seconds, pids)  # fmt: skip
                run.committed = wait_settled(urls[0], before + run.ok) - before
                last_height = head_height(urls[0])
                if slow := slow_rounds(urls[0], first_height, last_height):
                    print(f"  {len(slow)} of {last_height - first_height + 1} heights took more "
                          f"than one round: {slow[:5]}")  # fmt: skip
                results[("almoner", c)] = run
                if run.requests > len(phase):
                    print(f"  note: wrk sent {run.requests} requests for {len(phase)} bodies; "
                          "raise --rate-guess")  # fmt: skip
                report("almoner", c, run)
                if spy is not None:
                    spy.wait(30)
                    print(f"  validator-0 top costs at {c} connections (self, non-idle samples):")
                    for name, share in top_costs(profile_out):
                        print(f"    {share:5.1f}%  {name}")
            if args.batched_txs:
                rate, cores = batched(urls, txs[per_phase * len(conns) :], pids)
                print(f"almoner batched ({BATCH} txs/request, 4 clients): "
                      f"{rate:,.0f} committed/s, {cores:.2f} cores", flush=True)  # fmt: skip
        if have_etcd:
            (root / "etcd").mkdir()
            with etcd_cluster(root / "etcd") as (eprocs, (leader,)):
                pids = [p.pid for p in eprocs]
                for c in conns:
                    bodies = write_bodies(root / f"etcd-{c}.bodies", etcd_bodies(txs[:per_phase]))
                    run = run_wrk(f"{leader}/v3/kv/put", bodies, "application/json", c,
                                  args.seconds, pids)  # fmt: skip
                    run.committed = run.ok
                    results[("etcd", c)] = run
                    report("etcd", c, run)
    table(results, conns, ceiling)


def report(system: str, conns: int, run: Run) -> None:
    print(
        f"{system} c={conns}: {run.rate:,.0f}/s ok, p50 {run.p50_ms:.1f} ms, "
        f"p99 {run.p99_ms:.1f} ms, {run.cores:.2f} cores "
        f"({run.cpu_ms_per_tx:.2f} ms CPU per tx), {run.non_2xx} non-2xx",
        flush=True,
    )
    if system == "almoner" and run.rate:
        # The node taking every request does more per tx than the others: where the
        # ceiling is (docs/performance.md, "The ceiling at 64 connections").
        first_ms = 1000 * run.first_cores / run.rate
        other_ms = 1000 * (run.cores - run.first_cores) / 3 / run.rate
        print(f"  per tx: validator-0 (takes the requests) {first_ms:.2f} ms CPU, "
              f"each other validator {other_ms:.2f} ms", flush=True)  # fmt: skip


def table(results: dict[tuple[str, int], Run], conns: list[int], ceiling: float) -> None:
    print()
    print("| system | connections | committed/s | p50 | p99 | CPU used | acked | committed |")
    print("|---|---|---|---|---|---|---|---|")
    for c in conns:
        for system in ("etcd", "almoner"):
            run = results.get((system, c))
            if run is not None:
                print(f"| {system} | {c} | {run.rate:,.0f} | {run.p50_ms:.1f} ms | "
                      f"{run.p99_ms:.1f} ms | {run.cores:.2f} cores | {run.ok} | "
                      f"{run.committed} |")  # fmt: skip
    for c in conns:
        a, e = results.get(("almoner", c)), results.get(("etcd", c))
        if a and e and e.rate:
            print(f"ratio Almoner/etcd at {c} connections: {a.rate / e.rate:.2f}")
        if a and a.committed < a.ok:
            print(f"WARNING: at {c} connections {a.ok} acked but log_size grew {a.committed}")
    print(f"signature ceiling: {ceiling:,.0f} tx/s")


if __name__ == "__main__":
    main()
