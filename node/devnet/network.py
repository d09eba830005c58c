"""A local network on one machine: keys, genesis and node homes in one directory.

Layout (the devnet directory of docs/operators.md): D/genesis.json, D/keys/validator-N.key,
D/keys/regulator.key, D/keys/platform-{1,2}.key, D/keys/charity-{1,2,3}.key,
D/nodes/validator-N/ (node.toml, data/, node.log), D/urls.json. Creating it is
idempotent: an existing directory is reused, so a second `make devnet` resumes the
same chain.

While `almoner devnet` runs it supervises its nodes: one node exiting is reported and
the others keep running (a BFT network of four rides out one failure, and the devnet is
where a user watches it do so). Another shell asks the supervisor to stop, start,
restart or kill one node by dropping a request file into D/control/ (`request_action`);
the supervisor owns the child processes, so it alone signals or starts them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import (
    DEFAULT_PARAMS,
    Genesis,
    GenesisParty,
    Validator,
    dump_genesis,
    load_genesis,
)
from almoner.node.chain.keys import load_key_file, write_key_file
from almoner.node.errors import AlmonerError
from almoner.node.server.config import CONFIG_NAME, write_config

CHAIN_ID = "almoner-devnet"
PARTY_FILES = (
    ("regulator", "regulator", "Charity Regulator (demo)", "REG-0001"),
    ("platform-1", "platform", "GiveNow Platform", "PLT-0001"),
    ("platform-2", "platform", "水滴筹 Demo Platform", "PLT-0002"),
    ("charity-1", "charity", "Clean Water Foundation", "CHR-0001"),
    ("charity-2", "charity", "希望小学 Education Trust", "CHR-0002"),
    ("charity-3", "charity", "Food Bank Network", "CHR-0003"),
)


class DevnetError(AlmonerError):
    """The devnet directory or its processes are not in a usable state."""


@dataclass
class Devnet:
    root: Path
    genesis: Genesis
    urls: dict[str, str]

    def home(self, name: str) -> Path:
        return self.root / "nodes" / name

    def key(self, name: str) -> KeyPair:
        return load_key_file(self.root / "keys" / f"{name}.key")


# Ports handed out by free_port: below the kernel's ephemeral range, with room above each
# for the ports a devnet puts after its base (API + i, p2p + 100 + i).
PORTS_FROM = 20_000
ROOM_ABOVE = 200
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and outside the ephemeral range where it can be: a port the
    kernel may give any outgoing connection as its source could be taken in the seconds
    before a node binds it (seen: a validator's API port taken by a peer's connection)."""
    top = _ephemeral_low() - ROOM_ABOVE
    candidates = [random.randrange(PORTS_FROM, top) for _ in range(50)] if top > PORTS_FROM else []
    for port in [*candidates, 0]:  # 0: any port the kernel has free
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            found: int = sock.getsockname()[1]
            return found
    raise OSError(f"no free TCP port on {host}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def create_devnet(
    root: Path,
    nodes: int = 4,
    base_port: int | None = 7101,
    params: dict[str, int] | None = None,
    observers: int = 0,
) -> Devnet:
    """Make (or reuse) a devnet directory; ports are base_port.. or free ones."""
    root = Path(root)
    if (root / "genesis.json").exists():
        genesis = load_genesis(root / "genesis.json")
        urls = json.loads((root / "urls.json").read_text())
        return Devnet(root, genesis, urls)
    (root / "keys").mkdir(parents=True, exist_ok=True)
    names = [f"validator-{i}" for i in range(nodes)]
    keys: dict[str, KeyPair] = {}
    for name in [*names, *(p[0] for p in PARTY_FILES)]:
        keys[name] = KeyPair.generate()
        write_key_file(root / "keys" / f"{name}.key", keys[name], overwrite=True)
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time=int(time.time() * 1000),
        validators=tuple(Validator(name, keys[name].public_key) for name in names),
        parties=tuple(
            GenesisParty(keys[file].public_key, role, title, org)
            for file, role, title, org in PARTY_FILES
        ),
        params={**DEFAULT_PARAMS, **(params or {})},
    )
    dump_genesis(genesis, root / "genesis.json")
    all_nodes = [*names, *(f"observer-{i}" for i in range(observers))]
    ports: list[int] = []
    for i in range(len(all_nodes)):
        port = base_port + i if base_port is not None else free_port()
        if base_port is not None and not _port_free(port):
            port = free_port()
        ports.append(port)
    # Validators' p2p channels get fixed ports too: a node left to pick a free one at
    # start-up could take a port chosen here for another node's API before it binds.
    p2p_ports: dict[str, int] = {}
    for i, name in enumerate(names):
        port = base_port + 100 + i if base_port is not None else free_port()
        while port in ports or port in p2p_ports.values() or not _port_free(port):
            port = free_port()
        p2p_ports[name] = port
    urls = {name: f"http://127.0.0.1:{port}" for name, port in zip(all_nodes, ports, strict=True)}
    peers = {keys[n].public_key.hex(): urls[n] for n in names}
    for name, port in zip(all_nodes, ports, strict=True):
        home = root / "nodes" / name
        write_config(
            home / CONFIG_NAME,
            {
                "genesis": str((root / "genesis.json").resolve()),
                "key": str((root / "keys" / f"{name}.key").resolve()) if name in keys else None,
                "data_dir": "data",
                "listen": f"127.0.0.1:{port}",
                "p2p_listen": f"127.0.0.1:{p2p_ports[name]}" if name in p2p_ports else None,
                "peers": {k: u for k, u in peers.items() if u != urls[name]},
            },
        )
    (root / "urls.json").write_text(json.dumps(urls, indent=2) + "\n")
    return Devnet(root, genesis, urls)


class NodeProcesses:
    """Node processes of a devnet, started with this Python; stopped with SIGTERM."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        home = self.devnet.home(name)
        log = open(home / "node.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "almoner.cli", "node", "run", "--home", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        (home / "node.pid").write_text(f"{self.procs[name].pid}\n")

    def reap(self) -> list[tuple[str, int]]:
        """Nodes that exited since the last call, with their status; forgotten here."""
        ended = [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]
        for name, _ in ended:
            del self.procs[name]
        return ended

    def start_all(self) -> None:
        for name in self.devnet.urls:
            self.start(name)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self.stop(name)

    def wait_healthy(self, names: list[str] | None = None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(self.procs):
            url = self.devnet.urls[name]
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    log = (self.devnet.home(name) / "node.log").read_text(errors="replace")
                    raise DevnetError(f"{name} exited with {proc.returncode}:\n{log[-2000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DevnetError(f"{name} at {url} did not become healthy in {timeout:.0f}s")
                time.sleep(0.1)


ACTIONS = ("stop", "start", "restart", "kill")
CONTROL_DIR = "control"
SUPERVISOR_PID = "devnet.pid"


def node_name(devnet_root: Path, which: str) -> str:
    """`3`, `validator-3` or `observer-0` -> the node's name in urls.json."""
    urls = json.loads((Path(devnet_root) / "urls.json").read_text())
    name = f"validator-{which}" if which.isascii() and which.isdigit() else which
    if name not in urls:
        raise DevnetError(f"no node {which!r} in this devnet (nodes: {', '.join(urls)})")
    return name


class Supervisor:
    """Keeps a devnet's nodes running independently of one another.

    `poll()` is called from the devnet's main loop: it reports nodes that exited (they
    stay down until someone asks for them, or `restart_after` seconds when set) and
    carries out control requests from D/control/, answering each in a .done file.
    """

    def __init__(
        self,
        procs: NodeProcesses,
        say: Callable[[str], None],
        restart_after: float | None = None,
    ) -> None:
        self.procs = procs
        self.say = say
        self.restart_after = restart_after
        self.down: dict[str, float] = {}  # name -> when it went down (monotonic)
        self.held: set[str] = set()  # stopped on request: never restarted automatically
        self.control = procs.devnet.root / CONTROL_DIR

    def __enter__(self) -> Supervisor:
        self.control.mkdir(exist_ok=True)
        for stale in self.control.iterdir():
            stale.unlink()
        (self.procs.devnet.root / SUPERVISOR_PID).write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        (self.procs.devnet.root / SUPERVISOR_PID).unlink(missing_ok=True)

    def poll(self) -> None:
        for name, status in self.procs.reap():
            self.down[name] = time.monotonic()
            running = len(self.procs.procs)
            hint = (
                f"restarting in {self.restart_after:.0f}s"
                if self.restart_after is not None
                else f"`almoner devnet node start {name} --dir {self.procs.devnet.root}` "
                "brings it back"
            )
            self.say(
                f"{name} exited with status {status}; the other {running} keep running "
                f"(see {self.procs.devnet.home(name) / 'node.log'}); {hint}"
            )
        for request in sorted(self.control.glob("*.request")):
            self._serve(request)
        if self.restart_after is not None:
            for name, since in list(self.down.items()):
                if name not in self.held and time.monotonic() - since >= self.restart_after:
                    try:
                        self._start(name)
                    except DevnetError as exc:
                        self.down[name] = time.monotonic()
                        self.say(f"{name} did not come back: {exc}")

    def _serve(self, request: Path) -> None:
        try:
            action, name = request.read_text().split()
            answer = self.act(action, name)
        except (ValueError, DevnetError, OSError) as exc:
            answer = f"error: {exc}"
        request.with_suffix(".done").write_text(answer + "\n")
        request.unlink(missing_ok=True)

    def act(self, action: str, name: str) -> str:
        if name not in self.procs.devnet.urls or action not in ACTIONS:
            raise DevnetError(f"cannot {action} {name}")
        if action in ("stop", "kill", "restart") and name in self.procs.procs:
            sig = signal.SIGKILL if action == "kill" else signal.SIGTERM
            status = self.procs.stop(name, sig)
            self.down[name] = time.monotonic()
            self.say(f"{name} {'killed' if action == 'kill' else 'stopped'} (status {status})")
        if action in ("stop", "kill"):
            self.held.add(name)
            return f"{name} is down"
        self._start(name)
        return f"{name} is up at {self.procs.devnet.urls[name]}"

    def _start(self, name: str) -> None:
        self.held.discard(name)
        self.down.pop(name, None)
        if name not in self.procs.procs:
            self.procs.start(name)
            self.procs.wait_healthy([name])
            self.say(f"{name} started again at {self.procs.devnet.urls[name]}")


def supervisor_running(root: Path) -> bool:
    try:
        pid = int((Path(root) / SUPERVISOR_PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def request_action(root: Path, action: str, name: str, timeout: float = 90) -> str:
    """Ask the running `almoner devnet` in `root` to act on one node; its answer."""
    if not supervisor_running(root):
        raise DevnetError(f"no `almoner devnet` is running in {root}")
    control = Path(root) / CONTROL_DIR
    stem = f"{time.time_ns()}-{os.getpid()}"
    tmp = control / f"{stem}.tmp"
    tmp.write_text(f"{action} {name}\n")
    tmp.rename(control / f"{stem}.request")
    done = control / f"{stem}.done"
    deadline = time.monotonic() + timeout
    while not done.exists():
        if time.monotonic() > deadline:
            raise DevnetError(f"the devnet did not answer within {timeout:.0f}s")
        time.sleep(0.1)
    answer = done.read_text().strip()
    done.unlink()
    if answer.startswith("error: "):
        raise DevnetError(answer.removeprefix("error: "))
    return answer
