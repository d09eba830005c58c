"""What the HTTP API needs from a node: a few small Protocols, not the composition root.

The API reads the ledger, admits txs, waits for commits, hands consensus traffic to the
driver and reports health. Naming exactly that here lets the API be served over any
object that provides it (the node's runtime, or a test's wiring of real components), and
keeps `api` from importing `app`, which builds the node and imports `api`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.server.mempool import Admission
from almoner.node.server.metrics import Metrics


@dataclass(frozen=True)
class ApiLimits:
    """Request limits the API enforces (from the node's config)."""

    max_body_bytes: int
    wait_commit_timeout_s: float


class TxAdmission(Protocol):
    """The mempool, as the API sees it."""

    def add(self, raw: bytes, *, signature_checked: bool = False) -> Admission: ...

    def get(self, tx_id: bytes) -> bytes | None: ...


class CommitWaiter(Protocol):
    async def wait(self, tx_id: bytes, timeout_s: float) -> bool: ...

    async def wait_block(self, timeout_s: float) -> None: ...


class ConsensusInbox(Protocol):
    """The consensus driver, as the p2p endpoint and /v1/evidence see it."""

    @property
    def pending_evidence(self) -> dict[bytes, dict[str, Any]]: ...

    def deliver(self, sender: bytes, msg: dict[str, Any]) -> bool: ...


class NodeServices(Protocol):
    """Everything the API reads or calls; `NodeRuntime` provides it."""

    @property
    def ledger(self) -> Ledger: ...

    @property
    def genesis(self) -> Genesis: ...

    @property
    def mempool(self) -> TxAdmission: ...

    @property
    def notifier(self) -> CommitWaiter: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def limits(self) -> ApiLimits: ...

    @property
    def consensus(self) -> ConsensusInbox | None:
        """None until the driver runs (and on a node that was never started)."""
        ...

    def gossip_txs(self, raws: list[bytes]) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def syncing(self) -> bool: ...

    def unhealthy(self) -> str | None:
        """Why the node must not be trusted to take part (a failed store), or None."""
        ...
