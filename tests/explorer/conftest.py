"""Fixtures: one real LevelDB chain (tests/explorer/chain.py) served by a real observer node
process, started once per session; tests only read from it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from almoner.node.chain.codec import H
from almoner.node.chain.genesis import load_genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.devnet.network import free_port
from tests.explorer.chain import ExplorerChain, build_chain


@dataclass(frozen=True)
class RunningNode:
    url: str
    chain: ExplorerChain


def start_node(home: Path, port: int) -> subprocess.Popen[bytes]:
    cli = [sys.executable, "-m", "almoner.cli"]
    subprocess.run(
        [
            *cli,
            "node",
            "init",
            "--genesis",
            str(home / "genesis.json"),
            "--home",
            str(home),
            "--listen",
            f"127.0.0.1:{port}",
            "--force",
        ],
        check=True,
        capture_output=True,
    )
    with (home / "node.log").open("wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen([*cli, "node", "run", "--home", str(home)], stdout=log, stderr=log)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], home: Path, timeout: float = 60) -> None:
    """Until our node answers: its status must name our data directory's observer id, so
    another process that happened to take the port first is never mistaken for it."""
    expected = "observer-" + H(str((home / "data").resolve()).encode()).hex()[:16]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the node exited with {proc.returncode}")
        try:
            status = httpx.get(f"{url}/v1/status", timeout=2)
            if status.status_code == 200:
                assert status.json()["node"] == expected, "another process holds the port"
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the node did not become healthy")


@pytest.fixture(scope="session")
def explorer_chain(tmp_path_factory: pytest.TempPathFactory) -> ExplorerChain:
    return build_chain(tmp_path_factory.mktemp("explorer-chain"))


@pytest.fixture(scope="session")
def node(explorer_chain: ExplorerChain) -> Iterator[RunningNode]:
    port = free_port()
    proc = start_node(explorer_chain.home, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, explorer_chain.home)
        yield RunningNode(url, explorer_chain)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def query_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExplorerChain, Ledger]]:
    """Its own copy of the chain, opened in-process (the node's copy is locked by the node)."""
    built = build_chain(tmp_path_factory.mktemp("query-chain"))
    store = LevelStore(built.home / "data")
    try:
        yield built, Ledger(store, load_genesis(built.genesis_path))
    finally:
        store.close()
