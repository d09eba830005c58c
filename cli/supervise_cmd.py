"""`almoner supervise`: risk signals and anomaly scores over a chain this tool verified."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from almoner.cli.output import EXIT_ERROR, fail
from almoner.cli.verify_cmd import ProgressBar, open_source
from almoner.node.audit.supervise.engine import SuperviseReport, supervise
from almoner.node.audit.verify import VerifyReport
from almoner.node.chain.supervision import thresholds
from almoner.node.chain.supervision.model import SEVERITIES, severity_rank
from almoner.node.chain.supervision.periods import GRANULARITIES, parse_date
from almoner.node.chain.supervision.scores import SCORERS
from almoner.node.errors import AlmonerError

EXIT_SIGNALS = 1
EXIT_INVALID_CHAIN = 3
SEVERITY_MARK = {"high": "HIGH", "warning": "WARN", "info": "INFO"}


def source_options(command: Any) -> Any:
    """--node/--archive/--genesis/--from/--to/--period/--jobs, shared with `disclose`."""
    for option in reversed(
        [
            click.option("--node", "node_url", metavar="URL", help="Read the chain a node serves."),
            click.option(
                "--archive",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Read an archive written by `almoner export`, offline.",
            ),
            click.option(
                "--genesis",
                "genesis_arg",
                required=True,
                metavar="G",
                help="The pinned genesis file, or its 64-hex hash.",
            ),
            click.option(
                "--from",
                "date_from",
                metavar="DATE",
                help="Report from this date (YYYY-MM-DD or ISO time, UTC) in block time.",
            ),
            click.option(
                "--to",
                "date_to",
                metavar="DATE",
                help="Report up to, not including, this date in block time.",
            ),
            click.option(
                "--period",
                type=click.Choice(GRANULARITIES),
                default="month",
                show_default=True,
                help="Length of the periods that period rules, scores and reports use.",
            ),
            click.option(
                "--jobs",
                type=click.IntRange(min=0),
                default=None,
                help="Signature worker processes (default: cores - 1, at least 1).",
            ),
        ]
    ):
        command = option(command)
    return command


def window(date_from: str | None, date_to: str | None) -> tuple[int | None, int | None]:
    try:
        start = None if date_from is None else parse_date(date_from)
        end = None if date_to is None else parse_date(date_to)
    except ValueError as exc:
        fail(str(exc))
    if start is not None and end is not None and end <= start:
        fail("--to must be after --from")
    return start, end


def workers(jobs: int | None) -> int:
    return max(1, (os.cpu_count() or 1) - 1) if jobs is None else jobs


def print_utf8_json(value: Any) -> None:
    """JSON with Chinese as characters, not \\u escapes (stdout is UTF-8 text)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _render(report: SuperviseReport, lang: str, top: int) -> None:
    verified = report.verify
    click.echo(f"VALID: chain {verified.chain_id!r}, genesis {verified.genesis_hash.hex()}")
    data = report.to_json()
    head = data["head"]
    if head is not None:
        click.echo(f"Head: height {head['height']}, log size {head['log_size']}")
    w = data["window"]
    click.echo(f"Window: {w['from'] or 'genesis'} .. {w['to'] or 'head'} (periods: {w['period']})")
    counts = report.counts()
    click.echo(f"Signals: {len(report.signals)}" + ("" if counts else " (none)"))
    for rule, count in sorted(counts.items()):
        click.echo(f"  {rule:<30} {count:>6}")
    ordered = sorted(report.signals, key=lambda s: -severity_rank(s.severity))
    for signal in ordered:
        name = report.names.get(signal.party.hex(), "")
        click.echo(
            f"[{SEVERITY_MARK[signal.severity]}] {signal.rule} {signal.period} "
            f"{name} [{signal.party.hex()[:16]}…] {signal.subject}"
        )
        if lang in ("en", "both"):
            click.echo(f"    {signal.en}")
        if lang in ("zh", "both"):
            click.echo(f"    {signal.zh}")
        refs = ", ".join(f"{ref.tx_id.hex()[:16]}…@{ref.height}" for ref in signal.txs[:5])
        more = len(signal.txs) - 5 + signal.txs_omitted
        click.echo(f"    txs: {refs}" + (f" (+{more} more)" if more > 0 else ""))
    if report.scores:
        method = report.scores[0].method
        click.echo(f"Anomaly scores (top {top} of {len(report.scores)}, {method}):")
        for score in sorted(report.scores, key=lambda s: -s.score)[:top]:
            name = report.names.get(score.charity.hex(), "")
            drivers = ", ".join(
                f"{d['feature']}={d['value']} (median {d['median']}, z {d['z']})"
                for d in score.drivers
            )
            click.echo(f"  {score.score:>8.2f}  {score.period}  {name}: {drivers or '-'}")


def _render_invalid(verified: VerifyReport, as_json: bool) -> None:
    v = verified.violation
    assert v is not None
    if as_json:
        print_utf8_json({"ok": False, "violation": v.to_json(), "signals": [], "scores": []})
    else:
        click.echo(
            f"INVALID CHAIN at height {v.height}: {v.rule}: {v.message}\n"
            "No signals are reported for a chain that does not verify."
        )


@click.command("supervise")
@source_options
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of rule thresholds (docs/supervision.md); unset keys keep defaults.",
)
@click.option(
    "--scorer",
    type=click.Choice(SCORERS),
    default="robust",
    show_default=True,
    help="Anomaly scorer; isolation-forest needs almoner[analytics].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (documented).")
@click.option("--proofs", is_flag=True, help="Add each tx's inclusion proof to the signals.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 when any signal is at least this severe.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh", "both"]),
    default="both",
    show_default=True,
    help="Language of the explanations in the text report.",
)
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True)
def supervise_cmd(
    node_url: str | None,
    archive: Path | None,
    genesis_arg: str,
    date_from: str | None,
    date_to: str | None,
    period: str,
    jobs: int | None,
    rules_path: Path | None,
    scorer: str,
    as_json: bool,
    proofs: bool,
    fail_on: str | None,
    lang: str,
    top: int,
) -> None:
    """Verify the chain from genesis (trusting no node) and report risk signals per rule
    and anomaly scores per charity and period, explained in English and Chinese.

    Exit status: 0 done (no signal at the --fail-on level), 1 a signal at or above
    --fail-on, 2 a usage, I/O or network error, 3 the chain does not verify.
    """
    if (node_url is None) == (archive is None):
        fail("give exactly one of --node URL or --archive FILE")
    start, end = window(date_from, date_to)
    try:
        settings = thresholds.load(rules_path)
        source = open_source(node_url, archive, genesis_arg)
        if isinstance(source, VerifyReport):
            _render_invalid(source, as_json)
            sys.exit(EXIT_INVALID_CHAIN)
        bar = ProgressBar(source.total_blocks, source.total_txs)
        try:
            report = supervise(
                source.genesis,
                source.items,
                settings=settings,
                granularity=period,
                start=start,
                end=end,
                proofs=proofs,
                scorer=scorer,
                jobs=workers(jobs),
                source_genesis_hash=source.source_hash,
                progress=bar.update,
            )
        finally:
            bar.close()
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    if not report.verify.ok:
        _render_invalid(report.verify, as_json)
        sys.exit(EXIT_INVALID_CHAIN)
    if as_json:
        print_utf8_json(report.to_json())
    else:
        _render(report, lang, top)
    worst = report.worst()
    if fail_on is not None and worst is not None and severity_rank(worst) >= severity_rank(fail_on):
        sys.exit(EXIT_SIGNALS)
