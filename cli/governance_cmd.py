"""Governance from the command line (docs/governance.md): `almoner tx` sub-commands for
each proposal and approval, and `almoner governance` listing proposals, approvals,
effective heights, the validator sets and the protocol version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from almoner.cli.keys_cmd import passphrase_from_env
from almoner.cli.output import fail, print_json
from almoner.node.audit.client import Client
from almoner.node.chain.codec import to_json_view
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.keys import load_key_file
from almoner.node.chain.signing import rotation_sign_bytes
from almoner.node.errors import AlmonerError


def add_governance_commands(tx: click.Group) -> None:
    from almoner.cli.tx_cmd import _common, _hex32, _submit

    @tx.command("propose-validator")
    @click.option("--proposal", required=True, help="Proposal id (unique per proposer).")
    @click.option("--action", required=True, type=click.Choice(["add", "remove", "replace"]))
    @click.option("--validator", required=True, help="Key added (or removed), 64 hex.")
    @click.option("--replaces", default=None, help="For replace: the key leaving the set.")
    @click.option("--name", default="", help="The joining validator's name.")
    @click.option("--org-id", default="", help="The joining validator's organisation id.")
    @_common
    def propose_validator(
        proposal: str,
        action: str,
        validator: str,
        replaces: str | None,
        name: str,
        org_id: str,
        **common: Any,
    ) -> None:
        """validator.propose (validators): change the set; in force 2 heights after a
        quorum of the set approved it."""
        body = {
            "proposal": proposal,
            "action": action,
            "validator": _hex32(validator, "validator"),
            "replaces": None if replaces is None else _hex32(replaces, "replaces"),
            "name": name,
            "org_id": org_id,
        }
        _submit("validator.propose", body, **common)

    @tx.command("propose-upgrade")
    @click.option("--proposal", required=True)
    @click.option("--height", required=True, type=int, help="First height of the new version.")
    @click.option("--version", "version", required=True, type=int, help="Protocol version.")
    @click.option("--note", default="", help="What changes, where the release is.")
    @_common
    def propose_upgrade(proposal: str, height: int, version: int, note: str, **common: Any) -> None:
        """upgrade.propose (validators): halt at HEIGHT unless running VERSION."""
        body = {"proposal": proposal, "height": height, "version": version, "note": note}
        _submit("upgrade.propose", body, **common)

    @tx.command("approve")
    @click.option("--proposer", required=True, help="The proposing validator's key (hex).")
    @click.option("--proposal", required=True)
    @_common
    def approve(proposer: str, proposal: str, **common: Any) -> None:
        """proposal.approve (validators): approve a set change or an upgrade."""
        body = {"proposer": _hex32(proposer, "proposer"), "proposal": proposal}
        _submit("proposal.approve", body, **common)

    @tx.command("rotate-key")
    @click.option(
        "--new-key",
        "new_key_path",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Key file of the new key (it signs the proof of possession).",
    )
    @click.option("--new-passphrase-env", metavar="VAR", help="Passphrase of the new key.")
    @_common
    def rotate_key(new_key_path: Path, new_passphrase_env: str | None, **common: Any) -> None:
        """party.rotate_key (any party, with its current --key): sign from now on with
        --new-key; the old key is refused from this height on."""
        new_key = _load(new_key_path, new_passphrase_env)
        current = _load(common["key_path"], common["passphrase_env"])
        party = _party_id(common["node_url"], current.public_key)
        body = {"new_key": new_key.public_key, "new_sig": _pop(common["node_url"], party, new_key)}
        _submit("party.rotate_key", body, **common)

    @tx.command("recover")
    @click.option("--recovery", required=True, help="Recovery id (unique per regulator).")
    @click.option("--party", required=True, help="The party id whose key is lost (hex).")
    @click.option(
        "--new-key",
        "new_key_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Key file of the party's new key.",
    )
    @click.option("--new-pubkey", help="Or: the new public key (hex) ...")
    @click.option("--new-sig", help="... and its proof of possession (hex), made by the party.")
    @click.option("--reason", required=True)
    @_common
    def recover(
        recovery: str,
        party: str,
        new_key_path: Path | None,
        new_pubkey: str | None,
        new_sig: str | None,
        reason: str,
        **common: Any,
    ) -> None:
        """party.recover (regulators): emergency key rotation, adopted by a quorum of the
        regulators (approve with `tx approve-recovery`)."""
        party_id = _hex32(party, "party")
        if new_key_path is not None:
            new_key = _load(new_key_path, None)
            pub, sig = new_key.public_key, _pop(common["node_url"], party_id, new_key)
        elif new_pubkey and new_sig:
            pub, sig = _hex32(new_pubkey, "new-pubkey"), _hex(new_sig, 64, "new-sig")
        else:
            fail("give --new-key, or both --new-pubkey and --new-sig")
        body = {
            "recovery": recovery,
            "party": party_id,
            "new_key": pub,
            "new_sig": sig,
            "reason": reason,
        }
        _submit("party.recover", body, **common)

    @tx.command("approve-recovery")
    @click.option("--proposer", required=True, help="The proposing regulator's party id.")
    @click.option("--recovery", required=True)
    @_common
    def approve_recovery(proposer: str, recovery: str, **common: Any) -> None:
        """recovery.approve (regulators): approve an emergency key rotation."""
        body = {"proposer": _hex32(proposer, "proposer"), "recovery": recovery}
        _submit("recovery.approve", body, **common)

    @tx.command("reinstate")
    @click.option("--party", required=True)
    @click.option("--reason", required=True)
    @_common
    def reinstate(party: str, reason: str, **common: Any) -> None:
        """party.reinstate (regulators): lift a suspension, with a reason."""
        _submit("party.reinstate", {"party": _hex32(party, "party"), "reason": reason}, **common)


def _hex(value: str, length: int, name: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != length:
        fail(f"--{name} must be {2 * length} hex characters")
    return raw


def _load(path: Path, passphrase_env: str | None) -> KeyPair:
    try:
        return load_key_file(path, passphrase_from_env(passphrase_env))
    except AlmonerError as exc:
        fail(str(exc))


def _party_id(node_url: str, key: bytes) -> bytes:
    """The party a key signs for (its id differs from the key after a rotation)."""
    try:
        with Client(node_url) as client:
            party: bytes = client.party(key)["pubkey"]
    except AlmonerError as exc:
        fail(f"cannot find the party of this key: {exc}")
    return party


def _pop(node_url: str, party: bytes, new_key: KeyPair) -> bytes:
    try:
        with Client(node_url) as client:
            chain = client.chain_id
    except AlmonerError as exc:
        fail(str(exc))
    return new_key.sign(rotation_sign_bytes(chain, party, new_key.public_key))


@click.command()
@click.option("--node", "node_url", required=True, help="A node's base URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def governance(node_url: str, as_json: bool) -> None:
    """List proposals (open, adopted, expired) with their approvals and effective heights,
    key recoveries, the validator set by height and the protocol version."""
    try:
        with Client(node_url) as client:
            view = client.governance()
    except AlmonerError as exc:
        fail(str(exc))
    if as_json:
        print_json(to_json_view(view))
        return
    for line in describe(view):
        click.echo(line)


def describe(view: dict[str, Any]) -> list[str]:
    protocol = view["protocol"]
    lines = [
        f"height {view['height']}, protocol version {protocol['version']} "
        f"(this node runs up to {protocol['max_supported']})"
    ]
    lines.append("validators by height:")
    for entry in view["validators"]["history"]:
        names = ", ".join(v["name"] or v["pubkey"].hex()[:16] for v in entry["validators"])
        lines.append(f"  from {entry['from_height']}: {len(entry['validators'])} — {names}")
    lines.append("proposals:")
    for p in view["proposals"] or []:
        body = p["body"]
        what = (
            f"{body['action']} {body['validator'].hex()[:16]}"
            if p["kind"] == "validator"
            else f"upgrade to version {body['version']} at height {body['height']}"
        )
        status = p["status"]
        if status == "adopted":
            status += f" at {p['adopted_height']}, in force from {p['effective_height']}"
        elif status == "open":
            status += f", {p['approvals_needed']} more approvals, expires {p['expires_height']}"
        lines.append(
            f"  {p['proposer'].hex()[:16]}/{p['proposal']}: {what} "
            f"({len(p['approvals'])} approvals; {status})"
        )
    lines.append("key recoveries:")
    for r in view["recoveries"] or []:
        lines.append(
            f"  {r['proposer'].hex()[:16]}/{r['recovery']}: party "
            f"{r['body']['party'].hex()[:16]} ({len(r['approvals'])} approvals; {r['status']})"
        )
    return lines
