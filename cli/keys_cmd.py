"""`almoner keygen` and `almoner genesis`: the first steps of a genesis ceremony."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from almoner.cli.output import fail, print_json
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import (
    DEFAULT_PARAMS,
    PARAM_KEYS,
    ROLES,
    GenesisError,
    dump_genesis,
    parse_genesis,
)
from almoner.node.chain.keys import write_key_file
from almoner.node.errors import AlmonerError


def passphrase_from_env(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        fail(f"environment variable {var} (named by --passphrase-env) is not set")
    return value


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the key file (created with mode 0600).",
)
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Encrypt the key with the passphrase held in this environment variable.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def keygen(out: Path, passphrase_env: str | None, force: bool, as_json: bool) -> None:
    """Create a new Ed25519 key file and print its public key."""
    passphrase = passphrase_from_env(passphrase_env)
    key = KeyPair.generate()
    try:
        write_key_file(out, key, passphrase, overwrite=force)
    except AlmonerError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "public_key": key.public_key.hex(),
                "path": str(out),
                "encrypted": passphrase is not None,
            }
        )
    else:
        click.echo(key.public_key.hex())


def _split_right(spec: str, sep: str, what: str, whole: str) -> tuple[str, str]:
    left, found, right = spec.rpartition(sep)
    if not found or not left or not right:
        fail(f"--{what} {whole!r} is not in the documented form")
    return left, right


def _split(spec: str, sep: str, parts: int, what: str) -> list[str]:
    pieces = spec.split(sep, parts - 1)
    if len(pieces) != parts or not all(pieces):
        fail(f"--{what} {spec!r} is not in the documented form")
    return pieces


@click.command()
@click.option("--chain-id", required=True, help="The chain id every tx and block names.")
@click.option(
    "--validator",
    "validators",
    multiple=True,
    metavar="NAME=PUBKEY",
    required=True,
    help="A genesis validator, in proposer order (repeat).",
)
@click.option(
    "--party",
    "parties",
    multiple=True,
    metavar="ROLE:NAME:ORG_ID:PUBKEY",
    help=f"A registered party; ROLE is one of {', '.join(ROLES)} (repeat).",
)
@click.option("--genesis-time", type=int, help="Unix ms; default: now.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=INT",
    help=f"Override a consensus parameter ({', '.join(PARAM_KEYS)}).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write genesis.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def genesis(
    chain_id: str,
    validators: tuple[str, ...],
    parties: tuple[str, ...],
    genesis_time: int | None,
    params: tuple[str, ...],
    out: Path,
    as_json: bool,
) -> None:
    """Write a genesis document and print its hash (what regulators pin)."""
    values = dict(DEFAULT_PARAMS)
    for item in params:
        key, value = _split(item, "=", 2, "param")
        if key not in PARAM_KEYS or not (value.isascii() and value.isdigit()):
            fail(f"--param {item!r}: unknown key or not a positive integer")
        values[key] = int(value)
    validator_docs = []
    for item in validators:
        name, pubkey = _split(item, "=", 2, "validator")
        validator_docs.append({"name": name, "pubkey": pubkey})
    party_docs = []
    for item in parties:
        # The name may contain ":" (it is free text); role, org id and key do not.
        role, rest = _split(item, ":", 2, "party")
        name_and_org, pubkey = _split_right(rest, ":", "party", item)
        name, org_id = _split_right(name_and_org, ":", "party", item)
        party_docs.append({"pubkey": pubkey, "role": role, "name": name, "org_id": org_id})
    doc = {
        "chain_id": chain_id,
        "genesis_time": genesis_time if genesis_time is not None else int(time.time() * 1000),
        "validators": validator_docs,
        "parties": party_docs,
        "params": values,
    }
    try:
        parsed = parse_genesis(doc)
        dump_genesis(parsed, out)
    except GenesisError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    if as_json:
        print_json({"genesis_hash": parsed.hash.hex(), "path": str(out)})
    else:
        click.echo(parsed.hash.hex())
