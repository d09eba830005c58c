"""A local network on one machine: keys, genesis and node homes in one directory.

Layout (the devnet directory of docs/operators.md): D/genesis.json, D/keys/validator-N.key,
D/keys/regulator.key, D/keys/platform-{1,2}.key, D/keys/charity-{1,2,3}.key,
D/nodes/validator-N/ (node.toml, data/, node.log), D/urls.json. Creating it is
idempotent: an existing directory is reused, so a second `make devnet` resumes the
same chain.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from almoner.node.server.config import CONFIG_NAME, write_config
from almoner.node.chain.crypto import KeyPair
from almoner.node.errors import AlmonerError
from almoner.node.chain.genesis import (
    DEFAULT_PARAMS,
    Genesis,
    GenesisParty,
    Validator,
    dump_genesis,
    load_genesis,
)
from almoner.node.chain.keys import load_key_file, write_key_file

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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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
