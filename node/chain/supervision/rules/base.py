"""What every rule shares: its settings, the replay it may read, and how it words a signal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from almoner.node.chain.ledger import Ledger
from almoner.node.chain.party_keys import party_id_for
from almoner.node.chain.state import get_donation, get_party
from almoner.node.chain.supervision.model import Event, Signal, TxRef
from almoner.node.chain.supervision.periods import period_bounds

MAX_TXS = 50  # per signal; the rest are counted in `txs_omitted`


class Context:
    """Read access to the verified replay as of the block being observed."""

    def __init__(self, ledger: Ledger, granularity: str) -> None:
        self.ledger = ledger
        self.granularity = granularity
        self.block_index: dict[bytes, int] = {}  # tx id -> index, for the current block
        self._names: dict[bytes, str] = {}
        self._parties: dict[bytes, bytes] = {}

    def party_of(self, key: bytes) -> bytes:
        """The party id a signing key belongs to; cached, since a key never changes hands
        (retired keys are never reused)."""
        party = self._parties.get(key)
        if party is None:
            party = self._parties[key] = party_id_for(self.ledger.store, key)
        return party

    def name(self, party: bytes) -> str:
        if party not in self._names:
            record = get_party(self.ledger.store, party)
            self._names[party] = party.hex()[:16] if record is None else record["name"]
        return self._names[party]

    def donation(self, platform: bytes, donation: str) -> dict[str, Any] | None:
        return get_donation(self.ledger.store, platform, donation)

    def ref_of(self, tx_id: bytes) -> TxRef:
        where = self.ledger.tx_location(tx_id)
        assert where is not None, "a committed tx is always indexed"
        return TxRef(tx_id, where["height"], where["leaf_index"])

    def period(self, time_ms: int) -> str:
        return period_bounds(time_ms, self.granularity)[0]


class Rule:
    """A rule sees every event in chain order, the passing of block time, and the end of
    each period; it returns the signals it raises at each of these moments."""

    name: ClassVar[str]

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        self.settings = settings
        self.ctx = ctx

    def on_time(self, now: int) -> list[Signal]:
        return []

    def on_event(self, event: Event) -> list[Signal]:
        return []

    def close_period(self, label: str, start: int, end: int) -> list[Signal]:
        """The period's signals. Rebind the state it reads (`self.x = {}`), never clear it
        in place: the node peeks at an open period through a shallow copy of the rule."""
        return []

    def signal(
        self,
        party: bytes,
        subject: str,
        span: tuple[int, int],
        txs: Sequence[TxRef],
        text: tuple[str, str],
        details: dict[str, Any],
        *,
        severity: str | None = None,
        period: str | None = None,
    ) -> Signal:
        start, end = span
        return Signal(
            rule=self.name,
            severity=severity or self.settings["severity"],
            party=party,
            period=period or self.ctx.period(end),
            subject=subject,
            start=start,
            end=end,
            txs=list(txs[:MAX_TXS]),
            en=text[0],
            zh=text[1],
            details=details,
            txs_omitted=max(0, len(txs) - MAX_TXS),
            periodic=period is not None,
        )


def duration(ms: int) -> tuple[str, str]:
    """A span of block time in words, (English, 中文): days, or hours/minutes when short."""
    if ms >= 86_400_000:
        value = f"{ms / 86_400_000:.1f}"
        return f"{value} days", f"{value} 天"
    if ms >= 3_600_000:
        value = f"{ms / 3_600_000:.1f}"
        return f"{value} hours", f"{value} 小时"
    minutes = max(1, round(ms / 60_000))
    return f"{minutes} minute{'s' if minutes > 1 else ''}", f"{minutes} 分钟"


Entry = TypeVar("Entry")
Period = tuple[str, int, int]  # label, start, end (block time, ms)


class DisbursementTally(Rule, Generic[Entry]):
    """A rule that judges each charity's disbursements per currency over one period: every
    `funds.disburse` is tallied into the entry of its (charity, currency), and every entry
    is judged when the period closes."""

    def __init__(self, settings: dict[str, Any], ctx: Context) -> None:
        super().__init__(settings, ctx)
        self.spending: dict[tuple[bytes, str], Entry] = {}

    def new_entry(self) -> Entry:
        raise NotImplementedError

    def tally(self, entry: Entry, body: dict[str, Any], ref: TxRef) -> None:
        raise NotImplementedError

    def judge(self, charity: bytes, currency: str, entry: Entry, period: Period) -> Signal | None:
        raise NotImplementedError

    def on_event(self, event: Event) -> list[Signal]:
        if event.tx_type == "funds.disburse":
            key = (event.signer, event.body["currency"])
            entry = self.spending.get(key)
            if entry is None:
                entry = self.spending[key] = self.new_entry()
            self.tally(entry, event.body, event.ref)
        return []

    def close_period(self, label: str, start: int, end: int) -> list[Signal]:
        found = []
        for (charity, currency), entry in sorted(self.spending.items(), key=lambda kv: kv[0]):
            signal = self.judge(charity, currency, entry, (label, start, end))
            if signal is not None:
                found.append(signal)
        self.spending = {}
        return found
