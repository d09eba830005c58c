"""End-to-end test of docker/compose.yml, run by `make test-docker` after `make image`.

Not a pytest module (pytest collects only test_*.py): it needs a Docker engine, brings up
real containers and takes a couple of minutes. Like CometBFT's test/e2e it treats the
network as a black box, reached only through the published 127.0.0.1 ports and the
docker/compose CLIs:

1. `up -d` the compose file under its own project name (default almoner-e2e, so an
   operator's `almoner` project on the same machine is never touched; its ports must be
   free, though), then wait for the four APIs to answer /healthz;
2. copy genesis.json and the keys out of the keys volume; check that validator-N.key is
   genesis validators[N] and is the node behind port 8101+N, that the key files are owned
   by the image's user with mode 0600, and that the nodes do not run as root;
3. commit a first donation (this gives the time from `up` to the first committed block),
   wait until Docker reports the four containers healthy, commit more;
4. `docker kill` the `platform` node, keep committing through `foundation`;
5. restart it and wait until it reaches the same head (height and block hash) as the
   others; make the `auditor` node's process exit and check that the restart policy
   brings it back; commit once more and check that all four agree;
6. a second `up -d` re-runs the one-shot init, which must reuse the keys and genesis;
7. run `almoner verify --node http://127.0.0.1:8101 --genesis G` on the host: exit 0;
8. always (finally, also on Ctrl-C/SIGTERM): `down -v --remove-orphans`.

It prints one progress line per step and, at the end, the image size and the timings.
Environment: DOCKER (client), ALMONER_IMAGE (default almoner:latest),
ALMONER_E2E_PROJECT (default almoner-e2e), ALMONER_E2E_KEEP=1 to skip the teardown.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx

from almoner.node.audit.client import Client, ClientError
from almoner.node.chain.codec import H
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.keys import load_key_file
from almoner.node.errors import ProtocolError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yml"
WORK = ROOT / "build" / "docker" / "e2e"
DOCKER = os.environ.get("DOCKER", "docker")
IMAGE = os.environ.get("ALMONER_IMAGE", "almoner:latest")
PROJECT = os.environ.get("ALMONER_E2E_PROJECT", "almoner-e2e")
IMAGE_UID = 10001
# Service -> published port; the order is the genesis validators' order.
NODES = {"foundation": 8101, "platform": 8102, "regulator": 8103, "auditor": 8104}
ENTRY = "foundation"  # where the test submits txs and runs verify against
VICTIM = "platform"  # the node that is killed and restarted
RESTARTED = "auditor"  # the node whose process exits, for Docker to restart

T = TypeVar("T")


class E2EError(Exception):
    """A step of the end-to-end test failed."""


class Stopped(BaseException):
    """SIGTERM: unwind through the finally blocks so the network is torn down."""


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


def run(
    args: list[str], *, timeout: float = 120, check: bool = True, quiet: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            args,
            text=True,
            timeout=timeout,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise E2EError(f"`{' '.join(args)}` did not finish in {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise E2EError(f"`{args[0]}` is not installed") from exc
    if check and proc.returncode != 0:
        output = (proc.stdout or "").strip()
        raise E2EError(f"`{' '.join(args)}` exited with {proc.returncode}:\n{output[-3000:]}")
    return proc


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.2) -> T:
    """Poll `probe` until it returns something other than None; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise E2EError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def until(what: str, condition: Callable[[], bool], timeout: float, every: float = 0.2) -> None:
    wait_for(what, lambda: True if condition() else None, timeout, every)


def compose_command() -> list[str]:
    if run([DOCKER, "compose", "version"], check=False).returncode == 0:
        base = [DOCKER, "compose"]
    elif shutil.which("docker-compose"):
        base = ["docker-compose"]
    else:
        raise E2EError("neither `docker compose` (v2) nor docker-compose (v1) is installed")
    return [*base, "-p", PROJECT, "-f", str(COMPOSE_FILE)]


class Network:
    """The compose project under test, reached through the CLIs and 127.0.0.1 ports."""

    def __init__(self) -> None:
        self.compose = compose_command()
        self.tool = " ".join(self.compose[: self.compose.index("-p")])
        self.http = httpx.Client(timeout=3.0)
        self.keys: dict[str, KeyPair] = {}
        self._containers: dict[str, str] = {}

    # -- docker ---------------------------------------------------------------------
    def up(self) -> None:
        run([*self.compose, "up", "-d"], timeout=180)
        self._containers.clear()

    def container(self, service: str) -> str:
        # Cached: `compose ps` is slow (v1) and lists only running containers (v2).
        if service not in self._containers:
            cid = run([*self.compose, "ps", "-q", service]).stdout.strip()
            if not cid:
                raise E2EError(f"service {service} has no container")
            self._containers[service] = cid.splitlines()[0]
        return self._containers[service]

    def healthy(self, service: str) -> bool:
        out = run(
            [DOCKER, "inspect", "--format", "{{.State.Health.Status}}", self.container(service)]
        )
        return out.stdout.strip() == "healthy"

    # -- HTTP -----------------------------------------------------------------------
    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{NODES[service]}"

    def restart_count(self, service: str) -> int:
        out = run([DOCKER, "inspect", "--format", "{{.RestartCount}}", self.container(service)])
        return int(out.stdout.strip())

    def healthz(self, service: str) -> bool:
        try:
            return self.http.get(f"{self.url(service)}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def head(self, service: str) -> tuple[int, str] | None:
        """(height, block_hash) of the node's certified head; (0, "") before block 1."""
        try:
            response = self.http.get(f"{self.url(service)}/v1/head")
        except httpx.HTTPError:
            return None
        if response.status_code == 404:
            return (0, "")
        if response.status_code != 200:
            return None
        doc = response.json()
        return int(doc["header"]["height"]), str(doc["block_hash"])

    def status(self, service: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url(service)}/v1/status")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def peers_all_up(self) -> bool:
        try:
            statuses = [self.status(service) for service in NODES]
        except httpx.HTTPError:
            return False
        return all(
            len(st["peers"]) == 3 and all(p["up"] for p in st["peers"].values()) for st in statuses
        )

    # -- txs ------------------------------------------------------------------------
    def donate(self, donation: str, charity: str = "charity-1", timeout: float = 60) -> int:
        """Record a donation by platform-1 through ENTRY; returns the committed height."""
        body = {
            "donation": donation,
            "donor": H(f"e2e-donor:{donation}".encode()),
            "charity": self.keys[charity].public_key,
            "campaign": None,
            "amount": 1000 + len(donation),
            "currency": "USD",
            "received_at": int(time.time() * 1000),
        }
        deadline = time.monotonic() + timeout
        with Client(self.url(ENTRY), timeout=15) as client:
            tx = client.build("donation.record", self.keys["platform-1"], body)
            while True:
                # Resubmitting the same signed bytes is idempotent: it answers the status.
                try:
                    receipt = client.submit(tx, wait=True)
                    if receipt.get("status") == "committed":
                        return int(receipt["height"])
                except ProtocolError as exc:
                    if exc.code not in ("timeout", "busy"):
                        raise E2EError(f"donation {donation} refused: {exc.code}: {exc}") from exc
                except ClientError as exc:
                    log(f"  (retrying {donation}: {exc})")
                if time.monotonic() > deadline:
                    raise E2EError(f"donation {donation} not committed in {timeout:.0f}s")
                time.sleep(0.5)

    def agree(self, services: list[str], at_least: int = 1) -> tuple[int, str] | None:
        """The common head of `services` if they all report the same one (height >= at_least)."""
        heads = {s: self.head(s) for s in services}
        values = set(heads.values())
        if len(values) == 1:
            only = values.pop()
            if only is not None and only[0] >= at_least:
                return only
        return None


def free(port: int) -> bool:
    """No listener on 127.0.0.1:port (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_keys(net: Network, dest: Path) -> Path:
    """docker cp the keys volume (through the ENTRY container) into dest; returns genesis."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run([DOCKER, "cp", f"{net.container(ENTRY)}:/keys/.", str(dest)])
    for path in dest.glob("*.key"):
        path.chmod(0o600)  # docker cp keeps modes, but be sure the host loader accepts them
    return dest / "genesis.json"


def check_layout(net: Network, keys_dir: Path) -> None:
    genesis = json.loads((keys_dir / "genesis.json").read_text())
    names = [f"validator-{n}" for n in range(4)]
    parties = ["regulator", "platform-1", "platform-2", "charity-1", "charity-2", "charity-3"]
    for name in [*names, *parties]:
        net.keys[name] = load_key_file(keys_dir / f"{name}.key")
    for n, service in enumerate(NODES):
        pub = net.keys[f"validator-{n}"].public_key.hex()
        if genesis["validators"][n]["pubkey"] != pub:
            raise E2EError(f"validator-{n}.key is not genesis validators[{n}]")
        status = net.status(service)
        if status["node"] != pub or not status["validator"]:
            raise E2EError(f"{service} is not validator {n} ({status['node']} != {pub})")
        if len(status["peers"]) != 3:
            raise E2EError(f"{service} has {len(status['peers'])} peers, not 3")
    registered = {p["pubkey"]: p["role"] for p in genesis["parties"]}
    for name in parties:
        role = name.split("-")[0]
        if registered.get(net.keys[name].public_key.hex()) != role:
            raise E2EError(f"{name}.key is not registered in genesis as a {role}")
    cid = net.container(ENTRY)
    listing = run([DOCKER, "exec", cid, "sh", "-c", "stat -c '%u %a %n' /keys/*.key"]).stdout
    for line in listing.splitlines():
        uid, mode, name = line.split(" ", 2)
        if (int(uid), mode) != (IMAGE_UID, "600"):
            raise E2EError(f"{name} is uid {uid} mode {mode}, not uid {IMAGE_UID} mode 600")
    for service in NODES:
        uid = run([DOCKER, "exec", net.container(service), "id", "-u"]).stdout.strip()
        if uid != str(IMAGE_UID):
            raise E2EError(f"{service} runs as uid {uid}, not {IMAGE_UID}")


def scenario(net: Network, timings: dict[str, float]) -> None:
    services = list(NODES)
    try:  # a teardown that just finished may still hold them for a moment
        until("ports 8101-8104 to be free", lambda: all(map(free, NODES.values())), 15, 0.5)
    except E2EError as exc:
        busy = [port for port in NODES.values() if not free(port)]
        raise E2EError(f"127.0.0.1 ports {busy} are in use (another Almoner network?)") from exc

    log(f"{net.tool} up -d (project {PROJECT}, image {IMAGE})")
    t_up = time.monotonic()
    net.up()
    log("up returned; waiting for the four APIs to answer /healthz")
    for service in services:
        until(f"{service} /healthz", partial(net.healthz, service), 120)
    timings["up_to_api"] = time.monotonic() - t_up
    log(f"all four nodes answer /healthz ({timings['up_to_api']:.1f}s after up)")
    try:
        until("every node to see its 3 peers up", net.peers_all_up, 30)
    except E2EError as exc:
        raise E2EError(
            f"{exc}: the nodes cannot reach each other over the compose network "
            "(a firewall filtering bridged traffic? see docker/ensure-docker.sh)"
        ) from exc

    keys_dir = WORK / "keys"
    genesis_path = copy_keys(net, keys_dir)
    for name in ["platform-1", "charity-1"]:
        net.keys[name] = load_key_file(keys_dir / f"{name}.key")
    height = net.donate("E2E-0001")
    timings["up_to_first_block"] = time.monotonic() - t_up
    log(
        f"first donation committed at height {height} "
        f"({timings['up_to_first_block']:.1f}s after up)"
    )

    check_layout(net, keys_dir)
    log(
        "validator-N.key = genesis validators[N] = the node on port 810(N+1); parties "
        f"registered; key files uid {IMAGE_UID} mode 0600; nodes run as uid {IMAGE_UID}"
    )

    for service in services:
        until(f"{service} healthy", partial(net.healthy, service), 120, 1.0)
    timings["up_to_healthy"] = time.monotonic() - t_up
    log(f"Docker reports 4 healthy nodes ({timings['up_to_healthy']:.1f}s after up)")

    for i in range(2, 6):
        height = net.donate(f"E2E-{i:04d}")
    head = wait_for("4 nodes on one head", lambda: net.agree(services, height), 30)
    log(f"5 donations committed; 4 nodes agree on height {head[0]} {head[1][:16]}…")

    metrics = net.http.get(f"{net.url(ENTRY)}/metrics").text
    if "almoner_height" not in metrics:
        raise E2EError("/metrics has no almoner_height")

    victim = net.container(VICTIM)
    run([DOCKER, "kill", victim])
    log(f"docker kill {VICTIM}")
    until(f"{VICTIM} to be down", lambda: not net.healthz(VICTIM), 20)
    live = [s for s in services if s != VICTIM]
    t_kill = time.monotonic()
    for i in range(6, 11):
        height = net.donate(f"E2E-{i:04d}")
    head = wait_for("3 live nodes on one head", lambda: net.agree(live, height), 30)
    log(
        f"5 more donations committed with {VICTIM} down in {time.monotonic() - t_kill:.1f}s; "
        f"3 nodes agree on height {head[0]}"
    )

    run([DOCKER, "start", victim])
    t_restart = time.monotonic()
    log(f"docker start {VICTIM}")
    until(f"{VICTIM} /healthz", partial(net.healthz, VICTIM), 60)
    target = net.head(ENTRY)
    assert target is not None
    until(f"{VICTIM} to catch up to {target[0]}", lambda: net.head(VICTIM) == target, 90)
    timings["catch_up"] = time.monotonic() - t_restart
    log(
        f"{VICTIM} caught up to height {target[0]} {target[1][:16]}… "
        f"in {timings['catch_up']:.1f}s after restart"
    )
    # The restart policy: a node whose process exits (not a `docker kill`, which Docker
    # treats as a manual stop) is started again by Docker itself.
    crash = net.container(RESTARTED)
    restarts = net.restart_count(RESTARTED)
    run([DOCKER, "exec", crash, "sh", "-c", "kill -TERM 1"])
    until(f"Docker to restart {RESTARTED}", lambda: net.restart_count(RESTARTED) > restarts, 30)
    until(f"{RESTARTED} /healthz", partial(net.healthz, RESTARTED), 60)
    log(f"{RESTARTED}'s node process exited; the restart policy brought it back")

    height = net.donate("E2E-0011")
    head = wait_for("4 nodes on one head", lambda: net.agree(services, height), 30)
    log(f"one more donation; 4 nodes agree on height {head[0]}")

    before = sha256_file(genesis_path)
    genesis_hash = net.status(ENTRY)["genesis_hash"]
    net.up()
    # And once more explicitly, to see what init says (a second `up` may or may not rerun
    # an exited one-shot container, depending on the Compose version).
    init_log = run([*net.compose, "run", "--rm", "-T", "init"]).stdout
    after = sha256_file(copy_keys(net, WORK / "keys-again"))
    if before != after or "reusing" not in init_log:
        raise E2EError(f"init did not reuse genesis.json:\n{init_log[-1500:]}")
    until("4 nodes back after the second up", lambda: all(map(net.healthz, services)), 60)
    if net.status(ENTRY)["genesis_hash"] != genesis_hash:
        raise E2EError("the genesis hash changed after a second up")
    head = wait_for("4 nodes on one head", lambda: net.agree(services, height), 30)
    log(
        "a second `up -d` and `run --rm init` reused the keys and genesis.json; "
        f"4 nodes still agree on height {head[0]}"
    )

    verify = ROOT / ".venv" / "bin" / "almoner"
    exe = str(verify) if verify.exists() else "almoner"
    args = [exe, "verify", "--node", net.url(ENTRY), "--genesis", str(genesis_path)]
    log(f"running {' '.join(args[1:])}")
    proc = run(args, timeout=300, check=False, quiet=False)
    if proc.returncode != 0:
        raise E2EError(f"almoner verify exited with {proc.returncode} (0 expected)")
    log("almoner verify: exit 0")


def main() -> int:
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    signal.signal(signal.SIGTERM, on_term)
    timings: dict[str, float] = {}
    ok = False
    net: Network | None = None
    try:
        size = run([DOCKER, "image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout.strip()
        timings["image_mb"] = int(size) / 1e6
        net = Network()
        run([*net.compose, "config", "-q"])
        run([*net.compose, "down", "-v", "--remove-orphans"], timeout=120)  # leftovers
        scenario(net, timings)
        ok = True
    except E2EError as exc:
        log(f"FAILED: {exc}")
    except (KeyboardInterrupt, Stopped):
        log("interrupted")
    except Exception as exc:  # e.g. an HTTP error: still summarise and tear down
        traceback.print_exc()
        log(f"FAILED: unexpected {type(exc).__name__}: {exc}")
    finally:
        if net is not None:
            if not ok:
                logs = run([*net.compose, "logs", "--no-color", "--tail", "25"], check=False)
                print(logs.stdout, flush=True)
            if os.environ.get("ALMONER_E2E_KEEP") == "1":
                log(f"ALMONER_E2E_KEEP=1: leaving project {PROJECT} up")
            else:
                down = run([*net.compose, "down", "-v", "--remove-orphans"], check=False)
                log(f"compose down -v: exit {down.returncode}")
            net.http.close()
    total = time.monotonic() - _STARTED
    print("\n== Docker end-to-end summary ==")
    if "image_mb" in timings:
        print(f"image {IMAGE}: {timings['image_mb']:.1f} MB")
    for key, label in (
        ("up_to_api", "up -> 4 APIs answer /healthz"),
        ("up_to_first_block", "up -> first committed block"),
        ("up_to_healthy", "up -> Docker reports 4 healthy"),
        ("catch_up", "restart -> killed node on the same head"),
    ):
        if key in timings:
            print(f"{label}: {timings[key]:.1f} s")
    print(f"scenario total: {total:.1f} s")
    print("result:", "PASSED" if ok else "FAILED")
    # The plain closing line CI reads: the whole scenario is one test.
    print(f"docker-e2e: {int(ok)} passed, {int(not ok)} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
