"""A disclosure as an IATI 2.03 activity file (iati-activities-schema.xsd).

Mapping (docs/supervision.md lists it too):
- each charity fund is one `iati-activity`: the general fund and each campaign, with
  identifier `{org_id}-{fund}`, the charity as reporting, accountable (role 2) and
  implementing (role 4) organisation, status 2 (implementation), an actual-start date;
- per period and counterparty, the sums become transactions:
  donations received via a platform → type 1 Incoming Funds (provider: the platform);
  transfers in from another charity → type 1 Incoming Funds (provider: that charity);
  transfers out to another charity → type 3 Disbursement (receiver: that charity);
  disbursements (payments to payees) → type 4 Expenditure, one per category;
  refunds to donors → type 1 Incoming Funds with a negative value (IATI has no refund
  type; a negative value is how it records a reversal).
Values are in major units with the currency's digits; the transaction date is the last
day in the period on which the charity had activity.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from almoner.node.audit.disclose.aggregate import CharityPeriod, Disclosure, PartyInfo
from almoner.node.chain.supervision.money import major_text
from almoner.node.chain.supervision.periods import iso_time

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
NGO = "22"  # OrganisationType: National NGO
INCOMING_FUNDS, DISBURSEMENT, EXPENDITURE = "1", "3", "4"
CATEGORY_ZH = {"program": "项目支出", "admin": "管理费用", "fundraising": "筹款费用"}


def _narratives(parent: ET.Element, en: str, zh: str | None = None) -> None:
    ET.SubElement(parent, "narrative").text = en
    if zh is not None and zh != en:
        ET.SubElement(parent, "narrative", {XML_LANG: "zh"}).text = zh


def _org(parent: ET.Element, tag: str, info: PartyInfo | None, **attrs: str) -> None:
    name = "unknown" if info is None else info.name
    element = ET.SubElement(parent, tag, {"ref": "" if info is None else info.org_id, **attrs})
    _narratives(element, name)


def _date(report: CharityPeriod) -> str:
    moment = report.last_time if report.last_time is not None else report.start
    return iso_time(moment)[:10]


def _transactions(
    report: CharityPeriod, fund: str
) -> Iterator[tuple[str, int, str, str, bytes | None, str, str]]:
    """(type code, amount, currency, English, counterparty, provider|receiver, 中文)."""
    for (platform, f, currency), (count, amount) in sorted(report.income.items()):
        if f == fund:
            yield (
                INCOMING_FUNDS,
                amount,
                currency,
                f"{count} donation(s) in {report.period}",
                platform,
                "provider-org",
                f"{report.period} 收到捐赠 {count} 笔",
            )
    for (source, f, currency), (count, amount) in sorted(report.transfers_in.items()):
        if f == fund:
            yield (
                INCOMING_FUNDS,
                amount,
                currency,
                f"{count} transfer(s) in, {report.period}",
                source,
                "provider-org",
                f"{report.period} 转入 {count} 笔",
            )
    for (target, f, currency), (count, amount) in sorted(report.transfers_out.items()):
        if f == fund:
            yield (
                DISBURSEMENT,
                amount,
                currency,
                f"{count} transfer(s) out, {report.period}",
                target,
                "receiver-org",
                f"{report.period} 转出 {count} 笔",
            )
    for (f, category, currency), (count, amount) in sorted(report.spending.items()):
        if f == fund:
            yield (
                EXPENDITURE,
                amount,
                currency,
                f"{category} spending, {count} payment(s), {report.period}",
                None,
                "receiver-org",
                f"{report.period} {CATEGORY_ZH[category]} {count} 笔",
            )
    for (platform, f, currency), (count, amount) in sorted(report.refunds.items()):
        if f == fund:
            yield (
                INCOMING_FUNDS,
                -amount,
                currency,
                f"{count} refund(s) to donors, {report.period}",
                platform,
                "provider-org",
                f"{report.period} 退款 {count} 笔",
            )


def _money(amount: int, currency: str) -> str:
    text = major_text(abs(amount), currency)
    return f"-{text}" if amount < 0 else text


def _activity(
    root: ET.Element, d: Disclosure, charity: bytes, fund: str, reports: list[CharityPeriod]
) -> None:
    info = d.parties.get(charity)
    meta = d.funds.get((charity, fund), {"title": fund, "currency": "XXX", "opened": 0})
    org_id = info.org_id if info is not None else charity.hex()[:16]
    activity = ET.SubElement(
        root,
        "iati-activity",
        {
            "default-currency": meta["currency"],
            XML_LANG: "en",
            "last-updated-datetime": iso_time(max(r.last_time or r.start for r in reports)),
        },
    )
    ET.SubElement(activity, "iati-identifier").text = f"{org_id}-{fund}"
    _org(activity, "reporting-org", info, type=NGO)
    name = "" if info is None else info.name
    title = ET.SubElement(activity, "title")
    _narratives(title, f"{name}: {meta['title']}")
    description = ET.SubElement(activity, "description", {"type": "1"})
    _narratives(
        description,
        f"Fund {fund!r} of {name}, as recorded on the Almoner ledger {d.chain_id}.",
        f"“{name}”在 Almoner 账本 {d.chain_id} 上记录的基金“{meta['title']}”。",
    )
    _org(activity, "participating-org", info, role="2", type=NGO)
    _org(activity, "participating-org", info, role="4", type=NGO)
    ET.SubElement(activity, "activity-status", {"code": "2"})
    start = dt.datetime.fromtimestamp(meta["opened"] / 1000, dt.UTC).date().isoformat()
    ET.SubElement(activity, "activity-date", {"type": "2", "iso-date": start})
    for report in reports:
        for code, amount, currency, en, party, role, zh in _transactions(report, fund):
            tx = ET.SubElement(activity, "transaction")
            ET.SubElement(tx, "transaction-type", {"code": code})
            date = _date(report)
            ET.SubElement(tx, "transaction-date", {"iso-date": date})
            value = ET.SubElement(tx, "value", {"currency": currency, "value-date": date})
            value.text = _money(amount, currency)
            _narratives(ET.SubElement(tx, "description"), en, zh)
            if party is not None:
                _org(tx, role, d.parties.get(party))


def to_iati(d: Disclosure, generated: dt.datetime | None = None) -> bytes:
    """The whole disclosure as one iati-activities document (UTF-8, with declaration)."""
    moment = generated or dt.datetime.now(dt.UTC)
    root = ET.Element(
        "iati-activities",
        {"version": "2.03", "generated-datetime": moment.isoformat(timespec="seconds")},
    )
    by_fund: dict[tuple[bytes, str], list[CharityPeriod]] = {}
    for report in d.reports:
        funds = {key[1] for key in report.income} | {key[1] for key in report.transfers_in}
        funds |= {key[1] for key in report.transfers_out} | {key[0] for key in report.spending}
        funds |= {key[1] for key in report.refunds}
        for fund in funds:
            by_fund.setdefault((report.charity, fund), []).append(report)
    for (charity, fund), reports in sorted(by_fund.items()):
        _activity(root, d, charity, fund, reports)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
