"""Per charity and period aggregates, fed by the supervision replay (an `EventConsumer`).

Only sums and counts are kept per (charity, period), never a list of every donation, so
memory follows the number of charities, funds and counterparties, not of transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.state import get_campaign, get_party
from almoner.node.chain.supervision.model import Event
from almoner.node.chain.supervision.periods import iso_time
from almoner.node.chain.supervision.rules import Context
from almoner.node.chain.tx import GENERAL_FUND

Sums = dict[tuple[Any, ...], list[int]]  # key -> [count, amount]


def _add(sums: Sums, key: tuple[Any, ...], amount: int) -> None:
    entry = sums.get(key)
    if entry is None:
        sums[key] = [1, amount]
    else:
        entry[0] += 1
        entry[1] += amount


@dataclass
class CharityPeriod:
    """One charity in one period. Keys of the sums:

    income (platform, fund, currency); transfers_in (from charity, to fund, currency);
    transfers_out (to charity, from fund, currency); spending (fund, category, currency);
    refunds (platform, fund, currency); unconfirmed (currency,).
    """

    charity: bytes
    period: str = ""
    start: int = 0
    end: int = 0
    income: Sums = field(default_factory=dict)
    transfers_in: Sums = field(default_factory=dict)
    transfers_out: Sums = field(default_factory=dict)
    spending: Sums = field(default_factory=dict)
    refunds: Sums = field(default_factory=dict)
    unconfirmed: Sums = field(default_factory=dict)
    opinions: list[dict[str, Any]] = field(default_factory=list)
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    first_time: int | None = None
    last_time: int | None = None


@dataclass(frozen=True)
class PartyInfo:
    name: str
    org_id: str
    role: str


@dataclass
class Disclosure:
    """Everything the writers need: the reports and who every key is."""

    chain_id: str
    genesis_hash: str
    head: dict[str, Any] | None
    reports: list[CharityPeriod]
    parties: dict[bytes, PartyInfo]
    funds: dict[tuple[bytes, str], dict[str, Any]]  # (charity, fund) -> title, currency, opened


class DisclosureCollector:
    def __init__(self) -> None:
        self.current: dict[bytes, CharityPeriod] = {}
        self.pending: dict[tuple[bytes, str], tuple[bytes, str, int]] = {}
        self.reports: list[CharityPeriod] = []
        self.parties: dict[bytes, PartyInfo] = {}
        self.funds: dict[tuple[bytes, str], dict[str, Any]] = {}

    def _at(self, charity: bytes, ctx: Context, time: int) -> CharityPeriod:
        entry = self.current.get(charity)
        if entry is None:
            entry = self.current[charity] = CharityPeriod(charity)
        if entry.first_time is None:
            entry.first_time = time
        entry.last_time = time
        self._party(charity, ctx)
        return entry

    def _party(self, key: bytes, ctx: Context) -> None:
        if key not in self.parties:
            record = get_party(ctx.ledger.store, key)
            self.parties[key] = (
                PartyInfo(key.hex()[:16], key.hex()[:16], "unknown")
                if record is None
                else PartyInfo(record["name"], record["org_id"], record["role"])
            )

    def _fund(self, charity: bytes, fund: str, currency: str, time: int, ctx: Context) -> None:
        if (charity, fund) in self.funds:
            return
        title, opened = "General fund", time
        if fund != GENERAL_FUND:
            campaign = get_campaign(ctx.ledger.store, charity, fund)
            if campaign is not None:
                title = campaign["title"]
        self.funds[(charity, fund)] = {"title": title, "currency": currency, "opened": opened}

    def on_event(self, event: Event, ctx: Context) -> None:
        body, kind, t = event.body, event.tx_type, event.time
        if kind == "donation.record":
            fund = body["campaign"] or GENERAL_FUND
            entry = self._at(body["charity"], ctx, t)
            self._party(event.signer, ctx)
            self._fund(body["charity"], fund, body["currency"], t, ctx)
            _add(entry.income, (event.signer, fund, body["currency"]), body["amount"])
            self.pending[(event.signer, body["donation"])] = (
                body["charity"],
                body["currency"],
                body["amount"],
            )
        elif kind == "donation.confirm":
            self.pending.pop((body["platform"], body["donation"]), None)
        elif kind == "funds.transfer" and body["to"] != event.signer:
            currency = body["currency"]
            out = self._at(event.signer, ctx, t)
            _add(out.transfers_out, (body["to"], body["from_fund"], currency), body["amount"])
            into = self._at(body["to"], ctx, t)
            self._fund(body["to"], body["to_fund"], currency, t, ctx)
            _add(into.transfers_in, (event.signer, body["to_fund"], currency), body["amount"])
        elif kind == "funds.disburse":
            entry = self._at(event.signer, ctx, t)
            key = (body["fund"], body["category"], body["currency"])
            _add(entry.spending, key, body["amount"])
        elif kind == "donation.refund":
            self._refund(event, ctx)
        elif kind == "audit.attest":
            entry = self._at(body["charity"], ctx, t)
            self._party(event.signer, ctx)
            entry.opinions.append(
                {
                    "regulator": event.signer,
                    "attestation": body["attestation"],
                    "audit_period": body["period"],
                    "opinion": body["opinion"],
                    "note": body["note"],
                    "tx_id": event.ref.tx_id,
                    "height": event.ref.height,
                    "time": iso_time(t),
                }
            )
        elif kind == "party.suspend":
            self._party(body["party"], ctx)
            if self.parties[body["party"]].role == "charity":
                entry = self._at(body["party"], ctx, t)
                entry.suspensions.append(
                    {
                        "regulator": event.signer,
                        "reason": body["reason"],
                        "tx_id": event.ref.tx_id,
                        "height": event.ref.height,
                        "time": iso_time(t),
                    }
                )

    def _refund(self, event: Event, ctx: Context) -> None:
        body = event.body
        donation = ctx.donation(body["platform"], body["donation"])
        currency = "XXX" if donation is None else donation["currency"]
        entry = self._at(event.signer, ctx, event.time)
        for hop in event.hops:
            _add(entry.refunds, (body["platform"], hop.from_fund, currency), hop.amount)

    def close_period(self, ctx: Context, label: str, start: int, end: int) -> None:
        for charity, currency, amount in self.pending.values():
            entry = self.current.get(charity)
            if entry is None:
                entry = self.current[charity] = CharityPeriod(charity)
                self._party(charity, ctx)
            _add(entry.unconfirmed, (currency,), amount)
        for charity in sorted(self.current):
            entry = self.current[charity]
            entry.period, entry.start, entry.end = label, start, end
            self.reports.append(entry)
        self.current = {}
