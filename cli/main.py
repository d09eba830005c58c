"""Entry point of the `almoner` console script."""

from __future__ import annotations

import click

from cli.keys_cmd import genesis, keygen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="almoner")
def cli() -> None:
    """Almoner: a shared, signed, append-only donation ledger."""


cli.add_command(keygen)
cli.add_command(genesis)


def main() -> None:
    cli()
