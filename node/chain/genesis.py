"""The genesis document (docs/spec/05-chain.md): parsing, validation and its hash.

The genesis hash is what a regulator pins: every later check of the chain starts from it,
so the parser accepts exactly the documented key set and nothing that could make two
readers derive different bytes (floats, extra keys, bad hex).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from almoner.node.chain.codec import H, encode
from almoner.node.errors import AlmonerError

ROLES = ("charity", "platform", "regulator")
PARAM_KEYS = (
    "max_block_txs",
    "max_block_bytes",
    "heartbeat_ms",
    "timeout_propose_ms",
    "timeout_prevote_ms",
    "timeout_precommit_ms",
    "timeout_delta_ms",
)
DEFAULT_PARAMS: dict[str, int] = {
    "max_block_txs": 2000,
    "max_block_bytes": 4 * 1024 * 1024,
    "heartbeat_ms": 60_000,
    "timeout_propose_ms": 1000,
    "timeout_prevote_ms": 500,
    "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250,
}


class GenesisError(AlmonerError):
    """The genesis document does not follow docs/spec/05-chain.md."""


@dataclass(frozen=True)
class Validator:
    name: str
    pubkey: bytes


@dataclass(frozen=True)
class GenesisParty:
    pubkey: bytes
    role: str
    name: str
    org_id: str


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time: int
    validators: tuple[Validator, ...]
    parties: tuple[GenesisParty, ...]
    params: dict[str, int]

    def to_protocol(self) -> dict[str, Any]:
        """The map that is hashed: JSON structure with only `pubkey` fields as bin."""
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "validators": [{"name": v.name, "pubkey": v.pubkey} for v in self.validators],
            "parties": [
                {"pubkey": p.pubkey, "role": p.role, "name": p.name, "org_id": p.org_id}
                for p in self.parties
            ],
            "params": dict(self.params),
        }

    def to_json(self) -> dict[str, Any]:
        doc = self.to_protocol()
        for entry in (*doc["validators"], *doc["parties"]):
            entry["pubkey"] = entry["pubkey"].hex()
        return doc

    @property
    def hash(self) -> bytes:
        return H(encode(self.to_protocol()))

    @property
    def validator_keys(self) -> list[bytes]:
        """Validators in genesis order: the proposer rotation of docs/spec/06."""
        return [v.pubkey for v in self.validators]


def _keys(obj: Any, expected: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise GenesisError(f"{where} must be a JSON object")
    missing = [k for k in expected if k not in obj]
    extra = [k for k in obj if k not in expected]
    if missing or extra:
        raise GenesisError(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return obj


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenesisError(f"{where} must be an integer")
    if not minimum <= value < 2**63:
        raise GenesisError(f"{where} must be between {minimum} and 2^63-1")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise GenesisError(f"{where} must be a non-empty string")
    return value


def _pubkey(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise GenesisError(f"{where} must be 64 lowercase hex characters")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise GenesisError(f"{where} must be 64 lowercase hex characters") from exc
    if raw.hex() != value:
        raise GenesisError(f"{where} must be lowercase hex")
    return raw


def parse_genesis(doc: Any) -> Genesis:
    """Validate a parsed JSON genesis document; raise GenesisError naming the problem."""
    doc = _keys(doc, ("chain_id", "genesis_time", "validators", "parties", "params"), "genesis")
    chain_id = _str(doc["chain_id"], "chain_id")
    genesis_time = _int(doc["genesis_time"], "genesis_time")
    if not isinstance(doc["validators"], list) or not doc["validators"]:
        raise GenesisError("validators must be a non-empty list")
    validators = []
    for i, raw_entry in enumerate(doc["validators"]):
        entry = _keys(raw_entry, ("name", "pubkey"), f"validators[{i}]")
        validators.append(
            Validator(
                _str(entry["name"], f"validators[{i}].name"),
                _pubkey(entry["pubkey"], f"validators[{i}].pubkey"),
            )
        )
    if len({v.pubkey for v in validators}) != len(validators):
        raise GenesisError("validators must have distinct public keys")
    if not isinstance(doc["parties"], list):
        raise GenesisError("parties must be a list")
    parties = []
    for i, raw_entry in enumerate(doc["parties"]):
        entry = _keys(raw_entry, ("pubkey", "role", "name", "org_id"), f"parties[{i}]")
        if entry["role"] not in ROLES:
            raise GenesisError(f"parties[{i}].role must be one of {', '.join(ROLES)}")
        parties.append(
            GenesisParty(
                _pubkey(entry["pubkey"], f"parties[{i}].pubkey"),
                entry["role"],
                _str(entry["name"], f"parties[{i}].name"),
                _str(entry["org_id"], f"parties[{i}].org_id"),
            )
        )
    if len({p.pubkey for p in parties}) != len(parties):
        raise GenesisError("parties must have distinct public keys")
    params_doc = _keys(doc["params"], PARAM_KEYS, "params")
    params = {k: _int(params_doc[k], f"params.{k}", minimum=1) for k in PARAM_KEYS}
    return Genesis(chain_id, genesis_time, tuple(validators), tuple(parties), params)


def _reject_float(text: str) -> Any:
    raise GenesisError(f"floats are not allowed in genesis ({text})")


def load_genesis(path: str | Path) -> Genesis:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text, parse_float=_reject_float, parse_constant=_reject_float)
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from exc
    return parse_genesis(doc)


def dump_genesis(genesis: Genesis, path: str | Path) -> None:
    Path(path).write_text(json.dumps(genesis.to_json(), indent=2) + "\n", encoding="utf-8")
