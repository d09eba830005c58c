"""A disbursement that spent money of a donation its charity had not yet confirmed."""

from __future__ import annotations

from typing import Any

from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.rules.base import Rule


class SpentBeforeConfirmation(Rule):
    name = "spent_before_confirmation"

    def _unconfirmed_then(self, donation: dict[str, Any], event: Event) -> bool:
        """Unconfirmed when `event` ran: the state is as of the end of its block, so a
        confirmation later in the same block does not count."""
        if not donation["confirmed"]:
            return True
        later = self.ctx.block_index.get(donation["confirm_tx"])
        return later is not None and later > event.index

    def on_event(self, event: Event) -> list[Signal]:
        if event.tx_type != "funds.disburse":
            return []
        spent: dict[tuple[bytes, str], int] = {}
        for hop in event.hops:
            key = (hop.platform, hop.donation)
            spent[key] = spent.get(key, 0) + hop.amount
        involved: list[dict[str, Any]] = []
        refs: list[TxRef] = [event.ref]
        for (platform, did), amount in spent.items():
            donation = self.ctx.donation(platform, did)
            if donation is None or not self._unconfirmed_then(donation, event):
                continue
            involved.append({"platform": platform.hex(), "donation": did, "amount": amount})
            refs.append(self.ctx.ref_of(donation["tx_id"]))
        if not involved:
            return []
        body = event.body
        total = sum(item["amount"] for item in involved)
        currency = body["currency"]
        ids = ", ".join(item["donation"] for item in involved[:5])
        more = "" if len(involved) <= 5 else f" (+{len(involved) - 5})"
        en, zh = (spoken(total, currency, lang) for lang in ("en", "zh"))
        return [
            self.signal(
                event.signer,
                f"disbursement {body['disbursement']}",
                (event.time, event.time),
                refs,
                (
                    f"Disbursement {body['disbursement']} to {body['payee']} spent {en} from "
                    f"{len(involved)} donation(s) the charity had not confirmed: {ids}{more}.",
                    f"支出 {body['disbursement']}（收款方：{body['payee']}）动用了 "
                    f"{len(involved)} 笔尚未经慈善组织确认的捐赠资金共 {zh}：{ids}{more}。",
                ),
                {
                    "disbursement": body["disbursement"],
                    "payee": body["payee"],
                    "currency": currency,
                    "amount": total,
                    "amount_major": major_text(total, currency),
                    "donations": involved,
                },
            )
        ]
