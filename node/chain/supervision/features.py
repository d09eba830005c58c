"""Per charity and period: the features anomaly scores are computed from.

- overhead_ratio: (admin + fundraising) / disbursed;
- payee_concentration: the top payee's share of disbursed;
- confirmation_delay: mean days from record to confirmation of the confirmations made
  in the period, counting donations still unconfirmed at its end at their age;
- refund_rate: refunded / donated;
- idle_share: share of the money held at the period's end that sits in funds nothing
  was taken from during the period (by spending, transfer or refund; a fund is named
  across its currencies);
- spending_velocity: disbursed / (donated + transferred in).

Amounts of different currencies are added in minor units: ratios stay meaningful for a
charity working in one currency, which is the common case (documented in
docs/supervision.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.ledger import Ledger
from almoner.node.chain.state import fund_balances
from almoner.node.chain.supervision.model import Event
from almoner.node.chain.supervision.periods import DAY_MS

FEATURES = (
    "overhead_ratio",
    "payee_concentration",
    "confirmation_delay",
    "refund_rate",
    "idle_share",
    "spending_velocity",
)


@dataclass
class _Period:
    donated: int = 0
    transferred_in: int = 0
    refunded: int = 0
    disbursed: int = 0
    overhead: int = 0
    payees: dict[str, int] = field(default_factory=dict)
    delay_ms: int = 0
    confirmations: int = 0
    touched: set[str] = field(default_factory=set)  # funds money was taken from


@dataclass(frozen=True)
class FeatureRow:
    charity: bytes
    period: str
    start: int
    end: int
    values: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"party": self.charity.hex(), "period": self.period, **self.values}


class FeatureCollector:
    def __init__(self) -> None:
        self.current: dict[bytes, _Period] = {}
        self.pending: dict[tuple[bytes, str], tuple[int, bytes]] = {}  # -> (time, charity)
        self.rows: list[FeatureRow] = []

    def _at(self, charity: bytes) -> _Period:
        entry = self.current.get(charity)
        if entry is None:
            entry = self.current[charity] = _Period()
        return entry

    def on_event(self, event: Event) -> None:
        body, kind = event.body, event.tx_type
        if kind == "donation.record":
            self._at(body["charity"]).donated += body["amount"]
            self.pending[(event.signer, body["donation"])] = (event.time, body["charity"])
        elif kind == "donation.confirm":
            recorded = self.pending.pop((body["platform"], body["donation"]), None)
            if recorded is not None:
                entry = self._at(event.signer)
                entry.delay_ms += event.time - recorded[0]
                entry.confirmations += 1
        elif kind == "donation.refund":
            self._at(event.signer).refunded += body["amount"]
        elif kind == "funds.transfer" and body["to"] != event.signer:
            self._at(body["to"]).transferred_in += body["amount"]
        elif kind == "funds.disburse":
            entry = self._at(event.signer)
            entry.disbursed += body["amount"]
            if body["category"] != "program":
                entry.overhead += body["amount"]
            entry.payees[body["payee"]] = entry.payees.get(body["payee"], 0) + body["amount"]
        for hop in event.hops:
            self._at(hop.from_charity).touched.add(hop.from_fund)

    def close_period(self, ledger: Ledger, label: str, start: int, end: int, now: int) -> None:
        """`now`: the last block time seen, which ends an unfinished last period."""
        self.rows.extend(self.period_rows(ledger, label, start, end, now))
        self.current = {}

    def period_rows(
        self, ledger: Ledger, label: str, start: int, end: int, now: int
    ) -> list[FeatureRow]:
        """The rows closing the period now would add; changes nothing."""
        until = min(end, now)
        ages: dict[bytes, tuple[int, int]] = {}
        for recorded, charity in self.pending.values():
            total, count = ages.get(charity, (0, 0))
            ages[charity] = (total + max(0, until - recorded), count + 1)
        rows = []
        for charity, entry in sorted(self.current.items()):
            age_total, age_count = ages.get(charity, (0, 0))
            waits = entry.confirmations + age_count
            held = idle = 0
            for fund in fund_balances(ledger.store, charity):
                held += fund["balance"]
                if fund["fund"] not in entry.touched:
                    idle += fund["balance"]
            top = max(entry.payees.values(), default=0)
            values = {
                "overhead_ratio": _share(entry.overhead, entry.disbursed),
                "payee_concentration": _share(top, entry.disbursed),
                "confirmation_delay": round((entry.delay_ms + age_total) / DAY_MS / waits, 4)
                if waits
                else 0.0,
                "refund_rate": _share(entry.refunded, entry.donated),
                "idle_share": _share(idle, held),
                "spending_velocity": _share(
                    entry.disbursed, entry.donated + entry.transferred_in, cap=10.0
                ),
            }
            rows.append(FeatureRow(charity, label, start, end, values))
        return rows


def _share(part: int, whole: int, cap: float = 1.0) -> float:
    return round(min(cap, part / whole), 4) if whole > 0 else 0.0
