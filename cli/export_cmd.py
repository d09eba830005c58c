"""`almoner export`: a self-contained archive of a node's chain for offline `verify`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from almoner.cli.output import EXIT_ERROR, fail, print_json
from almoner.node.audit.archive import ArchiveWriter, node_items
from almoner.node.audit.client import Client
from almoner.node.chain.genesis import load_genesis
from almoner.node.errors import AlmonerError, ProtocolError

GENESIS_HELP = (
    "The chain's genesis file, embedded in the archive; the node must run exactly this "
    "genesis (default: $ALMONER_GENESIS, else ./genesis.json, else the node's own "
    "GET /v1/genesis, whose hash `verify` then checks against the one you pin)."
)


def default_genesis() -> str:
    return os.environ.get("ALMONER_GENESIS", "genesis.json")


@click.command("export")
@click.option("--node", "node_url", required=True, metavar="URL", help="The node to export.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Archive."
)
@click.option("--genesis", "genesis_path", default=default_genesis, metavar="G", help=GENESIS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def export(node_url: str, out: Path, genesis_path: str, as_json: bool) -> None:
    """Write the node's certified chain (genesis, blocks, certificates) to one compressed,
    versioned file that `almoner verify --archive FILE` checks offline."""
    try:
        with Client(node_url) as client:
            if Path(genesis_path).exists() or genesis_path != default_genesis():
                genesis = load_genesis(genesis_path)
            else:  # no file given or found: embed the node's own (its hash is printed)
                genesis = client.genesis()
                genesis_path = f"{node_url}/v1/genesis"
            status = client.status()
            if status.get("genesis_hash") != genesis.hash.hex():
                fail(
                    f"{node_url} runs genesis {status.get('genesis_hash')}, not "
                    f"{genesis.hash.hex()} from {genesis_path}",
                    EXIT_ERROR,
                )
            try:
                header = client.head()["header"]
                height, log_size = header["height"], header["log_size"]
            except ProtocolError as exc:
                if exc.code != "not_found":
                    raise
                height, log_size = 0, 0
        head = {"height": height, "log_size": log_size}
        writer = ArchiveWriter(out, genesis, head=head, source=node_url)
        try:
            for raw in node_items(node_url, 1, height):
                writer.add(raw)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    summary = {
        "archive": str(out),
        "blocks": height,
        "txs": log_size,
        "genesis": genesis.hash.hex(),
    }
    if as_json:
        print_json(summary)
    else:
        click.echo(f"Exported {height} blocks ({log_size} txs) of {genesis.chain_id} to {out}")
