"""`almoner node init` and `almoner node run`."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from almoner.cli.output import fail
from almoner.node.chain.genesis import load_genesis
from almoner.node.chain.keys import load_public_key
from almoner.node.errors import AlmonerError
from almoner.node.server.config import (
    CONFIG_NAME,
    ConfigError,
    NodeConfig,
    load_config,
    write_config,
)


@click.group()
def node() -> None:
    """Configure and run a node."""


@node.command("init")
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The genesis document (copied into the home).",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="This validator's key file; omit for an observer node.",
)
@click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home directory (config and data).",
)
@click.option(
    "--listen", default="127.0.0.1:8000", show_default=True, help="HOST:PORT for the HTTP API."
)
@click.option(
    "--peer", "peers", multiple=True, metavar="PUBKEY=URL", help="A validator peer (repeat)."
)
@click.option(
    "--passphrase-env", metavar="VAR", help="Environment variable holding the key's passphrase."
)
@click.option("--force", is_flag=True, help="Overwrite an existing node.toml.")
def init(
    genesis_path: Path,
    key_path: Path | None,
    home: Path,
    listen: str,
    peers: tuple[str, ...],
    passphrase_env: str | None,
    force: bool,
) -> None:
    """Write a node config (node.toml) into HOME."""
    try:
        genesis = load_genesis(genesis_path)
        if key_path is not None:
            load_public_key(key_path)
    except AlmonerError as exc:
        fail(str(exc))
    target = home / CONFIG_NAME
    if target.exists() and not force:
        fail(f"{target} already exists; pass --force to overwrite it")
    peer_map: dict[str, str] = {}
    for item in peers:
        pubkey, sep, url = item.partition("=")
        if not sep or not url:
            fail(f"--peer {item!r} is not PUBKEY=URL")
        peer_map[pubkey] = url
    home.mkdir(parents=True, exist_ok=True)
    genesis_copy = home / "genesis.json"
    if genesis_path.resolve() != genesis_copy.resolve():
        shutil.copyfile(genesis_path, genesis_copy)
    values = {
        "genesis": "genesis.json",
        "key": str(key_path.resolve()) if key_path else None,
        "passphrase_env": passphrase_env,
        "data_dir": "data",
        "listen": listen,
        "peers": peer_map,
    }
    try:
        write_config(target, values)
    except ConfigError as exc:
        target.unlink(missing_ok=True)
        fail(str(exc))
    click.echo(f"wrote {target} for chain {genesis.chain_id} (genesis {genesis.hash.hex()})")


@node.command("run")
@click.option(
    "--home", type=click.Path(file_okay=False, path_type=Path), help="The node's home directory."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A node.toml elsewhere.",
)
def run(home: Path | None, config_path: Path | None) -> None:
    """Run a node in the foreground; SIGTERM or Ctrl-C stops it cleanly."""
    from almoner.node.server.app import run_node

    if (home is None) == (config_path is None):
        fail("give exactly one of --home or --config")
    try:
        source = config_path if config_path is not None else Path(str(home)) / CONFIG_NAME
        config: NodeConfig = load_config(source)
        run_node(config)
    except AlmonerError as exc:
        fail(str(exc))
