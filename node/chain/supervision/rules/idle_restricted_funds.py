"""Campaign (restricted) money that nothing has been taken from for N days."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.state import fund_balance
from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.periods import DAY_MS, iso_time
from almoner.node.chain.supervision.rules.base import Context, Rule
from almoner.node.chain.tx import GENERAL_FUND

Key = tuple[bytes, str]  # (charity, campaign): a campaign has one currency


@dataclass(frozen=True, slots=True)
class _Clock:
    since: int
    ref: TxRef
    currency: str


class IdleRestrictedFunds(Rule):
    name = "idle_restricted_funds"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.clocks: dict[Key, _Clock] = {}
        self.due: list[tuple[int, Key, int]] = []  # (deadline, fund, since): a lazy heap
        self.limit = int(settings["days"] * DAY_MS)

    def _start(self, key: Key, event: Event, currency: str) -> None:
        self.clocks[key] = _Clock(event.time, event.ref, currency)
        heapq.heappush(self.due, (event.time + self.limit, key, event.time))

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type == "donation.record" and body["campaign"] is not None:
            key = (body["charity"], body["campaign"])
            if key not in self.clocks:
                self._start(key, event, body["currency"])
        elif event.tx_type == "funds.transfer" and body["to_fund"] != GENERAL_FUND:
            key = (body["to"], body["to_fund"])
            if key not in self.clocks:
                self._start(key, event, body["currency"])
        for hop in event.hops:
            if hop.from_fund != GENERAL_FUND:
                key = (hop.from_charity, hop.from_fund)
                clock = self.clocks.get(key)
                if clock is not None:  # touched: the idle clock starts again
                    self._start(key, event, clock.currency)
        return []

    def on_time(self, now: int) -> list[Signal]:
        found = []
        while self.due and self.due[0][0] < now:
            deadline, key, since = heapq.heappop(self.due)
            clock = self.clocks.get(key)
            if clock is None or clock.since != since:
                continue  # touched since this deadline was set
            del self.clocks[key]
            charity, fund = key
            balance = fund_balance(self.ctx.ledger.store, charity, clock.currency, fund)
            if balance >= max(1, self.settings["min_balance"]):
                found.append(self._signal(key, clock, deadline, balance))
        return found

    def _signal(self, key: Key, clock: _Clock, deadline: int, balance: int) -> Signal:
        charity, fund = key
        n = self.settings["days"]
        en, zh = (spoken(balance, clock.currency, lang) for lang in ("en", "zh"))
        return self.signal(
            charity,
            f"campaign fund {fund}",
            (clock.since, deadline),
            [clock.ref],
            (
                f"Campaign fund {fund!r} held {en} with nothing spent or moved out of it for "
                f"{n:g} days (since {iso_time(clock.since)[:10]}).",
                f"定向（项目）基金“{fund}”自 {iso_time(clock.since)[:10]} 起 {n:g} 天内"
                f"没有任何支出或转出，仍有余额 {zh}。",
            ),
            {
                "fund": fund,
                "currency": clock.currency,
                "balance": balance,
                "balance_major": major_text(balance, clock.currency),
                "idle_since": iso_time(clock.since),
                "days": n,
            },
        )
