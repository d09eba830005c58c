"""`supervise`: verify a chain and, block by block as it is verified, run every rule and
collect the features anomaly scores are computed from.

    report = supervise(genesis, items, settings=thresholds.load(path), start=..., end=...)

Signals are raised in chain order while the replay runs (memory follows the rules'
windows, not the chain); the period filter (`start`/`end`, block time) only chooses what
is reported, since state before the window (an unconfirmed donation, an idle fund) is
what makes a signal inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from almoner.node.audit.verify import Progress, VerifyReport, verify_chain
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import ExecutedBlock, Ledger
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.supervision.engine import EventConsumer, Supervisor, in_period
from almoner.node.chain.supervision.features import FeatureRow
from almoner.node.chain.supervision.model import Signal, severity_rank
from almoner.node.chain.supervision.periods import iso_time
from almoner.node.chain.supervision.scores import Score, score_rows


@dataclass
class SuperviseReport:
    verify: VerifyReport
    settings: dict[str, dict[str, Any]]
    granularity: str
    start: int | None
    end: int | None
    signals: list[Signal] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    features: list[FeatureRow] = field(default_factory=list)
    proofs: dict[int, list[bytes]] | None = None
    names: dict[str, str] = field(default_factory=dict)

    def worst(self) -> str | None:
        if not self.signals:
            return None
        return max((s.severity for s in self.signals), key=severity_rank)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for signal in self.signals:
            result[signal.rule] = result.get(signal.rule, 0) + 1
        return result

    def _tx_json(self, signal: Signal) -> list[dict[str, Any]]:
        head = self.verify.head
        txs = []
        for ref in signal.txs:
            entry = ref.to_json()
            if self.proofs is not None and head is not None:
                entry["proof"] = {
                    "leaf_index": ref.leaf_index,
                    "tree_size": head["log_size"],
                    "root": head["log_root"].hex(),
                    "path": [node.hex() for node in self.proofs[ref.leaf_index]],
                }
            txs.append(entry)
        return txs

    def signal_json(self, signal: Signal) -> dict[str, Any]:
        view = signal.to_json(self.names.get(signal.party.hex(), ""))
        view["txs"] = self._tx_json(signal)
        return view

    def to_json(self) -> dict[str, Any]:
        verify = self.verify.to_json()
        return {
            "ok": self.verify.ok,
            "chain_id": verify["chain_id"],
            "genesis_hash": verify["genesis_hash"],
            "head": verify["head"],
            "violation": verify["violation"],
            "window": {
                "from": None if self.start is None else iso_time(self.start),
                "to": None if self.end is None else iso_time(self.end),
                "period": self.granularity,
            },
            "signals": [self.signal_json(s) for s in self.signals],
            "counts": dict(sorted(self.counts().items())),
            "scores": [s.to_json() for s in self.scores],
            "features": [row.to_json() for row in self.features],
            "thresholds": self.settings,
            "verify": {k: verify[k] for k in ("blocks", "txs", "elapsed_s", "txs_per_s")},
        }


class ReplayFeed:
    """verify's replay observer: the core engine, plus what only a verified replay gives
    (inclusion proofs against the verified head)."""

    def __init__(self, supervisor: Supervisor, *, proofs: bool) -> None:
        self.supervisor = supervisor
        self.want_proofs = proofs
        self.proofs: dict[int, list[bytes]] | None = None
        self.names: dict[str, str] = {}

    def block(self, executed: ExecutedBlock, ledger: Ledger) -> None:
        self.supervisor.block(executed, ledger)

    def finish(self, ledger: Ledger, report: VerifyReport) -> None:
        supervisor = self.supervisor
        if supervisor.ctx is None or supervisor.period is None:
            return
        if report.ok:
            supervisor.close()
        if self.want_proofs and report.head is not None:
            log = ledger.log()
            size = report.head["log_size"]
            leaves = {ref.leaf_index for s in supervisor.signals for ref in s.txs}
            self.proofs = {leaf: log.inclusion_proof(leaf, size) for leaf in sorted(leaves)}
        parties = {s.party for s in supervisor.signals}
        parties |= {r.charity for r in supervisor.features.rows}
        self.names = supervisor.names(parties)


def supervise(
    genesis: Genesis,
    items: Iterable[bytes],
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    granularity: str = "month",
    start: int | None = None,
    end: int | None = None,
    proofs: bool = False,
    scorer: str = "robust",
    consumers: Iterable[EventConsumer] = (),
    jobs: int = 0,
    source_genesis_hash: bytes | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> SuperviseReport:
    """Verify `items` from `genesis` and supervise what was verified.

    On a violation, signals and scores are empty: nothing from an invalid chain is
    reported as a finding.
    """
    resolved = settings if settings is not None else thresholds.resolve({})
    supervisor = Supervisor(resolved, granularity, consumers)
    replay = ReplayFeed(supervisor, proofs=proofs)
    verified = verify_chain(
        genesis,
        items,
        jobs=jobs,
        source_genesis_hash=source_genesis_hash,
        progress=progress,
        observer=replay,
    )
    report = SuperviseReport(verified, resolved, granularity, start, end)
    if not verified.ok:
        return report
    report.signals = [s for s in supervisor.signals if s.in_window(start, end)]
    report.signals.sort(key=lambda s: s.end)  # stable: chain order within one time
    rows = supervisor.features.rows
    scored = score_rows(rows, scorer)
    report.scores = [s for s in scored if in_period(s.start, s.end, start, end)]
    report.features = [r for r in rows if in_period(r.start, r.end, start, end)]
    report.proofs = replay.proofs
    report.names = replay.names
    return report
