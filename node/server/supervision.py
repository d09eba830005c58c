"""The node's own supervision: the core engine (node.chain.supervision) fed with the blocks
this node committed, for `/v1/supervision/*`, the explorer's regulator view and /metrics.

Why a replay: the rules read state *as of* each block (was this donation confirmed yet,
what did this fund hold), and the node's store only holds the newest state. So a worker
thread re-executes the node's committed blocks into a scratch LevelDB of its own — the
same `Ledger.execute_block` every node runs, signatures not re-checked since this node
checked them before committing — and hands each block to the engine, exactly as
`almoner supervise` does with the blocks it verified. The answers are therefore the CLI's
answers on the same chain, but computed by this node: the CLI is the trust-nothing path.

Lazy and bounded: nothing runs until someone asks (an API call, the regulator page or a
/metrics scrape wakes the worker); it then catches up from where it stopped to the head
as of that moment, in batches, publishing an immutable `Snapshot` after each. The event
loop only ever reads the latest snapshot. The worker reads committed blocks only and
never writes the node's store. At most `max_signals` signals are kept (the oldest go
first; counts stay exact); the rules' own memory follows their windows.
"""

from __future__ import annotations

import bisect
import logging
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.supervision.engine import Supervisor
from almoner.node.chain.supervision.model import Signal
from almoner.node.chain.supervision.rules import ALL_RULES
from almoner.node.chain.supervision.scores import Score, score_rows
from almoner.node.errors import StoreError
from almoner.node.server.metrics import Metrics

log = logging.getLogger("almoner.supervision")

RULES = tuple(rule.name for rule in ALL_RULES)
MAX_SIGNALS = 100_000
BATCH_BLOCKS = 200
PROVISIONAL_SEQ = 1 << 62  # the open period's signals sort after every raised one

TRUST = {
    "en": (
        "Computed by this node from its own copy of the chain; not independently verified. "
        "To check it without trusting any node, run `almoner supervise` with the pinned "
        "genesis (docs/supervision.md)."
    ),
    "zh": (
        "以上结果由本节点根据其自身保存的账本计算，未经独立验证。"
        "如需不信任任何节点地独立核查，请使用固定的创世文件运行 `almoner supervise`"
        "（见 docs/supervision.md）。"
    ),
}


class _AllChecked:
    """Every signature counts as checked: the node verified each before committing it."""

    def __contains__(self, _: object) -> bool:
        return True


class _ScratchStore:
    """The replay's own LevelDB: rebuilt from the node's blocks at will, so never fsynced."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="almoner-supervision-")
        self.inner = LevelStore(self.path)
        self.get = self.inner.get
        self.iterate = self.inner.iterate

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        self.inner.write(changes, sync=False)

    def close(self) -> None:
        self.inner.close()
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class Snapshot:
    """What the analysis said at one height; immutable, replaced whole."""

    height: int = 0
    block_hash: bytes | None = None
    signals: list[Signal] = field(default_factory=list)  # by (end, raise order), like the CLI
    keys: list[tuple[int, int]] = field(default_factory=list)  # (end, seq) of each signal
    scores: list[Score] = field(default_factory=list)  # by (period start, party)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    names: dict[str, str] = field(default_factory=dict)
    dropped: int = 0  # oldest signals no longer kept (still counted)

    def after(self, key: tuple[int, int] | None) -> int:
        """Index of the first signal after `key` (a cursor)."""
        return 0 if key is None else bisect.bisect_right(self.keys, key)


class SupervisionService:
    """Follows the node's committed chain with the supervision engine, in its own thread."""

    def __init__(
        self,
        source: Ledger,
        genesis: Genesis,
        node_id: str,
        *,
        granularity: str = "month",
        settings: dict[str, dict[str, Any]] | None = None,
        max_signals: int = MAX_SIGNALS,
    ) -> None:
        self.source = source
        self.genesis = genesis
        self.node_id = node_id
        self.granularity = granularity
        self.settings = settings if settings is not None else thresholds.resolve({})
        self.snapshot = Snapshot()
        self.error: str | None = None
        self._kept: deque[tuple[int, Signal]] = deque(maxlen=max_signals)
        self._counts = dict.fromkeys(RULES, 0)
        self._raised = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._scratch: _ScratchStore | None = None
        self._replay: Ledger | None = None
        self._engine = Supervisor(self.settings, granularity)

    # -- the event loop's side -----------------------------------------------------------
    def want(self) -> None:
        """Someone looked: catch up to the current head (in the background)."""
        if self.error is not None or self._stopping.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="supervision", daemon=True)
                self._thread.start()
        self._wake.set()

    def computed_by(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "node": self.node_id,
            "height": snap.height,
            "block_hash": None if snap.block_hash is None else snap.block_hash.hex(),
            "head": self.source.head.height,
            "complete": snap.height == self.source.head.height,
            "error": self.error,
        }

    def stop(self) -> None:
        """Stop the worker (after the block it is on) and drop the scratch store. Blocking:
        call it off the event loop, and before the node's store closes."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def install_metrics(self, metrics: Metrics) -> None:
        def open_signals() -> dict[tuple[tuple[str, str], ...], float]:
            self.want()
            return {(("rule", rule),): float(n) for rule, n in self.snapshot.counts.items()}

        metrics.gauge_family(
            "almoner_supervision_open_signals",
            open_signals,
            "signals this node's own supervision raised, by rule (docs/supervision.md)",
        )
        metrics.gauge(
            "almoner_supervision_height",
            lambda: self.snapshot.height,
            "height the node's supervision has analysed",
        )

    # -- the worker ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait()
                if self._stopping.is_set():
                    return
                self._wake.clear()
                self._catch_up(self.source.head.height)
        except Exception as exc:  # the node lives on; the API reports why analysis stopped
            log.exception("supervision stopped")
            self.error = f"analysis stopped at height {self.snapshot.height}: {exc}"

    def _ledger(self) -> Ledger:
        if self._replay is None:
            self._scratch = _ScratchStore()
            self._replay = Ledger(self._scratch, self.genesis, max_version=self.source.max_version)
        return self._replay

    def _catch_up(self, target: int) -> None:
        replay = self._ledger()
        while replay.head.height < target and not self._stopping.is_set():
            last = min(target, replay.head.height + BATCH_BLOCKS)
            for height in range(replay.head.height + 1, last + 1):
                block = self.source.block_at(height)
                cert = self.source.certificate_at(height)
                if block is None or cert is None:
                    raise StoreError(f"committed block {height} is missing from the store")
                executed = replay.execute_block(block, verified=_AllChecked(), check_limits=False)
                replay.commit(executed, cert)
                self._engine.block(executed, replay)
                if self._stopping.is_set():
                    break
            self._publish(replay)

    def _publish(self, replay: Ledger) -> None:
        engine = self._engine
        for signal in engine.signals:
            self._kept.append((self._raised, signal))
            self._counts[signal.rule] += 1
            self._raised += 1
        engine.signals = []
        open_signals, open_rows = engine.provisional()
        counts = dict(self._counts)
        ranked = list(self._kept)
        for index, signal in enumerate(open_signals):
            ranked.append((PROVISIONAL_SEQ + index, signal))
            counts[signal.rule] += 1
        ranked.sort(key=lambda item: (item[1].end, item[0]))
        scores = score_rows([*engine.features.rows, *open_rows])
        parties = {s.party for _, s in ranked} | {s.charity for s in scores}
        head = replay.head
        self.snapshot = Snapshot(
            height=head.height,
            block_hash=head.block_hash if head.height > 0 else None,
            signals=[s for _, s in ranked],
            keys=[(s.end, seq) for seq, s in ranked],
            scores=scores,
            counts=counts,
            names=engine.names(parties),
            dropped=self._raised - len(self._kept),
        )


__all__ = ["RULES", "TRUST", "Snapshot", "SupervisionService"]
