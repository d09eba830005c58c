"""`almoner audit-nodes`: do the nodes agree on one certified history?"""

from __future__ import annotations

import sys
from contextlib import ExitStack

import click

from almoner.cli.export_cmd import default_genesis
from almoner.cli.output import EXIT_ERROR, fail, print_json
from almoner.node.audit.audit_nodes import AuditReport, NodeSource, audit_nodes
from almoner.node.audit.client import Client
from almoner.node.chain.genesis import Genesis, load_genesis
from almoner.node.errors import AlmonerError


def render(report: AuditReport, genesis: Genesis) -> None:
    for node in report.nodes:
        if node.head is not None and node.error is None:
            lag = "  (lagging)" if node.name in report.lagging else ""
            click.echo(
                f"{node.name}: height {node.head.height}, block "
                f"{node.head.block_hash.hex()[:16]}…, log {node.head.log_size}, certified by "
                f"{len(node.head.signers)}/{len(genesis.validators)}{lag}"
            )
        else:
            what = "UNREACHABLE" if node.unreachable else "BAD HEAD"
            click.echo(f"{node.name}: {what}: {node.error}")
    for fork in report.forks:
        blocks = ", ".join(f"{n} has {h.hex()[:16]}…" for n, h in fork["blocks"].items())
        names = ", ".join(fork["double_signer_names"]) or "none"
        click.echo(
            f"FORK at height {fork['height']}: {blocks}; both certified, so these validators "
            f"signed both: {names}"
        )
    for problem in report.inconsistencies:
        click.echo(f"INCONSISTENT: {problem}")
    if report.evidence:
        click.echo("Equivocation evidence:")
        for ev in report.evidence:
            click.echo(
                f"  validator {ev['validator'].hex()} signed two {ev['kind']}s at height "
                f"{ev['height']} round {ev['round']} ({ev['status']}; seen by "
                f"{', '.join(ev['nodes'])})"
            )
    else:
        click.echo("Equivocation evidence: none")
    if report.agree:
        lagging = f"; lagging: {', '.join(report.lagging)}" if report.lagging else ""
        click.echo(f"AGREE: {report.checked_pairs} node pairs checked{lagging}")


@click.command("audit-nodes")
@click.option(
    "--node", "node_urls", required=True, multiple=True, metavar="URL", help="A node (repeat)."
)
@click.option(
    "--genesis",
    "genesis_path",
    default=default_genesis,
    metavar="G",
    help="The pinned genesis file (default: $ALMONER_GENESIS, else ./genesis.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_nodes_cmd(node_urls: tuple[str, ...], genesis_path: str, as_json: bool) -> None:
    """Compare the nodes' certified heads and logs: agreement, lagging nodes, forks (naming
    the validators who signed both sides), log inconsistencies and equivocation evidence.
    Exit 0 all agree (lagging is only a warning), 1 a fork or inconsistency, 2 unreachable."""
    try:
        genesis = load_genesis(genesis_path)
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    with ExitStack() as stack:
        sources: dict[str, NodeSource] = {
            url: stack.enter_context(Client(url, timeout=15)) for url in dict.fromkeys(node_urls)
        }
        report = audit_nodes(genesis, sources)
    if as_json:
        print_json(report.to_json())
    else:
        render(report, genesis)
    sys.exit(report.exit_code())
