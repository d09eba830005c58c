"""The values supervision produces: severities, transaction references and signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from almoner.node.chain.supervision.periods import iso_time

SEVERITIES = ("info", "warning", "high")


def severity_rank(severity: str) -> int:
    """info < warning < high; `--fail-on` compares by this rank."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class TxRef:
    """Where a tx sits: its id, block height and leaf in the transaction log (for proofs)."""

    tx_id: bytes
    height: int
    leaf_index: int

    def to_json(self) -> dict[str, Any]:
        return {"tx_id": self.tx_id.hex(), "height": self.height, "leaf_index": self.leaf_index}


@dataclass(frozen=True, slots=True)
class Hop:
    """One movement of one donation's money by one tx, as the contract's lineage wrote it."""

    platform: bytes
    donation: str
    kind: str  # transfer | disburse | refund
    amount: int
    from_charity: bytes
    from_fund: str
    to_charity: bytes | None
    to_fund: str | None


@dataclass(frozen=True, slots=True)
class Event:
    """One applied tx with its block time and the lineage hops it wrote."""

    tx_type: str
    time: int  # block time, ms since the epoch
    ref: TxRef
    index: int  # position in its block
    signer: bytes
    body: dict[str, Any]
    hops: tuple[Hop, ...] = ()


@dataclass
class Signal:
    """One finding of one rule about one party.

    `start`/`end` bound what the signal is about in block time (ms): a whole period for
    period rules (`periodic`, end exclusive); for the others, from the first tx involved
    to the moment the finding became true (`end`), which also names its period.
    """

    rule: str
    severity: str
    party: bytes
    period: str
    subject: str
    start: int
    end: int
    txs: list[TxRef]
    en: str
    zh: str
    details: dict[str, Any] = field(default_factory=dict)
    txs_omitted: int = 0
    periodic: bool = False

    def in_window(self, start: int | None, end: int | None) -> bool:
        """A period signal when its period overlaps the window; any other when the moment
        it arose lies in it."""
        if self.periodic:
            return (start is None or self.end > start) and (end is None or self.start < end)
        return (start is None or self.end >= start) and (end is None or self.end < end)

    def to_json(self, party_name: str) -> dict[str, Any]:
        """The documented shape (docs/supervision.md), shared by `supervise --json` and the
        node's `/v1/supervision/signals`."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "party": self.party.hex(),
            "party_name": party_name,
            "period": self.period,
            "subject": self.subject,
            "from": iso_time(self.start),
            "to": iso_time(self.end),
            "txs": [ref.to_json() for ref in self.txs],
            "txs_omitted": self.txs_omitted,
            "explanation": {"en": self.en, "zh": self.zh},
            "details": self.details,
        }
