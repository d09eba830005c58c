"""`almoner tx …`: build, sign and submit one tx, or submit a file of signed txs in bulk."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from almoner.cli.keys_cmd import passphrase_from_env
from almoner.cli.output import EXIT_ERROR, EXIT_FAILED, fail, print_json
from almoner.cli.txfile import TxFileError, read_tx_file
from almoner.node.audit.client import Client, ClientError
from almoner.node.chain.codec import to_json_view
from almoner.node.chain.keys import load_key_file
from almoner.node.errors import AlmonerError, ProtocolError

BATCH_SIZE = 1000


def _hex32(value: str, name: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        fail(f"--{name} must be 64 hex characters")
    return raw


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--key",
            "key_path",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="The signer's key file.",
        ),
        click.option("--node", "node_url", required=True, help="A node's base URL."),
        click.option("--wait", is_flag=True, help="Wait until committed and print the receipt."),
        click.option(
            "--passphrase-env", metavar="VAR", help="Variable holding the key's passphrase."
        ),
        click.option("--nonce", type=int, help="Explicit nonce (default: current time in ns)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _submit(
    tx_type: str,
    body: dict[str, Any],
    key_path: Path,
    node_url: str,
    wait: bool,
    passphrase_env: str | None,
    nonce: int | None,
    as_json: bool,
) -> None:
    try:
        key = load_key_file(key_path, passphrase_from_env(passphrase_env))
        with Client(node_url) as client:
            tx = client.build(tx_type, key, body, nonce)
            result = client.submit(tx, wait=wait)
    except ProtocolError as exc:
        code = EXIT_ERROR if exc.code in ("busy", "timeout") else EXIT_FAILED
        fail(f"{exc.code}: {exc.message}", code)
    except AlmonerError as exc:
        fail(str(exc))
    if as_json:
        print_json(to_json_view(result))
    elif result.get("status") == "committed":
        click.echo(f"committed {result['tx_id'].hex()} at height {result['height']}")
    else:
        click.echo(f"pending {result['tx_id'].hex()}")


@click.group()
def tx() -> None:
    """Build, sign and submit transactions."""


@tx.command("register")
@click.option("--party", required=True, help="The new party's public key (hex).")
@click.option("--role", required=True, type=click.Choice(["charity", "platform", "regulator"]))
@click.option("--name", required=True)
@click.option("--org-id", required=True, help="Registration number of the organisation.")
@_common
def register(party: str, role: str, name: str, org_id: str, **common: Any) -> None:
    """party.register (regulators): admit a party."""
    _submit(
        "party.register",
        {"party": _hex32(party, "party"), "role": role, "name": name, "org_id": org_id},
        **common,
    )


@tx.command("suspend")
@click.option("--party", required=True)
@click.option("--reason", required=True)
@_common
def suspend(party: str, reason: str, **common: Any) -> None:
    """party.suspend (regulators): the party can no longer sign."""
    _submit("party.suspend", {"party": _hex32(party, "party"), "reason": reason}, **common)


@tx.command("campaign")
@click.option("--campaign", required=True, help="Campaign id (the restricted fund's name).")
@click.option("--title", required=True)
@click.option("--currency", required=True)
@click.option("--goal", type=int, default=0, show_default=True)
@_common
def campaign(campaign: str, title: str, currency: str, goal: int, **common: Any) -> None:
    """campaign.open (charities): a restricted fund."""
    _submit(
        "campaign.open",
        {"campaign": campaign, "title": title, "currency": currency, "goal": goal},
        **common,
    )


@tx.command("donate")
@click.option("--donation", required=True, help="The platform's donation id (the tracking code).")
@click.option("--donor", required=True, help="Pseudonymous donor reference, 64 hex (never PII).")
@click.option("--charity", required=True)
@click.option("--campaign", default=None, help="A campaign of the charity; default: general fund.")
@click.option("--amount", required=True, type=int, help="Minor units (cents, fen).")
@click.option("--currency", required=True)
@click.option("--received-at", type=int, help="Unix ms; default: now.")
@_common
def donate(
    donation: str,
    donor: str,
    charity: str,
    campaign: str | None,
    amount: int,
    currency: str,
    received_at: int | None,
    **common: Any,
) -> None:
    """donation.record (platforms): credit a charity and open a lineage lot."""
    body = {
        "donation": donation,
        "donor": _hex32(donor, "donor"),
        "charity": _hex32(charity, "charity"),
        "campaign": campaign,
        "amount": amount,
        "currency": currency,
        "received_at": received_at if received_at is not None else int(time.time() * 1000),
    }
    _submit("donation.record", body, **common)


@tx.command("confirm")
@click.option("--platform", required=True)
@click.option("--donation", required=True)
@_common
def confirm(platform: str, donation: str, **common: Any) -> None:
    """donation.confirm (the recipient charity): the money arrived."""
    _submit(
        "donation.confirm",
        {"platform": _hex32(platform, "platform"), "donation": donation},
        **common,
    )


@tx.command("transfer")
@click.option("--transfer", required=True)
@click.option("--from-fund", required=True)
@click.option("--to", "to", required=True, help="Receiving charity (may be the signer).")
@click.option("--to-fund", required=True)
@click.option("--amount", required=True, type=int)
@click.option("--currency", required=True)
@click.option("--purpose", required=True)
@_common
def transfer(
    transfer: str,
    from_fund: str,
    to: str,
    to_fund: str,
    amount: int,
    currency: str,
    purpose: str,
    **common: Any,
) -> None:
    """funds.transfer (charities): move money; lineage moves with it."""
    body = {
        "transfer": transfer,
        "from_fund": from_fund,
        "to": _hex32(to, "to"),
        "to_fund": to_fund,
        "amount": amount,
        "currency": currency,
        "purpose": purpose,
    }
    _submit("funds.transfer", body, **common)


@tx.command("disburse")
@click.option("--disbursement", required=True)
@click.option("--fund", required=True)
@click.option("--amount", required=True, type=int)
@click.option("--currency", required=True)
@click.option("--category", required=True, type=click.Choice(["program", "admin", "fundraising"]))
@click.option("--payee", required=True)
@click.option("--purpose", required=True)
@click.option("--evidence", multiple=True, help="SHA-256 (hex) of an invoice or receipt (repeat).")
@_common
def disburse(
    disbursement: str,
    fund: str,
    amount: int,
    currency: str,
    category: str,
    payee: str,
    purpose: str,
    evidence: tuple[str, ...],
    **common: Any,
) -> None:
    """funds.disburse (charities): money leaves the ledger to a payee."""
    body = {
        "disbursement": disbursement,
        "fund": fund,
        "amount": amount,
        "currency": currency,
        "category": category,
        "payee": payee,
        "purpose": purpose,
        "evidence": [_hex32(e, "evidence") for e in evidence],
    }
    _submit("funds.disburse", body, **common)


@tx.command("refund")
@click.option("--refund", required=True)
@click.option("--platform", required=True)
@click.option("--donation", required=True)
@click.option("--amount", required=True, type=int)
@_common
def refund(refund: str, platform: str, donation: str, amount: int, **common: Any) -> None:
    """donation.refund (the recipient charity): return unspent money of one donation."""
    body = {
        "refund": refund,
        "platform": _hex32(platform, "platform"),
        "donation": donation,
        "amount": amount,
    }
    _submit("donation.refund", body, **common)


@tx.command("attest")
@click.option("--attestation", required=True)
@click.option("--charity", required=True)
@click.option("--period", required=True)
@click.option(
    "--opinion", required=True, type=click.Choice(["clean", "qualified", "adverse", "disclaimer"])
)
@click.option("--report", required=True, help="SHA-256 (hex) of the audit report.")
@click.option("--note", default="", show_default=True)
@_common
def attest(
    attestation: str, charity: str, period: str, opinion: str, report: str, note: str, **common: Any
) -> None:
    """audit.attest (regulators): record an audit opinion."""
    body = {
        "attestation": attestation,
        "charity": _hex32(charity, "charity"),
        "period": period,
        "opinion": opinion,
        "report": _hex32(report, "report"),
        "note": note,
    }
    _submit("audit.attest", body, **common)


@tx.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node", "node_url", required=True, help="A node's base URL.")
@click.option("--json", "as_json", is_flag=True, help="Print per-tx results as JSON.")
def submit(file: Path, node_url: str, as_json: bool) -> None:
    """Submit signed txs from FILE (msgpack stream/array or JSON lines) in bulk."""
    try:
        raws = read_tx_file(file)
        results: list[dict[str, Any]] = []
        with Client(node_url) as client:
            for start in range(0, len(raws), BATCH_SIZE):
                for item in client.submit_batch(raws[start : start + BATCH_SIZE]):
                    item["index"] += start
                    results.append(item)
    except (TxFileError, ClientError) as exc:
        fail(str(exc))
    except ProtocolError as exc:
        fail(f"{exc.code}: {exc.message}", EXIT_ERROR if exc.code == "busy" else EXIT_FAILED)
    rejected = [r for r in results if r["status"] == "rejected"]
    if as_json:
        print_json(to_json_view(results))
    else:
        click.echo(f"{len(results) - len(rejected)} accepted, {len(rejected)} rejected")
        for item in rejected[:20]:
            error = item["error"]
            click.echo(f"  tx {item['index']}: {error['code']}: {error['message']}", err=True)
    if rejected:
        raise SystemExit(EXIT_FAILED)


# Governance sub-commands (docs/governance.md) live in their own module.
from almoner.cli.governance_cmd import add_governance_commands  # noqa: E402

add_governance_commands(tx)
