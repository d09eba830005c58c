"""The conformance vectors of docs/spec/vectors/ are exactly what the implementation computes.

Other-language clients (the TypeScript SDK first) are tested against these files, so a
change to the code that changes a byte must show up here as a failure until the vectors
are regenerated (`python -m tests.spec_vectors`) and the change is recorded as a protocol
change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from almoner.node.chain.codec import H, decode, encode
from almoner.node.chain.crypto import KeyPair, verify
from almoner.node.chain.keys import load_key_file
from tests.spec_vectors import VECTORS_DIR, generate, render, typed, untyped

REPO = Path(__file__).resolve().parent.parent
GENERATED = generate()


def load(name: str) -> dict[str, Any]:
    content: dict[str, Any] = json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))
    return content


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_vectors_equal_a_fresh_generation(name: str) -> None:
    committed = (VECTORS_DIR / name).read_text(encoding="utf-8")
    assert committed == render(GENERATED[name]), (
        f"docs/spec/vectors/{name} is stale: run python -m tests.spec_vectors"
    )


def test_no_stray_vector_files() -> None:
    assert {p.name for p in VECTORS_DIR.glob("*.json")} == set(GENERATED)


def test_typed_notation_round_trips_every_encoding_vector() -> None:
    vectors = load("encoding.json")
    for entry in vectors["valid"]:
        value = untyped(entry["value"])
        assert encode(value).hex() == entry["hex"], entry["name"]
        assert decode(bytes.fromhex(entry["hex"])) == value, entry["name"]
        assert typed(value) == entry["value"], entry["name"]


def test_tx_vectors_are_self_consistent() -> None:
    """What a client in another language checks, done here from the files alone."""
    for entry in load("transactions.json")["txs"]:
        tx = untyped(entry["tx"])
        raw = bytes.fromhex(entry["encoded"])
        key = KeyPair.from_seed(bytes.fromhex(entry["signer_seed"]))
        assert encode(tx) == raw
        assert H(raw).hex() == entry["tx_id"]
        unsigned = {k: v for k, v in tx.items() if k != "sig"}
        sign_bytes = b"almoner/tx/1\x00" + encode(unsigned)
        assert sign_bytes.hex() == entry["sign_bytes"]
        assert key.public_key == tx["signer"]
        assert verify(key.public_key, sign_bytes, bytes.fromhex(entry["signature"]))


V1_TX_TYPES = {
    "party.register",
    "party.suspend",
    "campaign.open",
    "donation.record",
    "donation.confirm",
    "funds.transfer",
    "funds.disburse",
    "donation.refund",
    "audit.attest",
    "evidence.submit",
}


def test_encrypted_key_file_vector_loads_with_its_passphrase(tmp_path: Path) -> None:
    sealed = load("keys.json")["encrypted"]
    path = tmp_path / "sealed.key"
    path.write_text(json.dumps(sealed["key_file"]), encoding="utf-8")
    path.chmod(0o600)
    key = load_key_file(path, sealed["passphrase"])
    assert key.public_key.hex() == sealed["public_key"]


def test_vectors_cover_every_v1_tx_type() -> None:
    """The ten v1 types; the governance types (docs/governance.md) have no vectors yet."""
    from almoner.node.chain.tx import TX_TYPES

    assert set(TX_TYPES) >= V1_TX_TYPES
    assert {e["type"] for e in load("transactions.json")["txs"]} == V1_TX_TYPES


def test_repository_never_points_at_the_external_spec() -> None:
    """The repository carries its own protocol: nothing may defer to the outside copy."""
    needle = "shared" + "/spec"
    offenders = []
    for root in ("docs", "node", "cli", "consensus", "sdk", "tests", "README.md", "Makefile"):
        base = REPO / root
        paths = [base] if base.is_file() else base.rglob("*") if base.exists() else []
        for path in paths:
            if "node_modules" in path.parts or not path.is_file():
                continue
            if path.suffix not in {".md", ".py", ".ts", ".json", ""} or path.stat().st_size > 10**6:
                continue
            if needle in path.read_text(encoding="utf-8", errors="replace"):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
