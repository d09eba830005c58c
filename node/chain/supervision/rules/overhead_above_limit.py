"""Admin + fundraising above a share of a charity's spending in one period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text
from almoner.node.chain.supervision.rules.base import MAX_TXS, Context, Rule

OVERHEAD = ("admin", "fundraising")


@dataclass
class _Spending:
    by_category: dict[str, int] = field(default_factory=dict)
    refs: list[TxRef] = field(default_factory=list)
    overhead_txs: int = 0


class OverheadAboveLimit(Rule):
    name = "overhead_above_limit"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.spending: dict[tuple[bytes, str], _Spending] = {}

    def on_event(self, event: Event) -> list[Signal]:
        if event.tx_type == "funds.disburse":
            body = event.body
            entry = self.spending.setdefault((event.signer, body["currency"]), _Spending())
            category = body["category"]
            entry.by_category[category] = entry.by_category.get(category, 0) + body["amount"]
            if category in OVERHEAD:
                entry.overhead_txs += 1
                if len(entry.refs) <= MAX_TXS:
                    entry.refs.append(event.ref)
        return []

    def close_period(self, label: str, start: int, end: int) -> list[Signal]:
        found = []
        for (charity, currency), entry in sorted(self.spending.items()):
            total = sum(entry.by_category.values())
            overhead = sum(entry.by_category.get(c, 0) for c in OVERHEAD)
            if total < max(1, self.settings["min_spending"]):
                continue
            ratio = overhead / total
            if ratio > self.settings["limit"]:
                found.append(
                    self._signal(charity, currency, entry, (label, start, end), total, ratio)
                )
        self.spending = {}
        return found

    def _signal(
        self,
        charity: bytes,
        currency: str,
        entry: _Spending,
        period: tuple[str, int, int],
        total: int,
        ratio: float,
    ) -> Signal:
        label, start, end = period
        limit = self.settings["limit"]
        signal = self.signal(
            charity,
            f"{currency} spending {label}",
            (start, end),
            entry.refs,
            (
                f"In {label}, admin and fundraising took {ratio:.1%} of "
                f"{self.ctx.name(charity)}'s {currency} spending, above the {limit:.0%} limit.",
                f"{label} 期间，“{self.ctx.name(charity)}”的 {currency} 支出中管理费和筹款费"
                f"占 {ratio:.1%}，超过 {limit:.0%} 的上限。",
            ),
            {
                "currency": currency,
                "total": total,
                "total_major": major_text(total, currency),
                "by_category": dict(sorted(entry.by_category.items())),
                "overhead_ratio": round(ratio, 4),
                "limit": limit,
            },
            period=label,
        )
        signal.txs_omitted = entry.overhead_txs - len(signal.txs)
        return signal
