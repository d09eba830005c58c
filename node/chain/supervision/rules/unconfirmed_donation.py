"""A donation its charity has not confirmed within N days of block time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.periods import DAY_MS, iso_time
from almoner.node.chain.supervision.rules.base import Context, Rule


@dataclass(frozen=True, slots=True)
class _Pending:
    time: int
    ref: TxRef
    charity: bytes
    amount: int
    currency: str


class UnconfirmedDonation(Rule):
    name = "unconfirmed_donation"

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        # Insertion order is block-time order, so the oldest pending donation is first.
        self.pending: dict[tuple[bytes, str], _Pending] = {}

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type == "donation.record":
            self.pending[(event.signer, body["donation"])] = _Pending(
                event.time, event.ref, body["charity"], body["amount"], body["currency"]
            )
        elif event.tx_type == "donation.confirm":
            self.pending.pop((body["platform"], body["donation"]), None)
        return []

    def on_time(self, now: int) -> list[Signal]:
        limit = int(self.settings["days"] * DAY_MS)
        found = []
        while self.pending:
            key, entry = next(iter(self.pending.items()))
            if entry.time + limit >= now:
                break
            del self.pending[key]
            found.append(self._signal(key, entry, entry.time + limit))
        return found

    def _signal(self, key: tuple[bytes, str], entry: _Pending, deadline: int) -> Signal:
        platform, donation = key
        n = self.settings["days"]
        name = self.ctx.name(platform)
        en_amount, zh_amount = (spoken(entry.amount, entry.currency, lang) for lang in ("en", "zh"))
        return self.signal(
            entry.charity,
            f"donation {donation}",
            (entry.time, deadline),
            [entry.ref],
            (
                f"Donation {donation} of {en_amount} recorded by {name} on "
                f"{iso_time(entry.time)[:10]} was not confirmed by the charity within "
                f"{n:g} days.",
                f"平台“{name}”于 {iso_time(entry.time)[:10]} 记录的捐赠 {donation}"
                f"（{zh_amount}）在 {n:g} 天内未经慈善组织确认。",
            ),
            {
                "platform": platform.hex(),
                "donation": donation,
                "amount": entry.amount,
                "amount_major": major_text(entry.amount, entry.currency),
                "currency": entry.currency,
                "recorded_at": iso_time(entry.time),
                "deadline": iso_time(deadline),
            },
        )
