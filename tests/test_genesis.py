"""The genesis document: exact key set, no floats, a stable hash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from almoner.node.chain.codec import H, encode
from almoner.node.chain.genesis import (
    DEFAULT_PARAMS,
    GenesisError,
    dump_genesis,
    load_genesis,
    parse_genesis,
)

PK = "ab" * 32
PK2 = "22" * 32


def doc() -> dict[str, Any]:
    return {
        "chain_id": "almoner-test",
        "genesis_time": 1_700_000_000_000,
        "validators": [{"name": "v0", "pubkey": PK}],
        "parties": [{"pubkey": PK2, "role": "regulator", "name": "监管局", "org_id": "R-1"}],
        "params": dict(DEFAULT_PARAMS),
    }


def test_hash_is_over_the_canonical_map_with_pubkeys_as_bin() -> None:
    genesis = parse_genesis(doc())
    expected = doc()
    expected["validators"][0]["pubkey"] = bytes.fromhex(PK)
    expected["parties"][0]["pubkey"] = bytes.fromhex(PK2)
    assert genesis.hash == H(encode(expected))
    assert genesis.validator_keys == [bytes.fromhex(PK)]


def test_file_round_trip(tmp_path: Path) -> None:
    genesis = parse_genesis(doc())
    path = tmp_path / "genesis.json"
    dump_genesis(genesis, path)
    assert load_genesis(path) == genesis
    assert json.loads(path.read_text()) == doc()


def _mutations() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    d = doc()
    d["extra"] = 1
    cases.append(("unexpected keys", d))
    d = doc()
    del d["params"]
    cases.append(("missing keys", d))
    d = doc()
    d["validators"][0]["pubkey"] = PK.upper()
    cases.append(("lowercase hex", d))
    d = doc()
    d["validators"] = [{"name": "a", "pubkey": PK}, {"name": "b", "pubkey": PK}]
    cases.append(("distinct", d))
    d = doc()
    d["parties"][0]["role"] = "donor"
    cases.append(("role must be one of", d))
    d = doc()
    d["params"]["heartbeat_ms"] = True
    cases.append(("integer", d))
    d = doc()
    d["validators"] = []
    cases.append(("non-empty", d))
    return cases


@pytest.mark.parametrize(("message", "bad"), _mutations())
def test_invalid_documents(message: str, bad: Any) -> None:
    with pytest.raises(GenesisError, match=message):
        parse_genesis(copy.deepcopy(bad))


def test_floats_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc()).replace("1700000000000", "1700000000000.0"))
    with pytest.raises(GenesisError, match="floats"):
        load_genesis(path)
