"""Entry point of the `almoner` console script.

Sub-commands are imported only when used: `almoner keygen` need not load the HTTP
client, pydantic-settings and uvicorn, which made every call pay about 0.3 s.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute), in the order `almoner --help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("almoner.cli.keys_cmd", "keygen"),
    "genesis": ("almoner.cli.keys_cmd", "genesis"),
    "node": ("almoner.cli.node_cmd", "node"),
    "tx": ("almoner.cli.tx_cmd", "tx"),
    "devnet": ("almoner.cli.devnet_cmd", "devnet"),
    "verify": ("almoner.cli.verify_cmd", "verify"),
    "export": ("almoner.cli.export_cmd", "export"),
    "trace": ("almoner.cli.trace_cmd", "trace"),
    "audit-nodes": ("almoner.cli.audit_cmd", "audit_nodes_cmd"),
    "supervise": ("almoner.cli.supervise_cmd", "supervise_cmd"),
    "disclose": ("almoner.cli.disclose_cmd", "disclose_cmd"),
    "governance": ("almoner.cli.governance_cmd", "governance"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="almoner")
def cli() -> None:
    """Almoner: a shared, signed, append-only donation ledger."""


def main() -> None:
    cli()
