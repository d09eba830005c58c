"""The demo data set of `make devnet`: a small but complete story of donated money.

Two platforms record donations to three charities (general and campaign funds), the
charities confirm, move money between funds and to each other, spend it with evidence
hashes, refund one donor, and the regulator attests an audit. Each tx is waited for,
so the demo also checks that the network commits.
"""

from __future__ import annotations

import time
from typing import Any

from almoner.node.audit.client import Client
from almoner.node.chain.codec import H
from almoner.node.devnet.network import Devnet


def load_demo(devnet: Devnet, url: str) -> list[dict[str, Any]]:
    keys = {
        name: devnet.key(name)
        for name in ("regulator", "platform-1", "platform-2", "charity-1", "charity-2", "charity-3")
    }
    pub = {name: key.public_key for name, key in keys.items()}
    now = int(time.time() * 1000)
    script: list[tuple[str, str, dict[str, Any]]] = [
        (
            "charity-1",
            "campaign.open",
            {
                "campaign": "wells-2026",
                "title": "Wells for Turkana",
                "currency": "USD",
                "goal": 5_000_000,
            },
        ),
        (
            "charity-2",
            "campaign.open",
            {
                "campaign": "books",
                "title": "课本 for rural schools",
                "currency": "CNY",
                "goal": 20_000_000,
            },
        ),
    ]
    donations = [
        ("platform-1", "GN-1001", "charity-1", "wells-2026", 250_00, "USD"),
        ("platform-1", "GN-1002", "charity-1", None, 40_00, "USD"),
        ("platform-1", "GN-1003", "charity-3", None, 75_00, "USD"),
        ("platform-2", "SD-0001", "charity-2", "books", 1_000_00, "CNY"),
        ("platform-2", "SD-0002", "charity-2", None, 300_00, "CNY"),
        ("platform-2", "SD-0003", "charity-1", "wells-2026", 120_00, "USD"),
    ]
    for platform, donation, charity, campaign, amount, currency in donations:
        script.append(
            (
                platform,
                "donation.record",
                {
                    "donation": donation,
                    "donor": H(f"demo-donor:{donation}".encode()),
                    "charity": pub[charity],
                    "campaign": campaign,
                    "amount": amount,
                    "currency": currency,
                    "received_at": now,
                },
            )
        )
        script.append(
            (charity, "donation.confirm", {"platform": pub[platform], "donation": donation})
        )
    script += [
        (
            "charity-1",
            "funds.transfer",
            {
                "transfer": "T-1",
                "from_fund": "general",
                "to": pub["charity-3"],
                "to_fund": "general",
                "amount": 20_00,
                "currency": "USD",
                "purpose": "shared logistics",
            },
        ),
        (
            "charity-1",
            "funds.disburse",
            {
                "disbursement": "D-1",
                "fund": "wells-2026",
                "amount": 300_00,
                "currency": "USD",
                "category": "program",
                "payee": "Turkana Drilling Co.",
                "purpose": "borehole #1",
                "evidence": [H(b"invoice-TDC-17"), H(b"photo-borehole-1")],
            },
        ),
        (
            "charity-2",
            "funds.disburse",
            {
                "disbursement": "D-7",
                "fund": "books",
                "amount": 600_00,
                "currency": "CNY",
                "category": "program",
                "payee": "人民教育出版社",
                "purpose": "textbooks",
                "evidence": [H(b"fapiao-0042")],
            },
        ),
        (
            "charity-3",
            "funds.disburse",
            {
                "disbursement": "D-2",
                "fund": "general",
                "amount": 10_00,
                "currency": "USD",
                "category": "admin",
                "payee": "Cold Storage Ltd",
                "purpose": "freezer rent",
                "evidence": [],
            },
        ),
        (
            "charity-2",
            "donation.refund",
            {
                "refund": "R-1",
                "platform": pub["platform-2"],
                "donation": "SD-0002",
                "amount": 50_00,
            },
        ),
        (
            "regulator",
            "audit.attest",
            {
                "attestation": "A-2026-1",
                "charity": pub["charity-1"],
                "period": "2026",
                "opinion": "clean",
                "report": H(b"audit-report-2026"),
                "note": "demo",
            },
        ),
    ]
    receipts = []
    with Client(url) as client:
        for nonce, (signer, tx_type, body) in enumerate(script):
            tx = client.build(tx_type, keys[signer], body, nonce=now * 1000 + nonce)
            receipts.append(client.submit(tx, wait=True))
    return receipts
