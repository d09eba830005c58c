"""A donation refunded soon after it was recorded: the pattern of donations staged to win
matching funds, then returned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.periods import DAY_MS
from almoner.node.chain.supervision.rules.base import Context, Rule, duration


@dataclass(slots=True)
class _Recent:
    time: int
    ref: TxRef
    amount: int
    currency: str
    refunded: int = 0
    flagged: bool = False


class QuickRefund(Rule):
    name = "quick_refund"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.window = int(settings["days"] * DAY_MS)
        # Insertion order is block-time order: expired entries are at the front.
        self.recent: dict[tuple[bytes, str], _Recent] = {}

    def on_time(self, now: int) -> list[Signal]:
        while self.recent:
            key, entry = next(iter(self.recent.items()))
            if entry.time + self.window >= now:
                break
            del self.recent[key]
        return []

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type == "donation.record":
            self.recent[(event.signer, body["donation"])] = _Recent(
                event.time, event.ref, body["amount"], body["currency"]
            )
            return []
        if event.tx_type != "donation.refund":
            return []
        entry = self.recent.get((body["platform"], body["donation"]))
        if entry is None or entry.flagged or event.time - entry.time > self.window:
            return []
        entry.refunded += body["amount"]
        share = entry.refunded / entry.amount
        if share < self.settings["min_share"]:
            return []
        entry.flagged = True
        return [self._signal(event, entry, share)]

    def _signal(self, event: Event, entry: _Recent, share: float) -> Signal:
        body = event.body
        platform = self.ctx.name(body["platform"])
        after_en, after_zh = duration(event.time - entry.time)
        en, zh = (spoken(entry.refunded, entry.currency, lang) for lang in ("en", "zh"))
        return self.signal(
            event.signer,
            f"donation {body['donation']}",
            (entry.time, event.time),
            [entry.ref, event.ref],
            (
                f"Donation {body['donation']} from {platform} was refunded ({en}, "
                f"{share:.0%} of it) {after_en} after it was recorded.",
                f"来自“{platform}”的捐赠 {body['donation']} 在记录后 {after_zh}即被退款"
                f"（{zh}，占 {share:.0%}）。",
            ),
            {
                "platform": body["platform"].hex(),
                "donation": body["donation"],
                "amount": entry.amount,
                "refunded": entry.refunded,
                "refunded_major": major_text(entry.refunded, entry.currency),
                "currency": entry.currency,
                "share": round(share, 4),
                "days": round((event.time - entry.time) / DAY_MS, 3),
            },
        )
