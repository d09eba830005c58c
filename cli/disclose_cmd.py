"""`almoner disclose`: public per-charity, per-period reports from a verified chain."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from almoner.cli.output import EXIT_ERROR, fail
from almoner.cli.supervise_cmd import EXIT_INVALID_CHAIN, source_options, window, workers
from almoner.cli.verify_cmd import ProgressBar, open_source
from almoner.node.audit.disclose.csv_out import to_csv
from almoner.node.audit.disclose.iati import to_iati
from almoner.node.audit.disclose.parquet_out import write_parquet
from almoner.node.audit.disclose.run import disclose
from almoner.node.audit.disclose.tables import disclosure_json, long_rows
from almoner.node.audit.verify import VerifyReport
from almoner.node.errors import AlmonerError

FORMATS = ("csv", "json", "iati", "parquet")


def _charity(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        fail(f"--charity {value!r} is not a 64-hex public key")
    return key


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")


@click.command("disclose")
@source_options
@click.option("--charity", metavar="HEX", help="Only this charity (default: every charity).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="json",
    show_default=True,
    help="csv/json: the reports; iati: IATI 2.03 activity XML; parquet: needs --out and "
    "almoner[analytics].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: standard output).",
)
@click.option(
    "--excel",
    is_flag=True,
    help="CSV: start with a UTF-8 byte order mark so that Excel shows Chinese correctly.",
)
def disclose_cmd(
    node_url: str | None,
    archive: Path | None,
    genesis_arg: str,
    date_from: str | None,
    date_to: str | None,
    period: str,
    jobs: int | None,
    charity: str | None,
    fmt: str,
    out: Path | None,
    excel: bool,
) -> None:
    """Verify the chain from genesis and write, per charity and period: income by platform
    and fund, transfers, spending by category, overhead ratio, refunds, unconfirmed
    donations, audit opinions and suspensions.

    Amounts: `amount` in minor units exactly as on the ledger, `amount_major` for people.
    Exit status: 0 written, 2 a usage, I/O or network error, 3 the chain does not verify.
    """
    if (node_url is None) == (archive is None):
        fail("give exactly one of --node URL or --archive FILE")
    if fmt == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    start, end = window(date_from, date_to)
    key = _charity(charity)
    try:
        source = open_source(node_url, archive, genesis_arg)
        if isinstance(source, VerifyReport):
            verified, result = source, None
        else:
            bar = ProgressBar(source.total_blocks, source.total_txs)
            try:
                verified, result = disclose(
                    source.genesis,
                    source.items,
                    granularity=period,
                    start=start,
                    end=end,
                    charity=key,
                    jobs=workers(jobs),
                    source_genesis_hash=source.source_hash,
                    progress=bar.update,
                )
            finally:
                bar.close()
        if result is None:
            v = verified.violation
            assert v is not None
            fail(
                f"the chain does not verify (height {v.height}: {v.rule}: {v.message}); "
                "nothing is disclosed",
                EXIT_INVALID_CHAIN,
            )
        if fmt == "json":
            text = json.dumps(disclosure_json(result), indent=2, ensure_ascii=False) + "\n"
            _write(text.encode("utf-8"), out)
        elif fmt == "csv":
            _write(to_csv(long_rows(result), bom=excel), out)
        elif fmt == "iati":
            if not result.reports:
                fail("nothing to disclose in this window (IATI needs at least one activity)")
            _write(to_iati(result), out)
        else:
            assert out is not None
            write_parquet(long_rows(result), out)
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    if out is not None:
        count = len(result.reports)
        click.echo(f"Wrote {count} charity-period reports as {fmt} to {out}", err=True)
