"""One payee taking most of a charity's spending in one period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.supervision.model import Signal, TxRef
from almoner.node.chain.supervision.money import major_text
from almoner.node.chain.supervision.rules.base import MAX_TXS, DisbursementTally, Period


@dataclass
class _Payees:
    amounts: dict[str, int] = field(default_factory=dict)
    refs: dict[str, list[TxRef]] = field(default_factory=dict)
    count: int = 0


class PayeeConcentration(DisbursementTally[_Payees]):
    name = "payee_concentration"

    def new_entry(self) -> _Payees:
        return _Payees()

    def tally(self, entry: _Payees, body: dict[str, Any], ref: TxRef) -> None:
        payee = body["payee"]
        entry.amounts[payee] = entry.amounts.get(payee, 0) + body["amount"]
        refs = entry.refs.setdefault(payee, [])
        if len(refs) <= MAX_TXS:
            refs.append(ref)
        entry.count += 1

    def judge(self, charity: bytes, currency: str, entry: _Payees, period: Period) -> Signal | None:
        total = sum(entry.amounts.values())
        if entry.count < self.settings["min_disbursements"] or total < max(
            1, self.settings["min_spending"]
        ):
            return None
        payee, top = max(entry.amounts.items(), key=lambda item: (item[1], item[0]))
        share = top / total
        if share <= self.settings["share"]:
            return None
        return self._signal(charity, currency, period, entry, payee, share)

    def _signal(
        self,
        charity: bytes,
        currency: str,
        period: Period,
        entry: _Payees,
        payee: str,
        share: float,
    ) -> Signal:
        label, start, end = period
        name = self.ctx.name(charity)
        limit = self.settings["share"]
        top = entry.amounts[payee]
        return self.signal(
            charity,
            f"payee {payee}",
            (start, end),
            entry.refs[payee],
            (
                f"In {label}, {payee} received {share:.1%} of {name}'s {currency} spending "
                f"(above {limit:.0%}), over {entry.count} disbursements.",
                f"{label} 期间，收款方“{payee}”获得了“{name}” {currency} 支出的 {share:.1%}"
                f"（超过 {limit:.0%}），共 {entry.count} 笔支出。",
            ),
            {
                "payee": payee,
                "currency": currency,
                "amount": top,
                "amount_major": major_text(top, currency),
                "total": sum(entry.amounts.values()),
                "share": round(share, 4),
                "disbursements": entry.count,
            },
            period=label,
        )
