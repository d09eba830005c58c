"""One chain with a little of everything (several rules fire), written as an archive."""

from __future__ import annotations

import functools
from pathlib import Path

from almoner.node.audit.archive import ArchiveWriter
from almoner.node.chain.genesis import dump_genesis
from tests.audit.scenario import DAY, Scenario


@functools.cache
def demo() -> Scenario:
    s = Scenario()
    s.at(1, *s.w.opening())
    s.at(
        DAY,
        s.donate("charity-1", 100_000, "a1"),
        s.donate("charity-2", 50_000, "b1", platform="platform-2", currency="CNY"),
        s.donate(
            "charity-2", 20_000, "b2", platform="platform-2", campaign="books", currency="CNY"
        ),
        s.donate("charity-3", 30_000, "c1"),
    )
    s.at(
        DAY * 2,
        s.w.confirm("platform-1", "a1", "charity-1"),
        s.disburse("charity-1", 10_000, category="admin"),  # 100% overhead in September
        s.w.transfer("charity-1", "charity-3", 1_000),
    )
    s.at(DAY * 3, s.w.transfer("charity-3", "charity-1", 1_000))  # round trip
    s.at(DAY * 4, s.attest("charity-2", "qualified", "票据不全"))
    s.at(
        DAY * 15,  # October
        s.w.confirm("platform-2", "b1", "charity-2"),
        s.disburse("charity-2", 30_000, currency="CNY", payee="希望小学"),
        s.refund("charity-3", "platform-1", "c1", 5_000),
    )
    s.at(DAY * 40, s.suspend("charity-3", "licence revoked"))
    return s


def write(s: Scenario, folder: Path) -> tuple[Path, Path]:
    """(archive, genesis file) of `s` in `folder`."""
    archive = folder / "chain.almoner"
    head = s.chain.ledger.head
    writer = ArchiveWriter(
        archive, s.genesis, head={"height": head.height, "log_size": head.log_size}, source="t"
    )
    for raw in s.items():
        writer.add(raw)
    writer.close()
    genesis = folder / "genesis.json"
    dump_genesis(s.genesis, genesis)
    return archive, genesis
