"""A donation's trace as the steps of a parcel-style timeline.

The lineage (`views.trace_view`) says what happened to the money; this turns it into the
steps a donor reads, in order: received (and recorded), confirmed, moved, spent,
refunded, and where the rest is still held. Each step that rests on a transaction keeps
its tx id so the page can check that transaction's proof in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.indexes import height_time
from almoner.node.chain.state import get_party
from almoner.node.chain.store import KVReader
from almoner.node.server.explorer.i18n import Translator


@dataclass
class Step:
    kind: str  # received | confirmed | moved | spent | refunded | held
    title: str
    amount: str
    when: str = ""
    height: int | None = None
    tx_id: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)


def party_name(reader: KVReader, pubkey: bytes) -> str:
    party = get_party(reader, pubkey)
    return pubkey.hex()[:12] + "…" if party is None else str(party["name"])


def build_steps(
    reader: KVReader, trace: dict[str, Any], record: dict[str, Any], t: Translator
) -> list[Step]:
    donation = trace["donation"]
    currency = donation["currency"]

    def money(amount: int) -> str:
        return t.money(amount, currency)

    def when(height: int) -> str:
        return t.when(height_time(reader, height))

    def fund_label(charity: bytes, fund: str) -> str:
        return f"{party_name(reader, charity)} · {fund}"

    steps = [
        Step(
            "received",
            t("step_received", platform=party_name(reader, donation["platform"])),
            money(donation["amount"]),
            when(donation["height"]),
            donation["height"],
            donation["tx_id"].hex(),
            [
                (
                    "",
                    t(
                        "step_received_detail",
                        received=t.when(record["received_at"]),
                        recorded=when(donation["height"]),
                        height=donation["height"],
                    ),
                ),
                (t("charity"), fund_label(donation["charity"], record["fund"])),
            ],
            expect={"type": "donation.record", "amount": donation["amount"]},
        )
    ]
    confirmation = trace.get("confirmation")
    if confirmation is not None:
        steps.append(
            Step(
                "confirmed",
                t("step_confirmed", charity=party_name(reader, donation["charity"])),
                money(donation["amount"]),
                when(confirmation["height"]),
                confirmation["height"],
                confirmation["tx_id"].hex(),
                expect={"type": "donation.confirm", "donation": donation["donation"]},
            )
        )
    for hop in trace["hops"]:
        source = fund_label(hop["from"]["charity"], hop["from"]["fund"])
        common = {"height": hop["height"], "tx_id": hop["tx_id"].hex(), "when": when(hop["height"])}
        if hop["kind"] == "transfer":
            target = fund_label(hop["to"]["charity"], hop["to"]["fund"])
            steps.append(
                Step(
                    "moved",
                    t("step_moved", target=target),
                    money(hop["amount"]),
                    details=[("", f"{source} → {target}"), (t("purpose"), hop["purpose"])],
                    expect={"type": "funds.transfer"},
                    **common,
                )
            )
        elif hop["kind"] == "disburse":
            steps.append(
                Step(
                    "spent",
                    t("step_spent", purpose=hop["purpose"]),
                    money(hop["amount"]),
                    details=[
                        (t("payee"), hop["payee"]),
                        (t("category"), t(hop["category"])),
                        (t("fund"), source),
                    ],
                    evidence=[e.hex() for e in hop["evidence"] or []],
                    expect={"type": "funds.disburse", "payee": hop["payee"]},
                    **common,
                )
            )
        else:
            steps.append(
                Step(
                    "refunded",
                    t("step_refunded"),
                    money(hop["amount"]),
                    details=[(t("fund"), source)],
                    expect={"type": "donation.refund"},
                    **common,
                )
            )
    # Hops are kept in the order money was taken; a donor reads the story in block order.
    steps.sort(key=lambda step: step.height or 0)
    for held in trace["held"]:
        steps.append(
            Step(
                "held",
                t("step_held", charity=party_name(reader, held["charity"])),
                money(held["amount"]),
                details=[(t("fund"), held["fund"])],
            )
        )
    return steps
