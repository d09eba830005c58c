"""One disclosure as JSON (nested, per charity and period) and as one long table (a row
per figure), the shape CSV and Parquet share.

Every amount is given twice: `amount` in minor units exactly as the ledger keeps it, and
`amount_major` (a decimal string: "1234.50") for people.
"""

from __future__ import annotations

from typing import Any

from almoner.node.audit.disclose.aggregate import CharityPeriod, Disclosure, Sums
from almoner.node.chain.supervision.money import major_text
from almoner.node.chain.supervision.periods import iso_time

COLUMNS = (
    "chain_id",
    "charity",
    "charity_name",
    "period",
    "period_from",
    "period_to",
    "section",
    "fund",
    "counterparty",
    "counterparty_name",
    "category",
    "currency",
    "count",
    "amount",
    "amount_major",
    "ratio",
    "note",
)
SECTIONS = (
    "income",
    "transfer_in",
    "transfer_out",
    "spending",
    "overhead",
    "refund",
    "unconfirmed",
    "audit_opinion",
    "suspension",
)
OVERHEAD = ("admin", "fundraising")


def overhead(report: CharityPeriod) -> list[dict[str, Any]]:
    """Per currency: spending by category and (admin + fundraising) / total."""
    per: dict[str, dict[str, int]] = {}
    for (_, category, currency), (_, amount) in report.spending.items():
        totals = per.setdefault(currency, {"program": 0, "admin": 0, "fundraising": 0})
        totals[category] += amount
    result = []
    for currency, totals in sorted(per.items()):
        total = sum(totals.values())
        spent = sum(totals[c] for c in OVERHEAD)
        result.append(
            {
                "currency": currency,
                **totals,
                "total": total,
                "total_major": major_text(total, currency),
                "overhead_ratio": round(spent / total, 4) if total else None,
            }
        )
    return result


def _money(currency: str, count: int, amount: int) -> dict[str, Any]:
    return {
        "currency": currency,
        "count": count,
        "amount": amount,
        "amount_major": major_text(amount, currency),
    }


def _sums(sums: Sums, names: tuple[str, ...], d: Disclosure) -> list[dict[str, Any]]:
    rows = []
    for key, (count, amount) in sorted(sums.items(), key=lambda kv: repr(kv[0])):
        row: dict[str, Any] = {}
        for name, value in zip(names, key, strict=True):
            if isinstance(value, bytes):
                row[name] = value.hex()
                row[f"{name}_name"] = d.parties[value].name if value in d.parties else ""
            elif name != "currency":
                row[name] = value
        rows.append({**row, **_money(key[-1], count, amount)})
    return rows


def _by_regulator(entry: dict[str, Any], d: Disclosure) -> dict[str, Any]:
    regulator = entry["regulator"]
    info = d.parties.get(regulator)
    return {
        **entry,
        "regulator": regulator.hex(),
        "regulator_name": "" if info is None else info.name,
        "tx_id": entry["tx_id"].hex(),
    }


def report_json(report: CharityPeriod, d: Disclosure) -> dict[str, Any]:
    party = d.parties.get(report.charity)
    return {
        "charity": report.charity.hex(),
        "charity_name": "" if party is None else party.name,
        "org_id": "" if party is None else party.org_id,
        "period": report.period,
        "from": iso_time(report.start),
        "to": iso_time(min(report.end, 2**62)),
        "income": _sums(report.income, ("platform", "fund", "currency"), d),
        "transfers_in": _sums(report.transfers_in, ("from", "fund", "currency"), d),
        "transfers_out": _sums(report.transfers_out, ("to", "fund", "currency"), d),
        "spending": _sums(report.spending, ("fund", "category", "currency"), d),
        "overhead": overhead(report),
        "refunds": _sums(report.refunds, ("platform", "fund", "currency"), d),
        "unconfirmed": _sums(report.unconfirmed, ("currency",), d),
        "audit_opinions": [_by_regulator(o, d) for o in report.opinions],
        "suspensions": [_by_regulator(s, d) for s in report.suspensions],
    }


def disclosure_json(d: Disclosure) -> dict[str, Any]:
    return {
        "chain_id": d.chain_id,
        "genesis_hash": d.genesis_hash,
        "head": d.head,
        "reports": [report_json(r, d) for r in d.reports],
    }


def _row(base: dict[str, Any], **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(base)
    row.update(values)
    return row


def long_rows(d: Disclosure) -> list[dict[str, Any]]:
    """The long table: one row per figure, columns `COLUMNS` (blank where not relevant)."""
    rows = []
    for report in d.reports:
        r = report_json(report, d)
        base = {
            "chain_id": d.chain_id,
            "charity": r["charity"],
            "charity_name": r["charity_name"],
            "period": r["period"],
            "period_from": r["from"],
            "period_to": r["to"],
        }
        for section, key, who in (
            ("income", "income", "platform"),
            ("transfer_in", "transfers_in", "from"),
            ("transfer_out", "transfers_out", "to"),
            ("refund", "refunds", "platform"),
        ):
            for item in r[key]:
                rows.append(
                    _row(
                        base,
                        section=section,
                        fund=item["fund"],
                        counterparty=item[who],
                        counterparty_name=item[f"{who}_name"],
                        **_money(item["currency"], item["count"], item["amount"]),
                    )
                )
        for item in r["spending"]:
            rows.append(
                _row(
                    base,
                    section="spending",
                    fund=item["fund"],
                    category=item["category"],
                    **_money(item["currency"], item["count"], item["amount"]),
                )
            )
        for item in r["overhead"]:
            spent = item["admin"] + item["fundraising"]
            rows.append(
                _row(
                    base,
                    section="overhead",
                    currency=item["currency"],
                    amount=spent,
                    amount_major=major_text(spent, item["currency"]),
                    ratio=item["overhead_ratio"],
                )
            )
        for item in r["unconfirmed"]:
            rows.append(
                _row(
                    base,
                    section="unconfirmed",
                    **_money(item["currency"], item["count"], item["amount"]),
                )
            )
        for o in r["audit_opinions"]:
            rows.append(
                _row(
                    base,
                    section="audit_opinion",
                    counterparty=o["regulator"],
                    counterparty_name=o["regulator_name"],
                    category=o["opinion"],
                    note=f"{o['audit_period']}: {o['note']}",
                )
            )
        for s in r["suspensions"]:
            rows.append(
                _row(
                    base,
                    section="suspension",
                    counterparty=s["regulator"],
                    counterparty_name=s["regulator_name"],
                    note=s["reason"],
                )
            )
    return rows
