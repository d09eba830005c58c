"""Small certified chains with block times chosen by the test, for the supervision rules.

Real keys, real signatures, real certificates (tests.localchain), replayed by the real
verifier into a real LevelDB scratch store when supervised.
"""

from __future__ import annotations

from typing import Any

from almoner.node.audit.supervise.engine import SuperviseReport, supervise
from almoner.node.chain.codec import H, encode
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.supervision.model import Signal
from tests.localchain import LOCAL_GENESIS_TIME, LocalChain, Workload, local_genesis

DAY = 86_400_000
HOUR = 3_600_000


class Scenario:
    def __init__(self) -> None:
        self.genesis, self.keys = local_genesis()
        self.chain = LocalChain(self.genesis, self.keys.validators)
        self.w = Workload(self.genesis, self.keys, seed=5)
        self.last = LOCAL_GENESIS_TIME

    def pub(self, name: str) -> bytes:
        return self.keys[name].public_key

    def at(self, time_ms: float, *txs: bytes) -> None:
        """A block at genesis time + `time_ms` (ms; use DAY/HOUR multiples)."""
        moment = LOCAL_GENESIS_TIME + int(time_ms)
        assert moment > self.last, "blocks must move forward in time"
        self.chain.add_block(list(txs), moment)
        self.last = moment

    def tx_id(self, raw: bytes) -> bytes:
        return H(raw)

    # -- txs the Workload does not make --------------------------------------------------
    def disburse(
        self,
        charity: str,
        amount: int,
        *,
        category: str = "program",
        payee: str = "Village school",
        fund: str = "general",
        currency: str = "USD",
        evidence: bool = True,
    ) -> bytes:
        return self.w.tx(
            charity,
            "funds.disburse",
            {
                "disbursement": self.w.next_id("dis"),
                "fund": fund,
                "amount": amount,
                "currency": currency,
                "category": category,
                "payee": payee,
                "purpose": "supplies",
                "evidence": [H(b"invoice")] if evidence else [],
            },
        )

    def refund(self, charity: str, platform: str, donation: str, amount: int) -> bytes:
        return self.w.tx(
            charity,
            "donation.refund",
            {
                "refund": self.w.next_id("ref"),
                "platform": self.pub(platform),
                "donation": donation,
                "amount": amount,
            },
        )

    def donate(
        self,
        charity: str,
        amount: int,
        donation: str,
        *,
        platform: str = "platform-1",
        donor: bytes | None = None,
        campaign: str | None = None,
        currency: str = "USD",
    ) -> bytes:
        raw = self.w.donation(platform, charity, amount, currency, campaign, donation)
        if donor is None:
            return raw
        tx: dict[str, Any] = {
            "donation": donation,
            "donor": donor,
            "charity": self.pub(charity),
            "campaign": campaign,
            "amount": amount,
            "currency": currency,
            "received_at": LOCAL_GENESIS_TIME,
        }
        return self.w.tx(platform, "donation.record", tx)

    def attest(self, charity: str, opinion: str, note: str = "") -> bytes:
        return self.w.tx(
            "regulator",
            "audit.attest",
            {
                "attestation": self.w.next_id("att"),
                "charity": self.pub(charity),
                "period": "2026",
                "opinion": opinion,
                "report": H(b"report"),
                "note": note,
            },
        )

    def suspend(self, party: str, reason: str) -> bytes:
        return self.w.tx("regulator", "party.suspend", {"party": self.pub(party), "reason": reason})

    # -- supervision ------------------------------------------------------------------------
    def items(self) -> list[bytes]:
        return [encode({"block": b, "commit": c}) for b, c in self.chain.blocks()]

    def supervise(self, **kwargs: Any) -> SuperviseReport:
        overrides = kwargs.pop("rules", {})
        return supervise(
            self.genesis, self.items(), settings=thresholds.resolve(overrides), **kwargs
        )

    def signals(self, rule: str, **kwargs: Any) -> list[Signal]:
        report = self.supervise(**kwargs)
        assert report.verify.ok, report.verify.violation
        return [s for s in report.signals if s.rule == rule]
