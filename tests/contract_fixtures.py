"""A small, deterministic world for contract tests: keys, a genesis, body builders, and a
`Ledger` that applies txs the way the block loop does (check_and_apply, then TX_INDEX)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from almoner.node.chain import schema
from almoner.node.chain.codec import H, encode
from almoner.node.chain.contract.engine import check_and_apply, seed_genesis
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.genesis import DEFAULT_PARAMS, Genesis, GenesisParty, Validator
from almoner.node.chain.signing import rotation_sign_bytes, vote_sign_bytes
from almoner.node.chain.store import KVReader, KVStore, MemoryStore, Overlay
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.errors import ProtocolError

CHAIN = "almoner-test"


def key(name: str) -> KeyPair:
    return KeyPair.from_seed(H(name.encode()))


REGULATOR = key("regulator")
PLATFORM_1 = key("platform-1")
PLATFORM_2 = key("platform-2")
CHARITY_1 = key("charity-1")
CHARITY_2 = key("charity-2")
CHARITY_3 = key("charity-3")
VALIDATORS = [key(f"validator-{i}") for i in range(4)]
OUTSIDER = key("outsider")
NEWCOMER = key("newcomer")

CHARITIES = [CHARITY_1, CHARITY_2, CHARITY_3]
PLATFORMS = [PLATFORM_1, PLATFORM_2]


def make_genesis() -> Genesis:
    parties = [GenesisParty(REGULATOR.public_key, "regulator", "Civil Affairs", "REG-1")]
    parties += [
        GenesisParty(k.public_key, "platform", f"平台 {i}", f"PLT-{i}")
        for i, k in enumerate(PLATFORMS, 1)
    ]
    parties += [
        GenesisParty(k.public_key, "charity", f"慈善会 {i}", f"CH-{i}")
        for i, k in enumerate(CHARITIES, 1)
    ]
    return Genesis(
        chain_id=CHAIN,
        genesis_time=1_790_000_000_000,
        validators=tuple(
            Validator(f"validator-{i}", k.public_key) for i, k in enumerate(VALIDATORS)
        ),
        parties=tuple(parties),
        params=dict(DEFAULT_PARAMS),
    )


GENESIS = make_genesis()

# -- body builders (valid by default) ----------------------------------------------------


def register(
    party: bytes, role: str = "charity", name: str = "新慈善", org_id: str = "N-1"
) -> dict[str, Any]:
    return {"party": party, "role": role, "name": name, "org_id": org_id}


def suspend(party: bytes, reason: str = "fraud") -> dict[str, Any]:
    return {"party": party, "reason": reason}


def campaign(
    cid: str, currency: str = "CNY", goal: int = 100_000, title: str = "Flood relief"
) -> dict[str, Any]:
    return {"campaign": cid, "title": title, "currency": currency, "goal": goal}


def donation(
    did: str,
    charity: bytes,
    amount: int,
    currency: str = "CNY",
    campaign: str | None = None,
    donor: bytes = b"\x07" * 32,
) -> dict[str, Any]:
    return {
        "donation": did,
        "donor": donor,
        "charity": charity,
        "campaign": campaign,
        "amount": amount,
        "currency": currency,
        "received_at": 1_790_000_001_000,
    }


def confirm(platform: bytes, did: str) -> dict[str, Any]:
    return {"platform": platform, "donation": did}


def transfer(
    tid: str,
    to: bytes,
    amount: int,
    from_fund: str = "general",
    to_fund: str = "general",
    currency: str = "CNY",
) -> dict[str, Any]:
    return {
        "transfer": tid,
        "from_fund": from_fund,
        "to": to,
        "to_fund": to_fund,
        "amount": amount,
        "currency": currency,
        "purpose": "regranting",
    }


def disburse(
    did: str,
    amount: int,
    fund: str = "general",
    currency: str = "CNY",
    evidence: list[bytes] | None = None,
) -> dict[str, Any]:
    return {
        "disbursement": did,
        "fund": fund,
        "amount": amount,
        "currency": currency,
        "category": "program",
        "payee": "Village school",
        "purpose": "textbooks",
        "evidence": [H(b"invoice")] if evidence is None else evidence,
    }


def refund(rid: str, platform: bytes, did: str, amount: int) -> dict[str, Any]:
    return {"refund": rid, "platform": platform, "donation": did, "amount": amount}


def attest(aid: str, charity: bytes) -> dict[str, Any]:
    return {
        "attestation": aid,
        "charity": charity,
        "period": "2026",
        "opinion": "clean",
        "report": H(b"report"),
        "note": "",
    }


def vote(
    validator: KeyPair,
    height: int,
    block_hash: bytes | None,
    round_: int = 0,
    kind: str = "prevote",
    chain: str = CHAIN,
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "kind": kind,
        "chain": chain,
        "height": height,
        "round": round_,
        "block_hash": block_hash,
        "validator": validator.public_key,
    }
    v["sig"] = validator.sign(vote_sign_bytes(v))
    return v


def evidence(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"votes": [first, second]}


# -- applying txs ------------------------------------------------------------------------


def dump(reader: KVReader) -> list[tuple[bytes, bytes]]:
    return list(reader.iterate(b""))


@dataclass
class Ledger:
    """Applies txs to an overlay over a store as the block loop would; `commit()` ends the
    block by writing the overlay into the store, so LevelStore paths are exercised too."""

    store: KVStore = field(default_factory=MemoryStore)
    height: int = 1
    index: int = 0
    nonce: int = 0
    state: Overlay = field(init=False)

    def __post_init__(self) -> None:
        self.state = Overlay(self.store)
        seed_genesis(self.state, GENESIS)

    def raw(self, signer: KeyPair, tx_type: str, body: dict[str, Any], chain: str = CHAIN) -> bytes:
        self.nonce += 1
        return encode_tx(make_tx(chain, tx_type, signer, body, self.nonce))

    def apply(self, raw: bytes) -> bytes:
        _, tx_id = check_and_apply(self.state, raw, self.height, self.index, CHAIN)
        self.state.put(
            schema.TX_INDEX + tx_id,
            encode({"height": self.height, "index": self.index, "leaf_index": 0}),
        )
        self.index += 1
        return tx_id

    def submit(self, signer: KeyPair, tx_type: str, body: dict[str, Any]) -> bytes:
        return self.apply(self.raw(signer, tx_type, body))

    def snapshot(self) -> tuple[dict[bytes, bytes | None], list[tuple[bytes, bytes]]]:
        return self.state.changes(), dump(self.state)

    def reject_raw(self, raw: bytes, code: str) -> ProtocolError:
        """Assert the tx is rejected with `code` and the state is byte-for-byte unchanged."""
        before = self.snapshot()
        with pytest.raises(ProtocolError) as info:
            check_and_apply(self.state, raw, self.height, self.index, CHAIN)
        assert info.value.code == code, info.value
        assert self.snapshot() == before
        return info.value

    def reject(
        self, signer: KeyPair, tx_type: str, body: dict[str, Any], code: str
    ) -> ProtocolError:
        return self.reject_raw(self.raw(signer, tx_type, body), code)

    def commit(self) -> None:
        self.store.write(self.state.changes())
        self.state = Overlay(self.store)
        self.height += 1
        self.index = 0


# -- governance bodies (docs/governance.md) -----------------------------------------------


def set_change(
    pid: str,
    validator: bytes,
    action: str = "add",
    replaces: bytes | None = None,
    name: str = "新验证人",
    org_id: str = "VAL-5",
) -> dict[str, Any]:
    return {
        "proposal": pid,
        "action": action,
        "validator": validator,
        "replaces": replaces,
        "name": name,
        "org_id": org_id,
    }


def upgrade(pid: str, height: int, version: int = 2, note: str = "v2 headers") -> dict[str, Any]:
    return {"proposal": pid, "height": height, "version": version, "note": note}


def approve(proposer: bytes, pid: str) -> dict[str, Any]:
    return {"proposer": proposer, "proposal": pid}


def pop(new: KeyPair, party: bytes, chain: str = CHAIN) -> bytes:
    """The new key's proof of possession for a rotation of `party`."""
    return new.sign(rotation_sign_bytes(chain, party, new.public_key))


def rotate(new: KeyPair, party: bytes) -> dict[str, Any]:
    return {"new_key": new.public_key, "new_sig": pop(new, party)}


def recover(rid: str, party: bytes, new: KeyPair, reason: str = "key leaked") -> dict[str, Any]:
    return {
        "recovery": rid,
        "party": party,
        "new_key": new.public_key,
        "new_sig": pop(new, party),
        "reason": reason,
    }


def approve_recovery(proposer: bytes, rid: str) -> dict[str, Any]:
    return {"proposer": proposer, "recovery": rid}


def reinstate(party: bytes, reason: str = "cleared by the court") -> dict[str, Any]:
    return {"party": party, "reason": reason}
