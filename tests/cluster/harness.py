"""Real node processes on 127.0.0.1 for multi-process tests; they are talked to over HTTP only.

Waiting is polling with a deadline (never a bare sleep that hopes consensus is done).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from almoner.node.audit.client import Client
from almoner.node.chain.codec import H
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.tx import encode_tx
from almoner.node.devnet.network import Devnet, NodeProcesses, create_devnet

FAST_PARAMS = {
    "timeout_propose_ms": 600,
    "timeout_prevote_ms": 300,
    "timeout_precommit_ms": 300,
    "timeout_delta_ms": 150,
    "heartbeat_ms": 60_000,
}

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error})")


class Cluster:
    def __init__(self, devnet: Devnet, procs: NodeProcesses) -> None:
        self.devnet = devnet
        self.procs = procs
        self.names = [n for n in devnet.urls if n.startswith("validator-")]
        self.chain_id = devnet.genesis.chain_id
        self._nonce = int(time.time() * 1e6)

    def url(self, name: str) -> str:
        return self.devnet.urls[name]

    def client(self, name: str) -> Client:
        return Client(self.url(name), timeout=30)

    def key(self, name: str) -> KeyPair:
        return self.devnet.key(name)

    def status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url(name)}/v1/status", timeout=5).json()
        return result

    def height(self, name: str) -> int:
        return int(self.status(name)["height"])

    def report(self, log_lines: int = 12) -> str:
        """Each node's health, height and peers, and the last lines of its own log (uvicorn's
        lines left out): what a failed liveness check prints, so a rare stall in CI names
        its cause even after the test's directory is gone."""
        parts = []
        for name in self.devnet.urls:
            try:
                health = httpx.get(f"{self.url(name)}/healthz", timeout=2).text
                status = self.status(name)
                peers = {p["url"]: (p["up"], p["height"]) for p in status["peers"].values()}
                parts.append(f"{name}: height {status['height']} healthz {health} peers {peers}")
            except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
                parts.append(f"{name}: no answer ({exc!r})")
            log = self.devnet.home(name) / "node.log"
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            noted = [line for line in lines if " almoner." in line]
            parts.extend(f"  {line[:300]}" for line in noted[-log_lines:])
        return "\n".join(parts)

    def wait_until(self, check: Callable[[], T], timeout: float, what: str) -> T:
        """`wait_until`, with every node's report in the failure."""
        try:
            return wait_until(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None

    def block_hashes(self, name: str, upto: int) -> list[str]:
        response = httpx.get(
            f"{self.url(name)}/v1/blocks",
            params={"from": 1, "limit": upto},
            headers={"accept": "application/json"},
            timeout=30,
        )
        return [b["block_hash"] for b in response.json()]

    def donation(
        self,
        platform: str,
        charity: str,
        amount: int = 100,
        campaign: str | None = None,
        donation_id: str | None = None,
    ) -> bytes:
        self._nonce += 1
        donation_id = donation_id or f"d-{self._nonce}"
        body = {
            "donation": donation_id,
            "donor": H(donation_id.encode()),
            "charity": self.key(charity).public_key,
            "campaign": campaign,
            "amount": amount,
            "currency": "USD",
            "received_at": 1_700_000_000_000,
        }
        from almoner.node.chain.tx import make_tx

        return encode_tx(
            make_tx(self.chain_id, "donation.record", self.key(platform), body, self._nonce)
        )

    def kill(self, name: str) -> None:
        self.procs.stop(name, signal.SIGKILL)

    def stop(self, name: str) -> int:
        """SIGTERM: a clean shutdown, whose exit status is returned."""
        return self.procs.stop(name, signal.SIGTERM)

    def start(self, name: str) -> None:
        self.procs.start(name)
        self.procs.wait_healthy([name])


@contextmanager
def running_cluster(
    root: Path, nodes: int = 4, observers: int = 0, params: dict[str, int] | None = None
) -> Iterator[Cluster]:
    devnet = create_devnet(
        root, nodes=nodes, base_port=None, params={**FAST_PARAMS, **(params or {})},
        observers=observers,
    )  # fmt: skip
    procs = NodeProcesses(devnet)
    try:
        procs.start_all()
        procs.wait_healthy()
        yield Cluster(devnet, procs)
    finally:
        procs.stop_all()
