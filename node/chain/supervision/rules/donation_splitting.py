"""One donor reference making many small donations to one charity in a short window."""

from __future__ import annotations

from collections import deque
from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.periods import HOUR_MS
from almoner.node.chain.supervision.rules.base import Context, Rule

Key = tuple[bytes, bytes]  # (donor reference, charity)


class DonationSplitting(Rule):
    name = "donation_splitting"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.window = int(settings["hours"] * HOUR_MS)
        self.bursts: dict[Key, deque[tuple[int, TxRef, int, str]]] = {}
        self.flagged: set[Key] = set()
        self.next_sweep = 0

    def on_time(self, now: int) -> list[Signal]:
        """Forget donors with nothing in the window, so memory follows the window."""
        if now >= self.next_sweep:
            for key in [k for k, q in self.bursts.items() if q[-1][0] < now - self.window]:
                del self.bursts[key]
                self.flagged.discard(key)
            self.next_sweep = now + self.window
        return []

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type != "donation.record" or body["amount"] > self.settings["max_amount"]:
            return []
        key = (body["donor"], body["charity"])
        burst = self.bursts.setdefault(key, deque())
        burst.append((event.time, event.ref, body["amount"], body["currency"]))
        while burst[0][0] < event.time - self.window:
            burst.popleft()
        if len(burst) < self.settings["min_count"]:
            self.flagged.discard(key)
            return []
        if key in self.flagged:
            return []
        self.flagged.add(key)
        return [self._signal(key, burst)]

    def _signal(self, key: Key, burst: deque[tuple[int, TxRef, int, str]]) -> Signal:
        donor, charity = key
        currency = burst[0][3]
        total = sum(amount for _, _, amount, cur in burst if cur == currency)
        hours = self.settings["hours"]
        en, zh = (spoken(total, currency, lang) for lang in ("en", "zh"))
        count = len(burst)
        return self.signal(
            charity,
            f"donor {donor.hex()[:16]}",
            (burst[0][0], burst[-1][0]),
            [ref for _, ref, _, _ in burst],
            (
                f"Donor reference {donor.hex()[:16]}… made {count} small donations "
                f"(totalling {en}) to {self.ctx.name(charity)} within {hours:g} hours.",
                f"捐赠人标识 {donor.hex()[:16]}… 在 {hours:g} 小时内向“{self.ctx.name(charity)}”"
                f"进行了 {count} 笔小额捐赠（合计 {zh}）。",
            ),
            {
                "donor": donor.hex(),
                "count": count,
                "total": total,
                "total_major": major_text(total, currency),
                "currency": currency,
                "hours": hours,
            },
        )
