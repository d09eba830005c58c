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
from typing import Any, Protocol

from almoner.node.audit.supervise import thresholds
from almoner.node.audit.supervise.events import block_events
from almoner.node.audit.supervise.features import FeatureCollector, FeatureRow
from almoner.node.audit.supervise.model import Event, Signal, severity_rank
from almoner.node.audit.supervise.periods import iso_time, period_bounds
from almoner.node.audit.supervise.rules import ALL_RULES, Context, Rule
from almoner.node.audit.supervise.scores import Score, score_rows
from almoner.node.audit.verify import Progress, VerifyReport, verify_chain
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import ExecutedBlock, Ledger


class EventConsumer(Protocol):
    """Something else fed from the same replay (the disclosure aggregator)."""

    def on_event(self, event: Event, ctx: Context) -> None: ...

    def close_period(self, ctx: Context, label: str, start: int, end: int) -> None: ...


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
        return {
            "rule": signal.rule,
            "severity": signal.severity,
            "party": signal.party.hex(),
            "party_name": self.names.get(signal.party.hex(), ""),
            "period": signal.period,
            "subject": signal.subject,
            "from": iso_time(signal.start),
            "to": iso_time(signal.end),
            "txs": self._tx_json(signal),
            "txs_omitted": signal.txs_omitted,
            "explanation": {"en": signal.en, "zh": signal.zh},
            "details": signal.details,
        }

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


class Supervisor:
    """The replay observer: rules, features and any extra consumers, in chain order."""

    def __init__(
        self,
        settings: dict[str, dict[str, Any]],
        granularity: str,
        consumers: Iterable[EventConsumer] = (),
        *,
        proofs: bool = False,
    ) -> None:
        self.settings = settings
        self.granularity = granularity
        self.consumers = list(consumers)
        self.want_proofs = proofs
        self.ctx: Context | None = None
        self.rules: list[Rule] = []
        self.features = FeatureCollector()
        self.signals: list[Signal] = []
        self.period: tuple[str, int, int] | None = None
        self.now = 0  # the newest block time seen
        self.proofs: dict[int, list[bytes]] | None = None
        self.names: dict[str, str] = {}

    def _start(self, ledger: Ledger) -> Context:
        ctx = Context(ledger, self.granularity)
        self.rules = [
            rule(self.settings[rule.name], ctx)
            for rule in ALL_RULES
            if self.settings[rule.name]["enabled"]
        ]
        self.ctx = ctx
        return ctx

    def _close(self, ctx: Context) -> None:
        assert self.period is not None
        label, start, end = self.period
        for rule in self.rules:
            self.signals.extend(rule.close_period(label, start, end))
        self.features.close_period(ctx.ledger, label, start, end, self.now)
        for consumer in self.consumers:
            consumer.close_period(ctx, label, start, end)

    def block(self, executed: ExecutedBlock, ledger: Ledger) -> None:
        ctx = self.ctx or self._start(ledger)
        now = executed.block["header"]["time"]
        period = period_bounds(now, self.granularity)
        if self.period is not None and period[0] != self.period[0]:
            self._close(ctx)
        self.period = period
        self.now = now
        ctx.block_index = {tid: i for i, tid in enumerate(executed.tx_ids)}
        for rule in self.rules:
            self.signals.extend(rule.on_time(now))
        for event in block_events(executed, ctx.party_of):
            for rule in self.rules:
                self.signals.extend(rule.on_event(event))
            self.features.on_event(event)
            for consumer in self.consumers:
                consumer.on_event(event, ctx)

    def finish(self, ledger: Ledger, report: VerifyReport) -> None:
        if self.ctx is None or self.period is None:
            return
        if report.ok:
            self._close(self.ctx)
        if self.want_proofs and report.head is not None:
            log = ledger.log()
            size = report.head["log_size"]
            leaves = {ref.leaf_index for s in self.signals for ref in s.txs}
            self.proofs = {leaf: log.inclusion_proof(leaf, size) for leaf in sorted(leaves)}
        parties = {s.party for s in self.signals} | {r.charity for r in self.features.rows}
        self.names = {party.hex(): self.ctx.name(party) for party in parties}


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
    supervisor = Supervisor(resolved, granularity, consumers, proofs=proofs)
    verified = verify_chain(
        genesis,
        items,
        jobs=jobs,
        source_genesis_hash=source_genesis_hash,
        progress=progress,
        observer=supervisor,
    )
    report = SuperviseReport(verified, resolved, granularity, start, end)
    if not verified.ok:
        return report
    report.signals = [s for s in supervisor.signals if s.in_window(start, end)]
    report.signals.sort(key=lambda s: s.end)  # stable: chain order within one time
    rows = supervisor.features.rows
    scored = score_rows(rows, scorer)
    report.scores = [s for s in scored if _period_in(s.start, s.end, start, end)]
    report.features = [r for r in rows if _period_in(r.start, r.end, start, end)]
    report.proofs = supervisor.proofs
    report.names = supervisor.names
    return report


def _period_in(p_start: int, p_end: int, start: int | None, end: int | None) -> bool:
    return (start is None or p_end > start) and (end is None or p_start < end)
