"""The ledger keeps validator sets and protocol versions across heads, and forgets them
exactly when a commit changes governance state (node/chain/governance_cache.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from almoner.node.chain import schema
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.governance_cache import GovernanceCache
from almoner.node.chain.state import validators_at
from almoner.node.chain.store import LevelStore
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.chain.validator_sets import SET_CHANGE_DELAY, version_at
from tests.localchain import LocalChain, Workload, local_genesis, seeded_key

FIFTH = seeded_key("validator-4")
ADD_FIFTH = {
    "proposal": "add-5",
    "action": "add",
    "validator": FIFTH.public_key,
    "replaces": None,
    "name": "Audit Office 审计署",
    "org_id": "AUD-1",
}


class ScanCountingStore(LevelStore):
    """Real LevelDB, counting the reverse scans of governance state."""

    scans = 0

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        if prefix in (schema.VALIDATORS, schema.UPGRADE):
            self.scans += 1
        return super().iterate(prefix, reverse=reverse, start=start)


class Chain:
    def __init__(self, tmp: Path) -> None:
        self.genesis, self.keys = local_genesis()
        self.store = ScanCountingStore(str(tmp / "chain"))
        self.local = LocalChain(self.genesis, self.keys.validators, store=self.store)
        self.local.add_key(FIFTH)
        self.ledger = self.local.ledger
        self.work = Workload(self.genesis, self.keys)
        self.v = [k.public_key for k in self.keys.validators]
        self.local.add_block(self.work.opening())

    def governance(self, tx_type: str, body: dict[str, Any]) -> None:
        """One block: validator-0 proposes, validators 1 and 2 approve (a quorum of 4)."""
        txs = []
        for i, kind in enumerate((tx_type, "proposal.approve", "proposal.approve")):
            self.work.nonce += 1
            payload = body if i == 0 else {"proposer": self.v[0], "proposal": body["proposal"]}
            key: KeyPair = self.keys.validators[i]
            txs.append(
                encode_tx(make_tx(self.genesis.chain_id, kind, key, payload, self.work.nonce))
            )
        self.local.add_block(txs)


def test_answers_survive_ordinary_commits(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    ahead = range(chain.ledger.head.height + 1, chain.ledger.head.height + 6)
    for height in ahead:
        assert chain.ledger.validators(height) == chain.v
        assert chain.ledger.version(height) == 1
    scans = chain.store.scans
    for _ in range(3):
        chain.local.add_block([chain.work.donation()])
    head = chain.ledger.head.height
    for height in [*ahead, *range(head + 1, head + 40)]:  # new heights too: every head asks
        assert chain.ledger.validators(height) == chain.v
        assert chain.ledger.version(height) == 1
    assert chain.store.scans == scans, "a donation block must not cost new scans"


def test_a_set_change_and_an_upgrade_are_seen_at_once(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    head = chain.ledger.head.height
    effective = head + 1 + SET_CHANGE_DELAY  # adopted by the next block
    upgrade_at = head + 20
    for height in range(head + 1, upgrade_at + 2):  # answers cached before the changes
        chain.ledger.validators(height)
        chain.ledger.version(height)

    chain.governance("validator.propose", ADD_FIFTH)
    assert chain.ledger.head.height == head + 1
    assert chain.ledger.validators(effective - 1) == chain.v
    assert chain.ledger.validators(effective) == [*chain.v, FIFTH.public_key]

    upgrade = {"proposal": "v2", "height": upgrade_at, "version": 2, "note": "v2 headers"}
    chain.governance("upgrade.propose", upgrade)
    assert chain.ledger.version(upgrade_at - 1) == 1
    assert chain.ledger.version(upgrade_at) == 2


def test_a_schedule_scanned_across_a_governance_commit_is_not_kept(tmp_path: Path) -> None:
    """The store worker commits while the event loop scans: what the scan read may be
    from before the commit, so it must not be served after it."""
    chain = Chain(tmp_path)
    cache = GovernanceCache(chain.store)
    height = chain.ledger.head.height + 1 + SET_CHANGE_DELAY
    scan = chain.store.iterate

    def scan_raced_by_a_commit(
        prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        rows = list(scan(prefix, reverse=reverse, start=start))  # read before the commit
        if prefix == schema.VALIDATORS and chain.store.iterate is scan_raced_by_a_commit:
            chain.store.iterate = scan  # type: ignore[method-assign]
            chain.governance("validator.propose", ADD_FIFTH)
            cache.committed([schema.VALIDATORS + schema.u64(height)])
        return iter(rows)

    chain.store.iterate = scan_raced_by_a_commit  # type: ignore[method-assign]
    assert cache.validators(height) == chain.v  # the set before the commit
    assert cache.validators(height) == [*chain.v, FIFTH.public_key]
    scans = chain.store.scans
    cache.committed([schema.BLOCK + schema.u64(height)])  # not governance: kept
    assert cache.validators(height) == [*chain.v, FIFTH.public_key]
    assert chain.store.scans == scans


def test_the_schedules_answer_as_the_store_scans_do(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    head = chain.ledger.head.height
    chain.governance("validator.propose", ADD_FIFTH)
    chain.governance(
        "upgrade.propose", {"proposal": "v2", "height": head + 9, "version": 2, "note": ""}
    )
    for height in range(head + 15):
        assert chain.ledger.validators(height) == validators_at(chain.store, height), height
        assert chain.ledger.version(height) == version_at(chain.store, height), height
