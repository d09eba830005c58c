"""Admin + fundraising above a share of a charity's spending in one period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.supervision.model import Signal, TxRef
from almoner.node.chain.supervision.money import major_text
from almoner.node.chain.supervision.rules.base import MAX_TXS, DisbursementTally, Period

OVERHEAD = ("admin", "fundraising")


@dataclass
class _Spending:
    by_category: dict[str, int] = field(default_factory=dict)
    refs: list[TxRef] = field(default_factory=list)
    overhead_txs: int = 0


class OverheadAboveLimit(DisbursementTally[_Spending]):
    name = "overhead_above_limit"

    def new_entry(self) -> _Spending:
        return _Spending()

    def tally(self, entry: _Spending, body: dict[str, Any], ref: TxRef) -> None:
        category = body["category"]
        entry.by_category[category] = entry.by_category.get(category, 0) + body["amount"]
        if category in OVERHEAD:
            entry.overhead_txs += 1
            if len(entry.refs) <= MAX_TXS:
                entry.refs.append(ref)

    def judge(
        self, charity: bytes, currency: str, entry: _Spending, period: Period
    ) -> Signal | None:
        total = sum(entry.by_category.values())
        overhead = sum(entry.by_category.get(c, 0) for c in OVERHEAD)
        if total < max(1, self.settings["min_spending"]):
            return None
        ratio = overhead / total
        if ratio <= self.settings["limit"]:
            return None
        return self._signal(charity, currency, entry, period, total, ratio)

    def _signal(
        self,
        charity: bytes,
        currency: str,
        entry: _Spending,
        period: Period,
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
