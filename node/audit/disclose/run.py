"""`disclose`: verify a chain and aggregate it per charity and period for publication."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from almoner.node.audit.disclose.aggregate import Disclosure, DisclosureCollector
from almoner.node.audit.supervise.engine import ReplayFeed
from almoner.node.audit.verify import Progress, VerifyReport, verify_chain
from almoner.node.chain.codec import to_json_view
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.supervision.engine import Supervisor


def disclose(
    genesis: Genesis,
    items: Iterable[bytes],
    *,
    granularity: str = "month",
    start: int | None = None,
    end: int | None = None,
    charity: bytes | None = None,
    jobs: int = 0,
    source_genesis_hash: bytes | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[VerifyReport, Disclosure | None]:
    """(the verify report, the disclosure); no disclosure for a chain that fails to verify."""
    settings = thresholds.resolve({rule: {"enabled": False} for rule in thresholds.DEFAULTS})
    collector = DisclosureCollector()
    supervisor = Supervisor(settings, granularity, [collector])
    verified = verify_chain(
        genesis,
        items,
        jobs=jobs,
        source_genesis_hash=source_genesis_hash,
        progress=progress,
        observer=ReplayFeed(supervisor, proofs=False),
    )
    if not verified.ok:
        return verified, None
    reports = [
        r
        for r in collector.reports
        if (charity is None or r.charity == charity)
        and (start is None or r.end > start)
        and (end is None or r.start < end)
    ]
    head = None if verified.head is None else to_json_view(verified.head)
    return verified, Disclosure(
        verified.chain_id,
        verified.genesis_hash.hex(),
        head,
        reports,
        collector.parties,
        collector.funds,
    )
