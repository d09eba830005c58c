"""`almoner verify`: the regulator's full, trust-free audit of a chain (docs/spec/08-verify.md)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from almoner.cli.output import EXIT_ERROR, EXIT_FAILED, fail, print_json
from almoner.node.audit.archive import ArchiveReader, node_items
from almoner.node.audit.client import Client
from almoner.node.audit.verify import Progress, VerifyReport, Violation, verify_chain
from almoner.node.chain.genesis import Genesis, load_genesis
from almoner.node.errors import AlmonerError, ProtocolError


class ProgressBar:
    """blocks, txs, rate and ETA on one stderr line; silent unless stderr is a terminal."""

    def __init__(self, total_blocks: int | None, total_txs: int | None) -> None:
        self.total_blocks = total_blocks
        self.total_txs = total_txs
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and p.height != self.total_blocks):
            return
        self._last = now
        rate = p.txs / p.elapsed if p.elapsed > 0 else 0.0
        if self.total_txs:
            fraction = min(1.0, p.txs / self.total_txs)
            remaining = (self.total_txs - p.txs) / rate if rate > 0 else None
        elif self.total_blocks:
            fraction = min(1.0, p.height / self.total_blocks)
            remaining = (p.elapsed / fraction - p.elapsed) if fraction > 0 else None
        else:
            fraction, remaining = 0.0, None
        width = 30
        filled = int(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        blocks = f"{p.height}/{self.total_blocks}" if self.total_blocks else str(p.height)
        eta = "--:--" if remaining is None else _clock(remaining)
        click.echo(
            f"\r[{bar}] {fraction:6.1%}  blocks {blocks}  txs {p.txs:,}  "
            f"{rate:,.0f} tx/s  ETA {eta} ",
            err=True,
            nl=False,
        )

    def close(self) -> None:
        if self.enabled and self._last:
            click.echo("", err=True)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _pinned(genesis_arg: str) -> tuple[Genesis | None, bytes | None]:
    """A genesis file, or (for archives) a pinned 64-hex genesis hash."""
    path = Path(genesis_arg)
    if path.exists():
        return load_genesis(path), None
    try:
        pinned = bytes.fromhex(genesis_arg)
    except ValueError:
        pinned = b""
    if len(pinned) != 32:
        fail(f"--genesis {genesis_arg!r} is neither a genesis file nor a 64-hex genesis hash")
    return None, pinned


def _node_source(url: str, genesis: Genesis) -> tuple[bytes, Iterable[bytes], int, int | None]:
    with Client(url) as client:
        status = client.status()
        try:
            head = client.head()
            height, log_size = head["header"]["height"], head["header"]["log_size"]
        except ProtocolError as exc:
            if exc.code != "not_found":
                raise
            height, log_size = 0, 0
    claimed = status.get("genesis_hash")
    try:
        source_hash = bytes.fromhex(claimed) if isinstance(claimed, str) else b""
    except ValueError:
        source_hash = b""
    if len(source_hash) != 32:
        fail(f"{url} did not report a genesis hash")
    return source_hash, node_items(url, 1, height), height, log_size


@dataclass
class Source:
    """A chain to replay: the pinned genesis, its items, and what the source declares."""

    genesis: Genesis
    items: Iterable[bytes]
    source_hash: bytes
    total_blocks: int | None
    total_txs: int | None


def open_source(
    node_url: str | None, archive: Path | None, genesis_arg: str
) -> Source | VerifyReport:
    """The source to replay, or a `wrong_genesis` report when only a hash was pinned and
    the source holds another genesis. Shared by verify, supervise and disclose."""
    genesis, pinned_hash = _pinned(genesis_arg)
    if archive is not None:
        reader = ArchiveReader(archive)
        if genesis is None:
            # Only a hash was pinned: the archive's genesis is used if it is exactly that.
            assert pinned_hash is not None
            if reader.genesis.hash != pinned_hash:
                reader.close()
                return _wrong_pin(reader.genesis, pinned_hash)
            genesis = reader.genesis
        return Source(
            genesis, reader.items(), reader.genesis.hash, reader.head_height, reader.head_log_size
        )
    assert node_url is not None
    if genesis is None:
        # Only a hash was pinned: the node's genesis is used if it is exactly that.
        assert pinned_hash is not None
        with Client(node_url) as client:
            served = client.genesis()
        if served.hash != pinned_hash:
            return _wrong_pin(served, pinned_hash)
        genesis = served
    source_hash, items, total_blocks, total_txs = _node_source(node_url, genesis)
    return Source(genesis, items, source_hash, total_blocks, total_txs)


def run_verify(
    node_url: str | None,
    archive: Path | None,
    genesis_arg: str,
    jobs: int,
) -> VerifyReport:
    source = open_source(node_url, archive, genesis_arg)
    if isinstance(source, VerifyReport):
        return source
    bar = ProgressBar(source.total_blocks, source.total_txs)
    try:
        return verify_chain(
            source.genesis,
            source.items,
            jobs=jobs,
            source_genesis_hash=source.source_hash,
            progress=bar.update,
        )
    finally:
        bar.close()


def _wrong_pin(archived: Genesis, pinned_hash: bytes) -> VerifyReport:
    report = VerifyReport(archived.chain_id, pinned_hash)
    report.violation = Violation(
        0,
        None,
        "wrong_genesis",
        f"the source holds genesis {archived.hash.hex()}, not the pinned {pinned_hash.hex()}",
    )
    return report


def render(report: VerifyReport) -> None:
    data = report.to_json()
    if report.violation is None:
        click.echo(f"VALID: chain {report.chain_id!r}, genesis {report.genesis_hash.hex()}")
    else:
        v = report.violation
        where = f"height {v.height}" + (f", tx {v.tx_index}" if v.tx_index is not None else "")
        click.echo(f"VIOLATION at {where}: {v.rule}: {v.message}")
    head = data["head"]
    if head is None:
        click.echo("Head: none (no block passed)")
    else:
        label = "Head" if report.ok else "Last valid block"
        click.echo(
            f"{label}: height {head['height']}, block {head['block_hash']}\n"
            f"Log: size {head['log_size']}, root {head['log_root']}"
        )
    rate = data["txs_per_s"]
    click.echo(
        f"Checked {report.blocks} blocks, {report.txs} txs in {report.elapsed:.1f}s"
        + (f" ({rate:,.0f} tx/s, signature workers: {report.jobs})" if rate else "")
    )
    if report.tx_types:
        click.echo("Transactions by type:")
        for tx_type, count in data["tx_types"].items():
            click.echo(f"  {tx_type:<18} {count:>10,}")
    if report.balances:
        click.echo("Balances by charity (minor units):")
        for charity, funds in report.balances.items():
            click.echo(f"  {report.charities.get(charity, '')} [{charity[:16]}…]")
            for fund in funds:
                click.echo(f"    {fund['currency']} {fund['fund']:<20} {fund['balance']:>16,}")
    overhead: dict[str, Any] = data["overhead"]
    if overhead:
        click.echo("Disbursements and overhead ratio ((admin + fundraising) / total):")
        for charity, per_currency in overhead.items():
            name = report.charities.get(charity, "")
            for currency, t in per_currency.items():
                ratio = "n/a" if t["overhead_ratio"] is None else f"{t['overhead_ratio']:.1%}"
                click.echo(
                    f"  {name} [{charity[:16]}…] {currency}: program {t['program']:,}, "
                    f"admin {t['admin']:,}, fundraising {t['fundraising']:,} -> {ratio}"
                )
    if report.evidence:
        click.echo("Equivocation evidence on the ledger:")
        for ev in data["evidence"]:
            click.echo(
                f"  validator {ev['validator']} signed two {ev['kind']}s at height "
                f"{ev['height']} round {ev['round']} (recorded at height {ev['committed_height']})"
            )
    else:
        click.echo("Equivocation evidence on the ledger: none")


@click.command("verify")
@click.option("--node", "node_url", metavar="URL", help="Verify the chain a node serves.")
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Verify an archive written by `almoner export`, offline.",
)
@click.option(
    "--genesis",
    "genesis_arg",
    required=True,
    metavar="G",
    help="The pinned genesis file, or its 64-hex hash (the source's genesis must match).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=0),
    default=None,
    help="Signature worker processes (default: one per core but the one that replays the "
    "contract, at least 1; 0 checks them in-process).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the §5 JSON report.")
def verify(
    node_url: str | None, archive: Path | None, genesis_arg: str, jobs: int | None, as_json: bool
) -> None:
    """Replay the whole chain from genesis and check every rule (docs/spec/08-verify.md).

    Exit status: 0 valid, 1 a violation (named with its height, tx and rule), 2 a usage,
    I/O or network error.
    """
    if (node_url is None) == (archive is None):
        fail("give exactly one of --node URL or --archive FILE")
    # The in-order replay keeps one core busy; workers on the other cores keep ahead of it.
    # (Measured on 2 cores: 1 worker verifies faster than 2, which fight the replay.)
    workers = max(1, (os.cpu_count() or 1) - 1) if jobs is None else jobs
    try:
        report = run_verify(node_url, archive, genesis_arg, workers)
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    if as_json:
        print_json(report.to_json())
    else:
        render(report)
    if not report.ok:
        sys.exit(EXIT_FAILED)
