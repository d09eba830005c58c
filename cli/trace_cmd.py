"""`almoner trace`: where a donation went, hop by hop, each hop proven against a certified head."""

from __future__ import annotations

import sys
from typing import Any

import click

from almoner.cli.export_cmd import default_genesis
from almoner.cli.output import EXIT_ERROR, EXIT_FAILED, fail, print_json
from almoner.node.audit.audit_nodes import TraceCheck, fetch_and_check_trace
from almoner.node.audit.client import Client
from almoner.node.chain.genesis import Genesis, load_genesis
from almoner.node.errors import AlmonerError, ProtocolError

VERBS = {"transfer": "Moved", "disburse": "Spent", "refund": "Refunded"}


def party_names(client: Client, trace: dict[str, Any]) -> dict[bytes, str]:
    """Registered names of the parties in the trace, for display only (not proven)."""
    keys = {trace["donation"]["platform"], trace["donation"]["charity"]}
    for hop in trace["hops"]:
        keys.update(w["charity"] for w in (hop.get("from"), hop.get("to")) if w)
    keys.update(entry["charity"] for entry in trace.get("held") or [])
    names: dict[bytes, str] = {}
    for key in keys:
        try:
            names[key] = str(client.party(key)["name"])
        except (AlmonerError, KeyError, TypeError):
            continue
    return names


def render(check: TraceCheck, genesis: Genesis, names: dict[bytes, str]) -> None:
    def _party(key: Any) -> str:
        if not isinstance(key, bytes):
            return str(key)
        short = key.hex()[:12] + "…"
        return f"{names[key]} ({short})" if key in names else short

    def _fund(where: dict[str, Any] | None) -> str:
        if not where:
            return "-"
        return f"{_party(where.get('charity'))} fund {where.get('fund')!r}"

    trace = check.trace
    donation = trace["donation"]
    proven = set(check.proven)

    def mark(tid: bytes) -> str:
        return "✓" if tid in proven else "✗"

    click.echo(
        f"Donation {donation['donation']} via platform {_party(donation['platform'])}: "
        f"{donation['amount']} {donation['currency']} (minor units)"
    )
    click.echo(
        f"  {mark(donation['tx_id'])} Received   by {_party(donation['charity'])} "
        f"(block {donation['height']}, tx {donation['tx_id'].hex()[:16]}…)"
    )
    confirmed = (
        "confirmed by the charity (its confirmation tx is proven below)"
        if donation.get("confirmed")
        else "NOT yet confirmed"
    )
    click.echo(f"      receipt {confirmed}")
    for hop in trace["hops"]:
        verb = VERBS.get(hop["kind"], hop["kind"])
        line = f"  {mark(hop['tx_id'])} {verb:<10} {hop['amount']} from {_fund(hop['from'])}"
        if hop.get("to"):
            line += f" to {_fund(hop['to'])}"
        click.echo(f"{line}  (block {hop['height']}, tx {hop['tx_id'].hex()[:16]}…)")
        if hop["kind"] == "disburse":
            click.echo(
                f"      on {hop.get('category')}: paid {hop.get('payee')!r} "
                f"for {hop.get('purpose')!r}"
            )
            for ev in hop.get("evidence") or []:
                click.echo(f"      evidence {ev.hex()}")
        elif hop.get("purpose"):
            click.echo(f"      purpose {hop['purpose']!r}")
    held = trace.get("held") or []
    if held:
        for entry in held:
            click.echo(f"  • Still held {entry['amount']} in {_fund(entry)}")
    else:
        click.echo("  • Nothing of it is still held")
    head = check.head
    if check.verified and head is not None:
        click.echo(
            f"VERIFIED: every step is in the log at block {head.height} "
            f"({head.block_hash.hex()[:16]}…, {head.log_size} txs), whose commit certificate "
            f"carries {len(head.signers)} of {len(genesis.validators)} genesis validators' "
            "signatures."
        )
    else:
        click.echo("NOT VERIFIED:")
        for problem in check.problems:
            click.echo(f"  - {problem}")


@click.command("trace")
@click.argument("platform")
@click.argument("donation_id")
@click.option("--node", "node_url", required=True, metavar="URL", help="A node's base URL.")
@click.option(
    "--genesis",
    "genesis_path",
    default=default_genesis,
    metavar="G",
    help="The pinned genesis file that names the validators "
    "(default: $ALMONER_GENESIS, else ./genesis.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with a `verified` field).")
def trace(platform: str, donation_id: str, node_url: str, genesis_path: str, as_json: bool) -> None:
    """Show where donation DONATION_ID of PLATFORM (its public key) went, like a parcel's
    tracking page, with each step's inclusion proof checked against a head certified by
    the genesis validators. Exit 0 verified, 1 not verified or unknown donation, 2 error."""
    try:
        platform_key = bytes.fromhex(platform)
    except ValueError:
        platform_key = b""
    if len(platform_key) != 32:
        fail("PLATFORM must be the platform's public key, 64 hex characters")
    try:
        genesis = load_genesis(genesis_path)
        with Client(node_url) as client:
            check = fetch_and_check_trace(genesis, client, platform_key, donation_id)
            names = {} if as_json else party_names(client, check.trace)
    except ProtocolError as exc:
        if exc.code == "not_found":
            fail(
                f"{node_url} knows no donation {donation_id!r} of platform {platform}", EXIT_FAILED
            )
        fail(str(exc).rstrip("."), EXIT_ERROR)
    except AlmonerError as exc:
        fail(str(exc).rstrip("."), EXIT_ERROR)
    if as_json:
        print_json(check.to_json(genesis))
    else:
        render(check, genesis, names)
    if not check.verified:
        sys.exit(EXIT_FAILED)
