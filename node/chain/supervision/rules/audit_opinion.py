"""A qualified, adverse or disclaimer audit opinion, and every suspension of a party."""

from __future__ import annotations

from almoner.node.chain.supervision.model import Event, Signal
from almoner.node.chain.supervision.rules.base import Rule

OPINIONS_ZH = {"qualified": "保留意见", "adverse": "否定意见", "disclaimer": "无法表示意见"}


class AuditOpinion(Rule):
    name = "audit_opinion"

    def on_event(self, event: Event) -> list[Signal]:
        body = event.body
        if event.tx_type == "audit.attest" and body["opinion"] in OPINIONS_ZH:
            opinion = body["opinion"]
            charity = self.ctx.name(body["charity"])
            regulator = self.ctx.name(event.signer)
            return [
                self.signal(
                    body["charity"],
                    f"audit {body['period']}",
                    (event.time, event.time),
                    [event.ref],
                    (
                        f"{regulator} gave {charity} a {opinion} opinion for {body['period']}"
                        + (f": {body['note']}" if body["note"] else "."),
                        f"“{regulator}”对“{charity}” {body['period']} 出具{OPINIONS_ZH[opinion]}"
                        + (f"：{body['note']}" if body["note"] else "。"),
                    ),
                    {
                        "kind": "opinion",
                        "opinion": opinion,
                        "audit_period": body["period"],
                        "attestation": body["attestation"],
                        "regulator": event.signer.hex(),
                        "report": body["report"].hex(),
                        "note": body["note"],
                    },
                    severity=self.settings[opinion],
                )
            ]
        if event.tx_type == "party.suspend":
            party = self.ctx.name(body["party"])
            regulator = self.ctx.name(event.signer)
            return [
                self.signal(
                    body["party"],
                    "suspension",
                    (event.time, event.time),
                    [event.ref],
                    (
                        f"{regulator} suspended {party}: {body['reason']}",
                        f"“{regulator}”暂停了“{party}”的资格，理由：{body['reason']}",
                    ),
                    {
                        "kind": "suspension",
                        "regulator": event.signer.hex(),
                        "reason": body["reason"],
                    },
                    severity=self.settings["suspension"],
                )
            ]
        return []
