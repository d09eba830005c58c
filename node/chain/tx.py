"""Transactions: the signed envelope, the body schema of every type, and their stateless checks.

Everything here can be decided from the tx bytes and the chain id alone, so the API, the
mempool and `verify` reject a bad tx before touching state. The checks run in the order
docs/spec/03 fixes (envelope, `wrong_chain`, `unknown_type`, body, signature): a client
that breaks two rules at once must get the same code from every node.

Each body is declared as a table of (field, checker) in the spec's order; a checker raises
`invalid_field` naming the field path (`body.amount`, `body.evidence[3]`,
`body.votes[1].height`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycountry

from almoner.node.chain import signing
from almoner.node.chain.codec import INT_MAX, H, decode, encode
from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.errors import ProtocolError, invalid_field

MAX_TX_BYTES = 65536
MAX_AMOUNT = 10**15
# `received_at` (unix ms) must be a time a real donation can have: from 2000-01-01 to
# 2100-01-01 UTC. Documented in docs/contract.md; a wider field invites garbage.
RECEIVED_AT_MIN = 946_684_800_000
RECEIVED_AT_MAX = 4_102_444_800_000
# ISO 4217 codes as Debian's iso-codes lists them (shipped by pycountry): the current
# codes plus the funds and special codes (XXX, XTS, XAU...). Withdrawn codes are refused.
CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
MAX_EVIDENCE = 16
GENERAL_FUND = "general"

ROLES = ("charity", "platform", "regulator")
CATEGORIES = ("program", "admin", "fundraising")
OPINIONS = ("clean", "qualified", "adverse", "disclaimer")
VOTE_KINDS = ("prevote", "precommit")
SET_ACTIONS = ("add", "remove", "replace")
MAX_PROTOCOL_VERSION = 65535

Checker = Callable[[Any, str], None]


# -- field checkers ---------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    # msgpack booleans arrive as Python bools, which are ints to isinstance: never accept them.
    return isinstance(value, int) and not isinstance(value, bool)


def int_range(low: int, high: int) -> Checker:
    def check(value: Any, path: str) -> None:
        if not _is_int(value):
            raise invalid_field(path, "must be an integer")
        if not low <= value <= high:
            raise invalid_field(path, f"must be between {low} and {high}")

    return check


def binary(length: int) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, bytes):
            raise invalid_field(path, f"must be bin({length})")
        if len(value) != length:
            raise invalid_field(path, f"must be exactly {length} bytes, got {len(value)}")

    return check


def text(max_len: int) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise invalid_field(path, "must be a str")
        if len(value) > max_len:  # code points, not bytes: names are often Chinese
            raise invalid_field(path, f"must be at most {max_len} characters")

    return check


def one_of(*allowed: str) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or value not in allowed:
            raise invalid_field(path, f"must be one of {', '.join(allowed)}")

    return check


def business_id(*, allow_general: bool) -> Checker:
    """1 to 64 printable ASCII; `general` is reserved where a campaign (not a fund) is named."""

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise invalid_field(path, "must be a str")
        if not 1 <= len(value) <= 64:
            raise invalid_field(path, "must be 1 to 64 characters")
        if any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
            raise invalid_field(path, "must be printable ASCII")
        if not allow_general and value == GENERAL_FUND:
            raise invalid_field(path, "'general' is reserved for the unrestricted fund")

    return check


def nullable(inner: Checker) -> Checker:
    def check(value: Any, path: str) -> None:
        if value is not None:
            inner(value, path)

    return check


def currency(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) != 3 or any(not "A" <= c <= "Z" for c in value):
        raise invalid_field(path, "must be an ISO 4217 code of 3 uppercase letters")
    if value not in CURRENCIES:
        raise invalid_field(path, f"{value} is not an ISO 4217 currency code")


def list_of(item: Checker, max_items: int, min_items: int = 0) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise invalid_field(path, "must be an array")
        if not min_items <= len(value) <= max_items:
            raise invalid_field(path, f"must hold {min_items} to {max_items} items")
        for i, element in enumerate(value):
            item(element, f"{path}[{i}]")

    return check


def exact_map(fields: tuple[tuple[str, Checker], ...]) -> Checker:
    """A map with exactly these keys: missing (spec order) before extra (sorted) before types.

    Path "" is the envelope itself, whose fields are named bare (`nonce`, not `.nonce`).
    """

    known = frozenset(name for name, _ in fields)

    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise invalid_field(path or "tx", "must be a map")
        for name, _ in fields:
            if name not in value:
                raise invalid_field(_join(path, name), "is missing")
        if len(value) != len(known):  # all known keys are present: any extra is an excess
            for name in sorted(value, key=lambda k: k.encode("utf-8")):
                if name not in known:
                    raise invalid_field(_join(path, name), "is not a field of this map")
        for name, checker in fields:
            checker(value[name], _join(path, name))

    return check


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def any_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise invalid_field(path, "must be a map")


BIN32 = binary(32)
BIN64 = binary(64)
AMOUNT = int_range(1, MAX_AMOUNT)
ID = business_id(allow_general=True)
FUND = ID  # a fund name: `general` or a campaign id
CAMPAIGN_ID = business_id(allow_general=False)
UINT = int_range(0, INT_MAX)

VOTE_FIELDS: tuple[tuple[str, Checker], ...] = (
    ("kind", one_of(*VOTE_KINDS)),
    ("chain", text(INT_MAX)),
    ("height", int_range(1, INT_MAX)),
    ("round", UINT),
    ("block_hash", nullable(BIN32)),
    ("validator", BIN32),
    ("sig", BIN64),
)
VOTE = exact_map(VOTE_FIELDS)

# -- the schema: one table per type, fields in the spec's order ---------------------------

BODY_FIELDS: dict[str, tuple[tuple[str, Checker], ...]] = {
    "party.register": (
        ("party", BIN32),
        ("role", one_of(*ROLES)),
        ("name", text(200)),
        ("org_id", text(64)),
    ),
    "party.suspend": (("party", BIN32), ("reason", text(500))),
    "campaign.open": (
        ("campaign", CAMPAIGN_ID),
        ("title", text(200)),
        ("currency", currency),
        ("goal", UINT),
    ),
    "donation.record": (
        ("donation", ID),
        ("donor", BIN32),
        ("charity", BIN32),
        ("campaign", nullable(CAMPAIGN_ID)),
        ("amount", AMOUNT),
        ("currency", currency),
        ("received_at", int_range(RECEIVED_AT_MIN, RECEIVED_AT_MAX)),
    ),
    "donation.confirm": (("platform", BIN32), ("donation", ID)),
    "funds.transfer": (
        ("transfer", ID),
        ("from_fund", FUND),
        ("to", BIN32),
        ("to_fund", FUND),
        ("amount", AMOUNT),
        ("currency", currency),
        ("purpose", text(500)),
    ),
    "funds.disburse": (
        ("disbursement", ID),
        ("fund", FUND),
        ("amount", AMOUNT),
        ("currency", currency),
        ("category", one_of(*CATEGORIES)),
        ("payee", text(200)),
        ("purpose", text(500)),
        ("evidence", list_of(BIN32, MAX_EVIDENCE)),
    ),
    "donation.refund": (
        ("refund", ID),
        ("platform", BIN32),
        ("donation", ID),
        ("amount", AMOUNT),
    ),
    "audit.attest": (
        ("attestation", ID),
        ("charity", BIN32),
        ("period", text(32)),
        ("opinion", one_of(*OPINIONS)),
        ("report", BIN32),
        ("note", text(2000)),
    ),
    "evidence.submit": (("votes", list_of(VOTE, 2, min_items=2)),),
    # Governance (docs/governance.md): additions; the v1 types above are unchanged.
    "validator.propose": (
        ("proposal", ID),
        ("action", one_of(*SET_ACTIONS)),
        ("validator", BIN32),
        ("replaces", nullable(BIN32)),
        ("name", text(200)),
        ("org_id", text(64)),
    ),
    "upgrade.propose": (
        ("proposal", ID),
        ("height", int_range(1, INT_MAX)),
        ("version", int_range(2, MAX_PROTOCOL_VERSION)),
        ("note", text(500)),
    ),
    "proposal.approve": (("proposer", BIN32), ("proposal", ID)),
    "party.rotate_key": (("new_key", BIN32), ("new_sig", BIN64)),
    "party.recover": (
        ("recovery", ID),
        ("party", BIN32),
        ("new_key", BIN32),
        ("new_sig", BIN64),
        ("reason", text(500)),
    ),
    "recovery.approve": (("proposer", BIN32), ("recovery", ID)),
    "party.reinstate": (("party", BIN32), ("reason", text(500))),
}

TX_TYPES: tuple[str, ...] = tuple(BODY_FIELDS)
V1_TX_TYPES: tuple[str, ...] = TX_TYPES[: TX_TYPES.index("evidence.submit") + 1]

ENVELOPE_FIELDS: tuple[tuple[str, Checker], ...] = (
    ("chain", text(INT_MAX)),
    ("type", text(INT_MAX)),
    ("signer", BIN32),
    ("nonce", UINT),
    ("body", any_map),  # its fields are checked after wrong_chain and unknown_type
    ("sig", BIN64),
)


def _check_set_change(body: dict[str, Any]) -> None:
    """`replaces` names the validator leaving in a replace, and only there."""
    if (body["action"] == "replace") != (body["replaces"] is not None):
        raise invalid_field("body.replaces", "must be set for replace and nil otherwise")


# Rules between fields of one body, run after each field passed its own check.
_CROSS_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "validator.propose": _check_set_change,
}

# Built once: checking a tx must not rebuild its schema.
_CHECK_ENVELOPE = exact_map(ENVELOPE_FIELDS)
_CHECK_BODY = {tx_type: exact_map(fields) for tx_type, fields in BODY_FIELDS.items()}


# -- public API -------------------------------------------------------------------------


def decode_tx(raw: bytes) -> dict[str, Any]:
    """Bytes → tx map: `too_large`, `malformed`, `non_canonical`, and a non-map is
    `invalid_field` on `tx`.

    Rejecting a non-map here rather than in `check_tx_shape` does not change any answer:
    `duplicate_tx`, which comes between the two in the spec's order, can only hold for a
    map, since every committed tx is one.
    """
    tx = decode(raw, MAX_TX_BYTES)
    if not isinstance(tx, dict):
        raise invalid_field("tx", "a tx must be a map")
    return tx


def check_tx_shape(tx: Any, chain_id: str) -> None:
    """Envelope → `wrong_chain` → `unknown_type` → body fields, in the spec's order."""
    _CHECK_ENVELOPE(tx, "")
    if tx["chain"] != chain_id:
        raise ProtocolError(
            "wrong_chain",
            f"tx is for chain {tx['chain']!r}, this is {chain_id!r}",
            {"expected": chain_id, "got": tx["chain"]},
        )
    check_body = _CHECK_BODY.get(tx["type"])
    if check_body is None:
        raise ProtocolError("unknown_type", f"unknown tx type {tx['type']!r}", {"type": tx["type"]})
    check_body(tx["body"], "body")
    cross_check = _CROSS_CHECKS.get(tx["type"])
    if cross_check is not None:
        cross_check(tx["body"])


def check_tx_signature(tx: dict[str, Any], raw: bytes | None = None) -> None:
    """`raw`, when given, must be the canonical encoding of `tx`: the sign-bytes are then
    cut from it instead of re-encoding the tx."""
    split = signing.split_signed_tx(raw) if raw is not None else None
    message = split[0] if split is not None else signing.tx_sign_bytes(tx)
    if not verify(tx["signer"], message, tx["sig"]):
        raise ProtocolError("bad_signature", "the tx signature does not verify")


def signed_tx_id(raw: bytes) -> bytes | None:
    """H(raw) if `raw` is a tx in canonical key order whose signature verifies over the
    sign-bytes cut from `raw` itself; else None (the caller then checks it the usual way).
    Pure and GIL-light (libsodium runs without the GIL), so bursts are checked on worker
    threads or processes ahead of the single-threaded admission or replay.

    For input that is not canonical, the id returned is the hash of bytes that admission
    and replay refuse or never compute (they hash the canonical re-encoding), so such a tx
    can never borrow this result."""
    split = signing.split_signed_tx(raw)
    if split is None:
        return None
    message, signer, sig = split
    return H(raw) if verify(signer, message, sig) else None


def verified_tx_ids(raws: list[bytes]) -> list[bytes]:
    """Worker task for raw txs (not blocks): the ids of those whose signature verifies."""
    return [tid for tid in map(signed_tx_id, raws) if tid is not None]


def make_tx(
    chain_id: str, tx_type: str, key: KeyPair, body: dict[str, Any], nonce: int
) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "chain": chain_id,
        "type": tx_type,
        "signer": key.public_key,
        "nonce": nonce,
        "body": body,
    }
    tx["sig"] = key.sign(signing.tx_sign_bytes(tx))
    return tx


def encode_tx(tx: dict[str, Any]) -> bytes:
    return encode(tx)
