"""Validator sets a light client can trust without replaying the chain (docs/governance.md).

`trace` and `audit-nodes` check a head's certificate against the set in force at its
height. Starting from the genesis set, each later set is accepted only with proof of its
adoption: the proposal tx and enough approval txs, each found in a block certified by the
set in force at that block's height (already proven), signed by distinct members of the
set in force at the adopting height, a quorum of them, within the proposal's lifetime,
the last one at the claimed adopting height. The change is then applied, in adoption
order, exactly as the contract does (`changed_set`), in force two heights later.

The node's governance view only says where to look; nothing in it is trusted. A node
that hides an adoption makes a later head fail (its `validators_hash` names a set the
client did not derive), never pass wrongly; one that invents or inflates an adoption
cannot show certified blocks holding the approvals.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from almoner.consensus import Certificate, CertificateError, verify_certificate
from almoner.consensus.messages import quorum
from almoner.node.chain.codec import H, encode
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.contract.governance import changed_set
from almoner.node.chain.genesis import Genesis
from almoner.node.chain.ledger import HEADER_KEYS, VERSIONED_HEADER_KEYS, validators_hash
from almoner.node.chain.signing import block_hash
from almoner.node.chain.store import MemoryStore, Overlay
from almoner.node.chain.validator_sets import PROPOSAL_TTL, SET_CHANGE_DELAY, schedule_set
from almoner.node.errors import AlmonerError, ProtocolError


class SetProofError(AlmonerError):
    """A claimed set change is not proven by certified blocks."""


@runtime_checkable
class SetSource(Protocol):
    def block(self, height: int) -> dict[str, Any]: ...

    def tx(self, tx_id: bytes) -> dict[str, Any]: ...

    def governance(self) -> dict[str, Any]: ...


@dataclass
class TrustedSets:
    """Proven sets by the height they are in force from."""

    starts: list[int] = field(default_factory=list)
    sets: list[list[bytes]] = field(default_factory=list)

    @classmethod
    def genesis(cls, genesis: Genesis) -> TrustedSets:
        return cls([1], [list(genesis.validator_keys)])

    def at(self, height: int) -> list[bytes]:
        return self.sets[max(0, bisect_right(self.starts, height) - 1)]

    def add(self, from_height: int, keys: list[bytes]) -> None:
        if from_height == self.starts[-1]:  # two adoptions in one block compose
            self.sets[-1] = keys
        else:
            self.starts.append(from_height)
            self.sets.append(keys)


def check_header(header: Any, cert_map: Any, genesis: Genesis, members: list[bytes]) -> bytes:
    """Header of this chain naming `members`, certified by a quorum of them; its hash."""
    if not isinstance(header, dict) or set(header) not in (HEADER_KEYS, VERSIONED_HEADER_KEYS):
        raise SetProofError("a header does not have exactly the protocol's keys")
    if header["chain"] != genesis.chain_id:
        raise SetProofError(f"a header is for chain {header['chain']!r}")
    if header["validators_hash"] != validators_hash(members):
        raise SetProofError(
            f"block {header['height']} names a validator set that no proven change put "
            "in force there"
        )
    try:
        digest = block_hash(header)
        verify_certificate(
            Certificate.from_map(cert_map),
            genesis.chain_id,
            members,
            NodeVerifier(),
            height=header["height"],
            block_hash=digest,
        )
    except (CertificateError, AlmonerError, TypeError, ValueError) as exc:
        height = header["height"]
        raise SetProofError(f"block {height}: certificate does not verify ({exc})") from exc
    return digest


def _certified_tx(
    source: SetSource, tx_id: bytes, genesis: Genesis, sets: TrustedSets
) -> tuple[dict[str, Any], int, int]:
    """(tx, height, index) of a tx found in a block certified by the set in force there."""
    receipt = (source.tx(tx_id) or {}).get("receipt") or {}
    height, index = receipt.get("height"), receipt.get("index_in_block")
    if not isinstance(height, int) or not isinstance(index, int):
        raise SetProofError(f"tx {tx_id.hex()} is not committed")
    view = source.block(height)
    check_header(view.get("header"), view.get("commit"), genesis, sets.at(height))
    txs = view.get("txs") or []
    if not 0 <= index < len(txs) or H(encode(txs[index])) != tx_id:
        raise SetProofError(f"block {height} does not hold tx {tx_id.hex()} where claimed")
    tx: dict[str, Any] = txs[index]
    return tx, height, index


def _prove(
    source: SetSource, record: dict[str, Any], genesis: Genesis, sets: TrustedSets
) -> tuple[int, int]:
    """Check one adoption; (adopting height, index of the adopting tx in its block)."""
    adopted = record.get("adopted_height")
    proposal, proposer = record.get("proposal"), record.get("proposer")
    tx_ids = record.get("approval_txs") or []
    if not isinstance(adopted, int) or not tx_ids or record.get("adopted_tx") not in tx_ids:
        raise SetProofError(f"proposal {proposal!r} shows no adopting tx")
    members = sets.at(adopted)
    signers: set[bytes] = set()
    where = (0, 0)
    proposed_at = None
    for number, tid in enumerate(tx_ids):
        tx, height, index = _certified_tx(source, tid, genesis, sets)
        if number == 0:
            ok = tx["type"] == "validator.propose" and tx["body"] == record.get("body")
            ok = ok and tx["signer"] == proposer and tx["body"]["proposal"] == proposal
            proposed_at = height
        else:
            body = {"proposer": proposer, "proposal": proposal}
            ok = tx["type"] == "proposal.approve" and tx["body"] == body
        assert proposed_at is not None
        if not ok or not proposed_at <= height <= min(adopted, proposed_at + PROPOSAL_TTL):
            raise SetProofError(f"tx {tid.hex()} does not approve proposal {proposal!r}")
        if tx["signer"] in members:
            signers.add(tx["signer"])
        if tid == record["adopted_tx"]:
            if height != adopted:
                raise SetProofError(f"proposal {proposal!r} was not adopted at {adopted}")
            where = (height, index)
    if len(signers) < quorum(len(members)):
        raise SetProofError(
            f"proposal {proposal!r}: {len(signers)} approvals from the set in force, "
            f"a quorum is {quorum(len(members))}"
        )
    return where


def follow_sets(genesis: Genesis, source: SetSource) -> TrustedSets:
    """Every set change the source reports, each proven, applied in adoption order."""
    sets = TrustedSets.genesis(genesis)
    try:
        records = [
            p
            for p in source.governance().get("proposals") or []
            if p.get("kind") == "validator" and p.get("adopted_height") is not None
        ]
        # The claimed order only decides what to prove first; each proof pins its place.
        records.sort(key=lambda r: (r["adopted_height"], _claimed_index(source, r)))
        last = (0, 0)
        for record in records:
            where = _prove(source, record, genesis, sets)
            if where < last:
                raise SetProofError("set changes are not in the order they were adopted")
            last = where
            sets.add(where[0] + SET_CHANGE_DELAY, _apply(sets.sets[-1], record["body"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise SetProofError(f"a set change is not shaped as the protocol says ({exc})") from exc
    return sets


def _claimed_index(source: SetSource, record: dict[str, Any]) -> int:
    receipt = (source.tx(record["adopted_tx"]) or {}).get("receipt") or {}
    index = receipt.get("index_in_block")
    return index if isinstance(index, int) else 0


def _apply(keys: list[bytes], body: dict[str, Any]) -> list[bytes]:
    """The contract's own rule for a change, on a scratch state holding only the set."""
    scratch = Overlay(MemoryStore())
    schedule_set(scratch, 1, keys)
    try:
        return changed_set(scratch, body)
    except ProtocolError as exc:
        raise SetProofError(f"a proven change does not apply: {exc.message}") from exc
