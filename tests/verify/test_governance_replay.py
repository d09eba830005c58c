"""verify replays a chain across a validator set change, a key rotation, a recovery and an
upgrade; certificates are checked against the set in force at each height, and a chain
certified by a set that never took effect fails with a named rule (docs/governance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from almoner.consensus.certificate import Certificate, CommitSig
from almoner.consensus.messages import PRECOMMIT, Vote
from almoner.node.audit.audit_nodes import audit_nodes
from almoner.node.audit.set_proofs import follow_sets
from almoner.node.audit.verify import VerifyReport, verify_chain
from almoner.node.chain.certified import check_certified_block
from almoner.node.chain.codec import encode
from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.governance_views import governance_view
from almoner.node.chain.ledger import Ledger, UpgradeRequired
from almoner.node.chain.signing import block_hash, rotation_sign_bytes
from almoner.node.chain.store import LevelStore
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.chain.validator_sets import set_history
from almoner.node.chain.views import (
    block_view,
    committed_tx,
    head_view,
    party_view,
    receipt,
    trace_view,
)
from tests.localchain import LocalChain, Workload, local_genesis, seeded_key

FIFTH = seeded_key("validator-4")


def verify(chain: LocalChain) -> VerifyReport:
    items = [encode({"block": block, "commit": cert}) for block, cert in chain.blocks()]
    return verify_chain(chain.genesis, items)


class Story:
    """A 4-validator chain that adds a fifth, removes validator-3, rotates charity-1's key,
    recovers charity-2's, and upgrades to protocol version 2."""

    def __init__(self, tmp: Path) -> None:
        self.genesis, self.keys = local_genesis()
        self.chain = LocalChain(
            self.genesis, self.keys.validators, store=LevelStore(str(tmp / "chain"))
        )
        self.chain.add_key(FIFTH)
        self.work = Workload(self.genesis, self.keys)
        self.v = [k.public_key for k in self.keys.validators]

    def vtx(self, i: int | KeyPair, tx_type: str, body: dict[str, Any]) -> bytes:
        key = i if isinstance(i, KeyPair) else self.keys.validators[i]
        self.work.nonce += 1
        return encode_tx(make_tx(self.genesis.chain_id, tx_type, key, body, self.work.nonce))

    def change(
        self, pid: str, action: str, validator: bytes, approvers: list[int | KeyPair]
    ) -> None:
        body = {
            "proposal": pid,
            "action": action,
            "validator": validator,
            "replaces": None,
            "name": "Audit Office 审计署",
            "org_id": "AUD-1",
        }
        txs = [self.vtx(0, "validator.propose", body)]
        txs += [
            self.vtx(a, "proposal.approve", {"proposer": self.v[0], "proposal": pid})
            for a in approvers
        ]
        self.chain.add_block(txs)

    def run(self) -> None:
        chain, work = self.chain, self.work
        chain.add_block(work.opening())
        chain.add_block([work.donation()])
        self.change("add-5", "add", FIFTH.public_key, [1, 2])
        self.adopted_add = chain.height
        chain.add_block([work.donation()])
        chain.add_block([work.donation()])  # height adopted+2: five validators sign
        self.change("drop-3", "remove", self.v[3], [1, 2, FIFTH])
        self.adopted_remove = chain.height
        fresh = seeded_key("charity-1-new")
        c1 = self.keys["charity-1"].public_key
        sig = fresh.sign(rotation_sign_bytes(self.genesis.chain_id, c1, fresh.public_key))
        chain.add_block(
            [
                work.tx(
                    "charity-1", "party.rotate_key", {"new_key": fresh.public_key, "new_sig": sig}
                )
            ]
        )
        self.rotated_at = chain.height
        # the party keeps its id (donations still name it); its txs are signed by the new key
        spend = {
            "disbursement": "after-rotation",
            "fund": "general",
            "amount": 100,
            "currency": "USD",
            "category": "program",
            "payee": "学校",
            "purpose": "books",
            "evidence": [],
        }
        chain.add_block([work.donation(), self.vtx(fresh, "funds.disburse", spend)])
        upgrade_at = chain.height + 4
        chain.add_block(
            [
                self.vtx(
                    0,
                    "upgrade.propose",
                    {"proposal": "v2", "height": upgrade_at, "version": 2, "note": ""},
                ),
                self.vtx(1, "proposal.approve", {"proposer": self.v[0], "proposal": "v2"}),
                self.vtx(2, "proposal.approve", {"proposer": self.v[0], "proposal": "v2"}),
            ]
        )
        self.upgrade_at = upgrade_at
        while chain.height < upgrade_at + 1:
            chain.add_block([work.donation()])


@pytest.fixture
def story(tmp_path: Path) -> Story:
    s = Story(tmp_path)
    s.run()
    return s


def test_verify_follows_every_change(story: Story) -> None:
    chain = story.chain
    assert len(chain.ledger.validators(story.adopted_add + 1)) == 4
    assert len(chain.ledger.validators(story.adopted_add + 2)) == 5
    assert story.v[3] not in chain.ledger.validators(story.adopted_remove + 2)
    before = chain.ledger.block_at(story.upgrade_at - 1)
    after = chain.ledger.block_at(story.upgrade_at)
    assert before is not None and "version" not in before["header"]
    assert after is not None and after["header"]["version"] == 2
    report = verify(chain)
    assert report.ok, report.violation
    assert report.blocks == chain.height
    assert report.tx_types["validator.propose"] == 2
    assert report.tx_types["party.rotate_key"] == 1


def test_certificate_by_a_set_that_never_took_effect(story: Story) -> None:
    """Height adopted+1 still belongs to the old set: a certificate that counts the fifth
    validator there (the change applied at once, without the delay) is refused."""
    chain = story.chain
    height = story.adopted_add + 1
    block = chain.ledger.block_at(height)
    assert block is not None
    keys = [*story.keys.validators, FIFTH]
    digest = block_hash(block["header"])
    votes = []
    for key in (keys[1], keys[2], FIFTH):  # 3 of the 5 the early set would have
        signed = NodeSigner(key).sign_vote(
            Vote(PRECOMMIT, chain.genesis.chain_id, height, 0, digest, key.public_key)
        )
        votes.append(CommitSig(signed.validator, signed.sig))
    forged = Certificate(height, 0, digest, tuple(votes)).to_map()
    items = []
    for b, cert in chain.blocks():
        h = b["header"]["height"]
        items.append(encode({"block": b, "commit": forged if h == height else cert}))
    report = verify_chain(chain.genesis, items)
    assert report.violation is not None
    assert report.violation.rule == "bad_certificate"
    assert report.violation.height == height
    assert "not_member" in report.violation.message


def test_removed_validators_signature_is_rejected(story: Story) -> None:
    """After validator-3 left, a certificate carrying its precommit is refused."""
    chain = story.chain
    height = story.adopted_remove + 2
    block = chain.ledger.block_at(height)
    assert block is not None
    members = chain.keys_at(height)
    assert story.keys.validators[3] not in members
    chain.known_keys[story.v[3]] = story.keys.validators[3]
    digest = block_hash(block["header"])
    votes = []
    for key in [*members[:3], story.keys.validators[3]]:
        signed = NodeSigner(key).sign_vote(
            Vote(PRECOMMIT, chain.genesis.chain_id, height, 0, digest, key.public_key)
        )
        votes.append(CommitSig(signed.validator, signed.sig))
    forged = Certificate(height, 0, digest, tuple(votes)).to_map()
    items = [
        encode({"block": b, "commit": forged if b["header"]["height"] == height else c})
        for b, c in chain.blocks()
    ]
    report = verify_chain(chain.genesis, items)
    assert report.violation is not None and report.violation.rule == "bad_certificate"
    assert report.violation.height == height


def test_header_without_version_after_upgrade(story: Story) -> None:
    block = story.chain.ledger.block_at(story.upgrade_at)
    assert block is not None
    header = {k: v for k, v in block["header"].items() if k != "version"}
    bad = {**block, "header": header}
    items = [
        encode(
            {"block": bad, "commit": story.chain.certify(bad)}
            if n == story.upgrade_at
            else {"block": b, "commit": c}
        )
        for n, (b, c) in enumerate(story.chain.blocks(), 1)
    ]
    report = verify_chain(story.genesis, items)
    assert report.violation is not None
    assert report.violation.height == story.upgrade_at
    assert report.violation.rule == "bad_version"


def test_old_key_after_rotation_is_a_named_violation(tmp_path: Path) -> None:
    """A block that carries a tx signed with charity-1's retired key fails verify."""
    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators, store=LevelStore(str(tmp_path / "c")))
    work = Workload(genesis, keys)
    chain.add_block(work.opening())
    early = work.tx(
        "charity-1",
        "campaign.open",
        {"campaign": "early", "title": "", "currency": "CNY", "goal": 0},
    )
    chain.add_block([early])  # signed with the old key before the rotation: stays valid
    fresh = seeded_key("charity-1-new")
    c1 = keys["charity-1"].public_key
    sig = fresh.sign(rotation_sign_bytes(genesis.chain_id, c1, fresh.public_key))
    chain.add_block(
        [work.tx("charity-1", "party.rotate_key", {"new_key": fresh.public_key, "new_sig": sig})]
    )
    late = work.tx(
        "charity-1",
        "campaign.open",
        {"campaign": "late", "title": "", "currency": "CNY", "goal": 0},
    )
    bad = chain.forge_block([late])
    pairs = [*chain.blocks(), (bad, chain.certify(bad))]
    report = verify_chain(genesis, [encode({"block": b, "commit": c}) for b, c in pairs])
    assert report.violation is not None
    assert (report.violation.height, report.violation.rule) == (4, "key_retired")


def test_node_that_does_not_run_the_version_stops_before_it(story: Story, tmp_path: Path) -> None:
    """An older node (max version 1) replays up to the upgrade height and refuses it with
    a clear message; the same store reopened by a node that runs version 2 continues."""
    genesis = story.genesis
    path = str(tmp_path / "follower")
    old = Ledger(LevelStore(path), genesis, max_version=1)
    blocks = list(story.chain.blocks())
    for block, cert in blocks[: story.upgrade_at - 1]:
        old.commit(check_certified_block(old, block, cert, NodeVerifier()), cert)
    with pytest.raises(UpgradeRequired) as info:
        check_certified_block(old, *blocks[story.upgrade_at - 1], NodeVerifier())
    assert "protocol version 2 at height" in str(info.value)
    with pytest.raises(UpgradeRequired):
        old.build_block([], time_ms=old.head.time + 1, proposer=story.v[0], max_txs=1, max_bytes=1)
    old.store.close()
    new = Ledger(LevelStore(path), genesis)
    for block, cert in blocks[story.upgrade_at - 1 :]:
        new.commit(check_certified_block(new, block, cert, NodeVerifier()), cert)
    assert new.head.height == story.chain.height
    new.store.close()


def test_views_show_sets_proposals_versions_and_key_history(story: Story) -> None:
    ledger = story.chain.ledger
    view = governance_view(ledger)
    assert [p["status"] for p in view["proposals"]] == ["adopted", "adopted", "adopted"]
    assert {p["kind"] for p in view["proposals"]} == {"validator", "upgrade"}
    history = view["validators"]["history"]
    assert [h["from_height"] for h in history] == [
        1,
        story.adopted_add + 2,
        story.adopted_remove + 2,
    ]
    names = [v["name"] for v in view["validators"]["validators"]]
    assert names == ["validator-0", "validator-1", "validator-2", "Audit Office 审计署"]
    assert view["protocol"] == {"version": 2, "max_supported": 2}
    assert [u["height"] for u in view["upgrades"]] == [story.upgrade_at]
    c1 = story.keys["charity-1"].public_key
    fresh = seeded_key("charity-1-new").public_key
    by_new_key = party_view(ledger, fresh)  # a rotated-to key finds its party
    assert by_new_key["pubkey"] == c1 and by_new_key["key"] == fresh
    assert [e["kind"] for e in by_new_key["history"]] == ["register", "rotate"]
    assert by_new_key["keys"][0]["until_height"] == story.rotated_at
    trace = trace_view(ledger, story.keys["platform-1"].public_key, "don-0-1")
    assert trace["parties"][c1.hex()]["key"] == fresh


class GovernanceSource:
    """A node's read views served from a ledger, with governance (what the API renders);
    `doctor` may rewrite the governance view, as a lying node would."""

    def __init__(self, ledger: Ledger, doctor: Any = None) -> None:
        self.ledger = ledger
        self.doctor = doctor

    def head(self) -> dict[str, Any]:
        return head_view(self.ledger)

    def block(self, height: int) -> dict[str, Any]:
        return block_view(self.ledger, height)

    def tx(self, tx_id: bytes) -> dict[str, Any]:
        return {"tx": committed_tx(self.ledger, tx_id), "receipt": receipt(self.ledger, tx_id)}

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        path = self.ledger.log().consistency_proof(first, second)
        return {"first": first, "second": second, "path": path}

    def evidence(self) -> dict[str, Any]:
        return {"committed": [], "seen": []}

    def governance(self) -> dict[str, Any]:
        view = governance_view(self.ledger)
        return view if self.doctor is None else self.doctor(view)


def test_light_client_follows_proven_set_changes(story: Story) -> None:
    ledger = story.chain.ledger
    sets = follow_sets(story.genesis, GovernanceSource(ledger))
    assert sets.starts == [1, story.adopted_add + 2, story.adopted_remove + 2]
    assert sets.sets == [h["validators"] for h in set_history(ledger.store)]
    report = audit_nodes(
        story.genesis, {"a": GovernanceSource(ledger), "b": GovernanceSource(ledger)}
    )
    assert report.exit_code() == 0, [n.error for n in report.nodes]
    head = report.nodes[0].head
    assert head is not None and head.height == story.chain.height


def _drop_an_approval(view: dict[str, Any]) -> dict[str, Any]:
    record = _named(view, "drop-3")  # quorum(5) = 4 approvals, all needed
    keep = [t for t in record["approval_txs"] if t != record["approval_txs"][1]]
    record["approval_txs"] = keep
    return view


def _swap_the_key(view: dict[str, Any]) -> dict[str, Any]:
    _named(view, "add-5")["body"]["validator"] = seeded_key("intruder").public_key
    return view


def _named(view: dict[str, Any], proposal: str) -> dict[str, Any]:
    record: dict[str, Any] = next(p for p in view["proposals"] if p["proposal"] == proposal)
    return record


def _hide_changes(view: dict[str, Any]) -> dict[str, Any]:
    view["proposals"] = []
    return view


@pytest.mark.parametrize(
    ("doctor", "says"),
    [
        (_drop_an_approval, "a quorum is 4"),
        (_swap_the_key, "does not approve"),
        (_hide_changes, "no proven governance change"),
    ],
)
def test_light_client_refuses_unproven_sets(story: Story, doctor: Any, says: str) -> None:
    report = audit_nodes(story.genesis, {"liar": GovernanceSource(story.chain.ledger, doctor)})
    node = report.nodes[0]
    assert node.head is None and node.error is not None and says in node.error, node.error
    assert not node.unreachable
