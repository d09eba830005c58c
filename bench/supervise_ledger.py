"""A labelled synthetic ledger for `bench/supervise.py`: a simulated year of many
charities and platforms with planted cases of every supervision rule and planted outlier
charities, and a clean remainder built so that no rule should fire on it.

The generator keeps its own FIFO model of each charity's general fund (the ledger's
lineage order) so that clean charities only ever spend money of confirmed donations that
is at least two days old, and transfers between clean charities only go from a lower to a
higher index (no loops). Every planted case is recorded with the key a signal of its rule
is matched by (`signal_key`).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.codec import H
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.supervision.periods import period_bounds
from almoner.node.chain.tx import encode_tx, make_tx
from tests.localchain import LOCAL_GENESIS_TIME, LocalKeys, local_genesis

HOUR = 3_600_000
DAY = 24 * HOUR
USD = "USD"
PAYEES = tuple(f"Supplier {i:02d}" for i in range(12))
OUTLIER_KINDS = ("overhead", "payee", "slow_confirm", "refunds")

Key = tuple[Any, ...]


def signal_key(signal: dict[str, Any]) -> Key:
    """What a signal of each rule is matched on against the planted cases."""
    rule, txs, details = signal["rule"], signal["txs"], signal["details"]
    if rule in ("unconfirmed_donation", "spent_before_confirmation"):
        return (rule, txs[0]["tx_id"])
    if rule in ("disbursement_without_evidence", "audit_opinion"):
        return (rule, txs[0]["tx_id"])
    if rule in ("circular_flow", "quick_refund"):
        return (rule, txs[-1]["tx_id"])
    if rule == "idle_restricted_funds":
        return (rule, signal["party"], details["fund"])
    if rule == "donation_splitting":
        return (rule, signal["party"], details["donor"])
    return (rule, signal["party"], signal["period"])  # overhead, payee: per period


@dataclass
class Lot:
    donation: tuple[str, str]  # (platform name, donation id)
    remaining: int
    time: int


@dataclass
class Charity:
    name: str
    index: int
    kind: str = "clean"  # clean | outlier kinds | circular | idle
    lots: deque[Lot] = field(default_factory=deque)
    next_spend: int = 0


@dataclass
class Labelled:
    genesis: Genesis
    keys: LocalKeys
    blocks: list[tuple[int, list[bytes]]]
    planted: set[Key]
    outliers: set[str]  # charity public keys (hex)
    txs: int


class Generator:
    def __init__(self, charities: int, platforms: int, days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.charity_names = [f"charity-b{i:03d}" for i in range(charities)]
        self.platform_names = [f"platform-b{i:02d}" for i in range(platforms)]
        extra = [(n, "charity") for n in self.charity_names]
        extra += [(n, "platform") for n in self.platform_names]
        self.genesis, self.keys = local_genesis(extra_parties=extra)
        self.nonce = 0
        self.counter = 0
        self.confirmed: dict[tuple[str, str], bool] = {}
        self.recipient: dict[tuple[str, str], str] = {}
        self.planted: set[Key] = set()
        self.pending: dict[int, list[bytes]] = {}  # hour -> txs scheduled for it
        self.charities = [Charity(n, i) for i, n in enumerate(self.charity_names)]
        self._assign_kinds()
        self.spend_months: dict[tuple[str, str], int] = {}
        self.confirm_at: dict[int, list[tuple[str, str]]] = {}
        # planted actions that depend on the model's state at their hour
        self.deferred: dict[int, list[Any]] = {}
        self.final: list[bytes] = []

    # -- helpers ----------------------------------------------------------------------
    def pub(self, name: str) -> bytes:
        return self.keys[name].public_key

    def tx(self, signer: str, tx_type: str, body: dict[str, Any]) -> bytes:
        self.nonce += 1
        return encode_tx(
            make_tx(self.genesis.chain_id, tx_type, self.keys[signer], body, self.nonce)
        )

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def at(self, hour: int, raw: bytes) -> bytes:
        self.pending.setdefault(hour, []).append(raw)
        return raw

    def _assign_kinds(self) -> None:
        order = list(range(len(self.charities)))
        self.rng.shuffle(order)
        picks = iter(order)
        for kind in OUTLIER_KINDS:
            for _ in range(3):
                self.charities[next(picks)].kind = kind
        for _ in range(6):
            self.charities[next(picks)].kind = "circular"
        for _ in range(4):
            self.charities[next(picks)].kind = "idle"

    # -- money ------------------------------------------------------------------------
    def donate(
        self,
        hour: int,
        charity: Charity,
        amount: int,
        *,
        donor: bytes | None = None,
        campaign: str | None = None,
        confirm_after: float | None = None,
    ) -> tuple[bytes, tuple[str, str]]:
        platform = self.rng.choice(self.platform_names)
        did = self.new_id("d")
        key = (platform, did)
        raw = self.at(
            hour,
            self.tx(
                platform,
                "donation.record",
                {
                    "donation": did,
                    "donor": donor or H(did.encode()),
                    "charity": self.pub(charity.name),
                    "campaign": campaign,
                    "amount": amount,
                    "currency": USD,
                    "received_at": LOCAL_GENESIS_TIME,
                },
            ),
        )
        self.confirmed[key] = False
        self.recipient[key] = charity.name
        if campaign is None:
            charity.lots.append(Lot(key, amount, hour))
        if confirm_after is None:
            delay = (
                self.rng.uniform(10, 25) * 24
                if charity.kind == "slow_confirm"
                else (self.rng.uniform(1, 24))
            )
        else:
            delay = confirm_after
        if delay >= 0:
            when = hour + max(1, int(delay))
            self.at(
                when,
                self.tx(
                    charity.name,
                    "donation.confirm",
                    {"platform": self.pub(platform), "donation": did},
                ),
            )
            self.pending_confirm(when, key)
        return raw, key

    def pending_confirm(self, hour: int, key: tuple[str, str]) -> None:
        self.confirm_at.setdefault(hour, []).append(key)

    def spendable(self, charity: Charity, hour: int) -> int:
        """Money at the front of the general fund that is confirmed and 2+ days old."""
        total = 0
        for lot in charity.lots:
            if not self.confirmed[lot.donation] or lot.time > hour - 48:
                break
            total += lot.remaining
        return total

    def consume(self, charity: Charity, amount: int) -> list[Lot]:
        taken = []
        while amount:
            lot = charity.lots[0]
            take = min(amount, lot.remaining)
            lot.remaining -= take
            amount -= take
            taken.append(Lot(lot.donation, take, lot.time))
            if lot.remaining == 0:
                charity.lots.popleft()
        return taken

    def disburse(
        self,
        hour: int,
        charity: Charity,
        amount: int,
        category: str,
        payee: str,
        *,
        evidence: bool = True,
    ) -> bytes:
        self.consume(charity, amount)
        month = period_bounds(LOCAL_GENESIS_TIME + hour * HOUR, "month")[0]
        if category == "program":
            key = (charity.name, month)
            self.spend_months[key] = self.spend_months.get(key, 0) + 1
        return self.at(
            hour,
            self.tx(
                charity.name,
                "funds.disburse",
                {
                    "disbursement": self.new_id("x"),
                    "fund": "general",
                    "amount": amount,
                    "currency": USD,
                    "category": category,
                    "payee": payee,
                    "purpose": "programme costs",
                    "evidence": [H(f"inv{self.counter}".encode())] if evidence else [],
                },
            ),
        )

    def transfer(self, hour: int, source: Charity, target: Charity, amount: int) -> bytes:
        for lot in self.consume(source, amount):
            target.lots.append(Lot(lot.donation, lot.remaining, hour))
        return self.at(
            hour,
            self.tx(
                source.name,
                "funds.transfer",
                {
                    "transfer": self.new_id("t"),
                    "from_fund": "general",
                    "to": self.pub(target.name),
                    "to_fund": "general",
                    "amount": amount,
                    "currency": USD,
                    "purpose": "regranting",
                },
            ),
        )

    def refund(self, hour: int, charity: Charity, key: tuple[str, str], amount: int) -> bytes:
        for lot in charity.lots:
            if lot.donation == key:
                lot.remaining -= amount
        charity.lots = deque(lot for lot in charity.lots if lot.remaining > 0)
        return self.at(
            hour,
            self.tx(
                charity.name,
                "donation.refund",
                {
                    "refund": self.new_id("r"),
                    "platform": self.pub(key[0]),
                    "donation": key[1],
                    "amount": amount,
                },
            ),
        )

    # -- the year ---------------------------------------------------------------------
    def spend(self, hour: int, charity: Charity, planted_no_evidence: bool) -> None:
        available = self.spendable(charity, hour)
        if available < 20_000:
            return
        budget = int(available * self.rng.uniform(0.3, 0.7))
        if charity.kind == "overhead":
            admin_share = self.rng.uniform(0.25, 0.4)
        else:
            admin_share = self.rng.uniform(0.02, 0.08)
        admin = int(budget * admin_share)
        program = budget - admin
        parts = 3
        for i in range(parts):
            share = program // parts if i < parts - 1 else program - program // parts * (parts - 1)
            payee = PAYEES[0] if charity.kind == "payee" else self.rng.choice(PAYEES)
            no_evidence = planted_no_evidence and i == 0 and share >= 100_000
            raw = self.disburse(hour, charity, share, "program", payee, evidence=not no_evidence)
            if no_evidence:
                self.planted.add(("disbursement_without_evidence", H(raw).hex()))
                planted_no_evidence = False
        if admin:
            self.disburse(hour, charity, admin, "admin", "Head office")

    def run(self) -> None:
        """Hour by hour: deferred planted actions, donations, spending, transfers."""
        hours = self.days * 24
        rng = self.rng
        self.confirm_at = {}
        clean = [c for c in self.charities if c.kind == "clean"]
        no_evidence = {
            rng.choice(clean).name: rng.randrange(24 * 30, hours - 24 * 30) for _ in range(10)
        }
        for c in self.charities:
            c.next_spend = rng.randrange(24 * 3, 24 * 10)
        self._plant_fixed(hours, clean)
        for hour in range(1, hours):
            for key in self.confirm_at.pop(hour, []):
                self.confirmed[key] = True
            for action in self.deferred.pop(hour, []):
                action(hour)
            for _ in range(self._poisson(5.0)):
                charity = rng.choice([c for c in self.charities if c.kind != "circular"])
                self.donate(hour, charity, rng.randrange(5_000, 60_000))
            for c in self.charities:
                if hour < c.next_spend or c.kind == "circular":
                    continue
                if c.kind == "refunds":
                    self._refund_some(hour, c)
                    c.next_spend = hour + rng.randrange(24 * 2, 24 * 4)
                    continue
                due = c.name in no_evidence and hour >= no_evidence[c.name]
                before = len(self.planted)
                self.spend(hour, c, due)
                if due and len(self.planted) > before:
                    del no_evidence[c.name]
                c.next_spend = hour + rng.randrange(24 * 5, 24 * 9)
            if rng.random() < 0.12:
                i, j = sorted(rng.sample(range(len(clean)), 2))
                source, target = clean[i], clean[j]
                available = self.spendable(source, hour)
                if available > 50_000:
                    self.transfer(hour, source, target, available // 5)
        for (name, month), count in self.spend_months.items():
            charity = next(c for c in self.charities if c.name == name)
            if charity.kind == "payee" and count >= 5:
                self.planted.add(("payee_concentration", self.pub(name).hex(), month))
        self._label_overhead()

    def _label_overhead(self) -> None:
        for c in self.charities:
            if c.kind == "overhead":
                for (name, month), _ in self.spend_months.items():
                    if name == c.name:
                        self.planted.add(("overhead_above_limit", self.pub(name).hex(), month))

    def _refund_some(self, hour: int, charity: Charity) -> None:
        """Refund-heavy outliers: refund donations 8+ days old (never 'quick'), partly."""
        for lot in list(charity.lots):
            if hour - lot.time > 24 * 8 and self.rng.random() < 0.5:
                self.refund(hour, charity, lot.donation, max(1, lot.remaining // 2))

    def _poisson(self, mean: float) -> int:
        count, threshold, product = 0, pow(2.718281828459045, -mean), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        return count

    def _plant_fixed(self, hours: int, clean: list[Charity]) -> None:
        rng = self.rng
        # circular_flow: three pairs that only ever transfer to each other
        circular = [c for c in self.charities if c.kind == "circular"]
        for a, b in zip(circular[::2], circular[1::2], strict=True):
            for start in (24 * 60, 24 * 200):
                self.donate(start - 24 * 5, a, 200_000)
                self.donate(start - 24 * 5, b, 200_000)
                self._later(start, lambda h, a=a, b=b: self.transfer(h, a, b, 50_000))
                back = start + 24 * 5
                self._later(
                    back,
                    lambda h, a=a, b=b: self._plant(
                        ("circular_flow",), self.transfer(h, b, a, 50_000)
                    ),
                )
        # idle_restricted_funds and unconfirmed_donation: campaigns never spent from
        for c in (c for c in self.charities if c.kind == "idle"):
            self.at(
                2,
                self.tx(
                    c.name,
                    "campaign.open",
                    {"campaign": "appeal", "title": "冬季助学", "currency": USD, "goal": 10**8},
                ),
            )
            self.planted.add(("idle_restricted_funds", self.pub(c.name).hex(), "appeal"))
            for day in (5, 12):
                self.donate(24 * day, c, 30_000, campaign="appeal")
            raw, _ = self.donate(24 * 20, c, 10_000, campaign="appeal", confirm_after=-1)
            self.planted.add(("unconfirmed_donation", H(raw).hex()))
        # quick_refund: recorded, confirmed an hour later, refunded an hour after that
        for _ in range(8):
            c = rng.choice(clean)
            hour = rng.randrange(24 * 10, hours - 24 * 10)
            _, key = self.donate(hour, c, 40_000, confirm_after=1)
            self._later(
                hour + 2,
                lambda h, c=c, key=key: self._plant(
                    ("quick_refund",), self.refund(h, c, key, 40_000)
                ),
            )
        # donation_splitting: six small gifts from one donor within ten hours
        for n in range(6):
            c = rng.choice(clean)
            donor = H(f"splitter-{n}".encode())
            hour = rng.randrange(24 * 10, hours - 24 * 10)
            for k in range(6):
                self.donate(hour + 2 * k, c, 5_000, donor=donor)
            self.planted.add(("donation_splitting", self.pub(c.name).hex(), donor.hex()))
        # spent_before_confirmation: a big gift spent at once, confirmed later
        for _ in range(6):
            c = rng.choice(clean)
            hour = rng.randrange(24 * 20, hours - 24 * 20)
            self._later(hour, lambda h, c=c: self._spend_unconfirmed(h, c))
        # audit opinions and suspensions
        for month_day in (180, hours // 24 - 2):
            for c in self.charities:
                self.at(24 * month_day, self._attest(c, "clean"))
        for opinion in ("qualified", "qualified", "adverse", "adverse", "disclaimer"):
            raw = self.at(24 * 181, self._attest(rng.choice(self.charities), opinion))
            self.planted.add(("audit_opinion", H(raw).hex()))
        for c in rng.sample(clean, 2):
            raw = self.tx(
                "regulator",
                "party.suspend",
                {"party": self.pub(c.name), "reason": "licence revoked 吊销"},
            )
            self.final.append(raw)  # the very last block: a suspended party signs nothing
            self.planted.add(("audit_opinion", H(raw).hex()))

    def _attest(self, c: Charity, opinion: str) -> bytes:
        return self.tx(
            "regulator",
            "audit.attest",
            {
                "attestation": self.new_id("a"),
                "charity": self.pub(c.name),
                "period": "2026",
                "opinion": opinion,
                "report": H(b"report"),
                "note": "" if opinion == "clean" else "见报告",
            },
        )

    def _plant(self, rule: tuple[str], raw: bytes) -> bytes:
        self.planted.add((rule[0], H(raw).hex()))
        return raw

    def _later(self, hour: int, action: Any) -> None:
        self.deferred.setdefault(hour, []).append(action)

    def _spend_unconfirmed(self, hour: int, c: Charity) -> None:
        self.donate(hour, c, 300_000, confirm_after=3)
        total = sum(lot.remaining for lot in c.lots)
        raw = self.disburse(hour + 1, c, total, "program", self.rng.choice(PAYEES))
        self.planted.add(("spent_before_confirmation", H(raw).hex()))


def generate(charities: int = 100, platforms: int = 10, days: int = 365, seed: int = 1) -> Labelled:
    gen = Generator(charities, platforms, days, seed)
    gen.run()
    blocks = []
    opening: list[bytes] = []
    hours = days * 24
    gen.pending = {hour: txs for hour, txs in gen.pending.items() if hour < hours}
    gen.pending[hours] = gen.final
    for hour in sorted(gen.pending):
        txs = gen.pending[hour]
        if hour == 0:
            opening = txs
            continue
        blocks.append((LOCAL_GENESIS_TIME + hour * HOUR, txs))
    if opening:
        blocks.insert(0, (LOCAL_GENESIS_TIME + 1, opening))
    outliers = {gen.pub(c.name).hex() for c in gen.charities if c.kind in OUTLIER_KINDS}
    total = sum(len(txs) for _, txs in blocks)
    return Labelled(gen.genesis, gen.keys, blocks, gen.planted, outliers, total)
