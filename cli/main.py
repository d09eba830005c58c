"""Entry point of the `almoner` console script."""

from __future__ import annotations

import click

from cli.audit_cmd import audit_nodes_cmd
from cli.devnet_cmd import devnet
from cli.export_cmd import export
from cli.keys_cmd import genesis, keygen
from cli.node_cmd import node
from cli.trace_cmd import trace
from cli.tx_cmd import tx
from cli.verify_cmd import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="almoner")
def cli() -> None:
    """Almoner: a shared, signed, append-only donation ledger."""


cli.add_command(keygen)
cli.add_command(genesis)
cli.add_command(node)
cli.add_command(tx)
cli.add_command(devnet)
cli.add_command(verify)
cli.add_command(export)
cli.add_command(trace)
cli.add_command(audit_nodes_cmd)


def main() -> None:
    cli()
