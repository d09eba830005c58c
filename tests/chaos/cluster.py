"""Real `almoner node run` processes for the chaos run, placed by a lab (netlab.py).

Nodes run from this checkout's venv (the `almoner` script next to sys.executable). A
clock-skewed node runs under libfaketime; one node's data directory sits on a small
tmpfs so that the disk can really fill up.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from almoner.node.chain.genesis import Genesis
from almoner.node.devnet.network import Devnet, create_devnet
from almoner.node.server.config import CONFIG_NAME, write_config
from tests.chaos.netlab import Lab, run

CHAOS_PARAMS = {
    "timeout_propose_ms": 800,
    "timeout_prevote_ms": 400,
    "timeout_precommit_ms": 400,
    "timeout_delta_ms": 200,
    "heartbeat_ms": 3000,
}
TMPFS_MB = 96
ALMONER = str(Path(sys.executable).with_name("almoner"))


def libfaketime() -> str | None:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    return found[0] if found else None


class ChaosCluster:
    def __init__(self, root: Path, lab: Lab, names: list[str], disk_node: str | None) -> None:
        self.root = root
        self.lab = lab
        self.names = names
        self.devnet: Devnet = create_devnet(
            root, nodes=len(names), base_port=None, params=CHAOS_PARAMS
        )
        self.genesis: Genesis = self.devnet.genesis
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.skew: dict[str, str] = {}  # node -> FAKETIME offset, e.g. "+40s"
        self.disk_node = disk_node
        self.tmpfs: Path | None = None

    def home(self, name: str) -> Path:
        return self.devnet.home(name)

    def url(self, name: str) -> str:
        return self.lab.url(name)

    def configure(self) -> None:
        keys = {n: self.devnet.key(n).public_key.hex() for n in self.names}
        for name in self.names:
            write_config(
                self.home(name) / CONFIG_NAME,
                {
                    "genesis": str((self.root / "genesis.json").resolve()),
                    "key": str((self.root / "keys" / f"{name}.key").resolve()),
                    "data_dir": "data",
                    "listen": self.lab.listen(name),
                    "peers": {keys[p]: self.lab.peer_url(name, p) for p in self.names if p != name},
                },
            )
        if self.disk_node is not None and os.geteuid() == 0:
            self.tmpfs = self.home(self.disk_node) / "data"
            self.tmpfs.mkdir(parents=True, exist_ok=True)
            run("mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(self.tmpfs))

    def start(self, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        lib = libfaketime()
        if name in self.skew and lib is not None:
            env.update(LD_PRELOAD=lib, FAKETIME=self.skew[name], FAKETIME_DONT_FAKE_MONOTONIC="1")
        with open(self.home(name) / "node.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                self.lab.wrap(name, [ALMONER, "node", "run", "--home", str(self.home(name))]),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def send(self, name: str, sig: int) -> None:
        if self.alive(name):
            self.procs[name].send_signal(sig)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def wait_healthy(self, names: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                try:
                    if httpx.get(f"{self.url(name)}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if not self.alive(name):
                    raise RuntimeError(f"{name} exited during start; see its node.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not healthy within {timeout:.0f}s")
                time.sleep(0.2)

    def healthy(self, name: str) -> bool:
        try:
            return httpx.get(f"{self.url(name)}/healthz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self, name: str) -> dict[str, object] | None:
        try:
            answer: dict[str, object] = httpx.get(f"{self.url(name)}/v1/status", timeout=3).json()
            return answer
        except (httpx.HTTPError, ValueError):
            return None

    def height(self, name: str) -> int | None:
        status = self.status(name)
        return int(str(status["height"])) if status else None

    def fill_disk(self) -> Path | None:
        """Fill the tmpfs to the last byte; the filler file is returned for freeing."""
        if self.tmpfs is None:
            return None
        filler = self.tmpfs / "chaos-filler"
        with open(filler, "wb", buffering=0) as out:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError:
                    continue
        return filler

    def shutdown(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if self.tmpfs is not None:
            run("umount", "-l", str(self.tmpfs), check=False)
