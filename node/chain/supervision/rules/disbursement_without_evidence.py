"""A disbursement of at least an amount that names no evidence (invoice, receipt hash)."""

from __future__ import annotations

from almoner.node.chain.supervision.model import Event, Signal
from almoner.node.chain.supervision.money import major_text, spoken
from almoner.node.chain.supervision.rules.base import Rule


class DisbursementWithoutEvidence(Rule):
    name = "disbursement_without_evidence"

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type != "funds.disburse" or body["evidence"]:
            return []
        amount, currency = body["amount"], body["currency"]
        if amount < max(1, self.settings["min_amount"]):
            return []
        en, zh = (spoken(amount, currency, lang) for lang in ("en", "zh"))
        return [
            self.signal(
                event.signer,
                f"disbursement {body['disbursement']}",
                (event.time, event.time),
                [event.ref],
                (
                    f"Disbursement {body['disbursement']} of {en} to {body['payee']} "
                    f"({body['category']}) carries no evidence hash.",
                    f"支出 {body['disbursement']}（{zh}，收款方：{body['payee']}，"
                    f"类别：{body['category']}）没有附任何凭证哈希。",
                ),
                {
                    "disbursement": body["disbursement"],
                    "payee": body["payee"],
                    "category": body["category"],
                    "amount": amount,
                    "amount_major": major_text(amount, currency),
                    "currency": currency,
                },
            )
        ]
