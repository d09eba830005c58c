"""The incremental engine: every rule and the feature collector, fed block by block.

    supervisor = Supervisor(thresholds.resolve({}), "month")
    supervisor.block(executed, ledger)   # after each block is committed, in chain order
    supervisor.close()                   # the chain's end closes its last period

Signals are raised in chain order (memory follows the rules' windows, not the chain).
A caller that keeps following a chain (the node) never closes the last period; it asks
`provisional()` for what closing it now would add, without changing any state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Protocol

from almoner.node.chain.ledger import ExecutedBlock, Ledger
from almoner.node.chain.supervision.events import block_events
from almoner.node.chain.supervision.features import FeatureCollector, FeatureRow
from almoner.node.chain.supervision.model import Event, Signal
from almoner.node.chain.supervision.periods import period_bounds
from almoner.node.chain.supervision.rules import ALL_RULES, Context, Rule


class EventConsumer(Protocol):
    """Something else fed from the same replay (the disclosure aggregator)."""

    def on_event(self, event: Event, ctx: Context) -> None: ...

    def close_period(self, ctx: Context, label: str, start: int, end: int) -> None: ...


class Supervisor:
    """Rules, features and any extra consumers, in chain order."""

    def __init__(
        self,
        settings: dict[str, dict[str, Any]],
        granularity: str,
        consumers: Iterable[EventConsumer] = (),
    ) -> None:
        self.settings = settings
        self.granularity = granularity
        self.consumers = list(consumers)
        self.ctx: Context | None = None
        self.rules: list[Rule] = []
        self.features = FeatureCollector()
        self.signals: list[Signal] = []
        self.period: tuple[str, int, int] | None = None
        self.now = 0  # the newest block time seen

    def _start(self, ledger: Ledger) -> Context:
        ctx = Context(ledger, self.granularity)
        self.rules = [
            rule(self.settings[rule.name], ctx)
            for rule in ALL_RULES
            if self.settings[rule.name]["enabled"]
        ]
        self.ctx = ctx
        return ctx

    def _raise(self, found: list[Signal]) -> None:
        self.signals.extend(found)

    def _close(self, ctx: Context) -> None:
        assert self.period is not None
        label, start, end = self.period
        for rule in self.rules:
            self._raise(rule.close_period(label, start, end))
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
            self._raise(rule.on_time(now))
        for event in block_events(executed, ctx.party_of):
            for rule in self.rules:
                self._raise(rule.on_event(event))
            self.features.on_event(event)
            for consumer in self.consumers:
                consumer.on_event(event, ctx)

    def close(self) -> None:
        """The chain ends here: close its last period (once, at the end)."""
        if self.ctx is not None and self.period is not None:
            self._close(self.ctx)

    def provisional(self) -> tuple[list[Signal], list[FeatureRow]]:
        """What `close()` would add now — the open period's signals and feature rows —
        leaving every rule and the collector as they are (rules rebind, never mutate, the
        state their `close_period` reads, so a shallow copy of each is enough)."""
        if self.ctx is None or self.period is None:
            return [], []
        label, start, end = self.period
        found: list[Signal] = []
        for rule in self.rules:
            found.extend(copy.copy(rule).close_period(label, start, end))
        rows = self.features.period_rows(self.ctx.ledger, label, start, end, self.now)
        return found, rows

    def names(self, parties: Iterable[bytes]) -> dict[str, str]:
        """Party hex -> registered name (or a short hex for an unknown party)."""
        if self.ctx is None:
            return {}
        return {party.hex(): self.ctx.name(party) for party in parties}


def in_period(p_start: int, p_end: int, start: int | None, end: int | None) -> bool:
    """Whether the period [p_start, p_end) overlaps the window [start, end)."""
    return (start is None or p_end > start) and (end is None or p_start < end)
