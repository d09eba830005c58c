"""Published test vectors for the governance additions (tests/data/governance_vectors.json):
an independent client reproduces the rotation proof, two governance txs and a versioned
header hash byte for byte. Regenerate only for a deliberate protocol change:
`python -m tests.test_governance_vectors > tests/data/governance_vectors.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from almoner.node.chain.codec import H, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.signing import block_hash, rotation_sign_bytes
from almoner.node.chain.tx import check_tx_shape, check_tx_signature, decode_tx, make_tx

VECTORS = Path(__file__).parent / "data" / "governance_vectors.json"
CHAIN = "almoner-vectors"


def build() -> dict[str, Any]:
    party = KeyPair.from_seed(H(b"almoner/vectors/party"))
    new = KeyPair.from_seed(H(b"almoner/vectors/new-key"))
    validator = KeyPair.from_seed(H(b"almoner/vectors/validator"))
    pop_bytes = rotation_sign_bytes(CHAIN, party.public_key, new.public_key)
    new_sig = new.sign(pop_bytes)
    rotate = make_tx(
        CHAIN, "party.rotate_key", party, {"new_key": new.public_key, "new_sig": new_sig}, 7
    )
    propose = make_tx(
        CHAIN,
        "validator.propose",
        validator,
        {
            "proposal": "add-audit-office",
            "action": "add",
            "validator": new.public_key,
            "replaces": None,
            "name": "审计署",
            "org_id": "AUD-1",
        },
        8,
    )
    header = {
        "chain": CHAIN,
        "height": 42,
        "time": 1_790_000_042_000,
        "prev": H(b"prev"),
        "proposer": validator.public_key,
        "tx_count": 0,
        "txs_root": H(b""),
        "log_size": 0,
        "log_root": H(b""),
        "validators_hash": H(encode([validator.public_key])),
        "version": 2,
    }
    return {
        "chain": CHAIN,
        "seeds": {
            "party": H(b"almoner/vectors/party").hex(),
            "new_key": H(b"almoner/vectors/new-key").hex(),
            "validator": H(b"almoner/vectors/validator").hex(),
        },
        "rotation": {"sign_bytes": pop_bytes.hex(), "new_sig": new_sig.hex()},
        "txs": [
            {"type": tx["type"], "canonical": encode(tx).hex(), "tx_id": H(encode(tx)).hex()}
            for tx in (rotate, propose)
        ],
        "versioned_header": {
            "canonical": encode(header).hex(),
            "block_hash": block_hash(header).hex(),
        },
    }


def test_vectors_reproduce() -> None:
    published = json.loads(VECTORS.read_text())
    assert build() == published
    for vector in published["txs"]:
        raw = bytes.fromhex(vector["canonical"])
        tx = decode_tx(raw)
        check_tx_shape(tx, CHAIN)
        check_tx_signature(tx, raw)
        assert H(raw).hex() == vector["tx_id"]


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
