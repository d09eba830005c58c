"""audit-nodes logic over real ledgers (LocalChain, real keys, real certificates): agreement,
lagging, forks naming the double signers, lying consistency proofs, bad heads, unreachable."""

from __future__ import annotations

from typing import Any

from almoner.node.audit.audit_nodes import NodeSource, audit_nodes
from almoner.node.audit.client import ClientError
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.views import block_view, committed_evidence, head_view
from tests.localchain import LocalChain
from tests.verify.story import Story, story


class LedgerSource:
    """A node's read views served straight from a ledger (what the HTTP API renders)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def head(self) -> dict[str, Any]:
        return head_view(self.ledger)

    def block(self, height: int) -> dict[str, Any]:
        return block_view(self.ledger, height)

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        path = self.ledger.log().consistency_proof(first, second)
        return {"first": first, "second": second, "path": path}

    def evidence(self) -> dict[str, Any]:
        return {"committed": committed_evidence(self.ledger), "seen": []}


class LyingProofs(LedgerSource):
    def consistency(self, first: int, second: int) -> dict[str, Any]:
        proof = super().consistency(first, second)
        proof["path"] = [bytes(32) for _ in proof["path"]] or [bytes(32)]
        return proof


class Down(LedgerSource):
    def head(self) -> dict[str, Any]:
        raise ClientError("cannot reach http://127.0.0.1:9: connection refused")


def fork(s: Story, extra: int = 0) -> tuple[LocalChain, LocalChain]:
    """Two chains sharing blocks 1-3 and each with its own quorum-certified block 4."""
    honest = s.chain_upto(4)
    other = s.chain_upto(3)
    w = s.workload()
    other.add_block([w.donation("platform-1", "charity-2", 123)], s.times[3], signers=[1, 2, 3])
    for _ in range(extra):
        other.add_block([w.donation("platform-2", "charity-1", 321)])
    return honest, other


def test_agreeing_nodes_with_one_lagging() -> None:
    s = story()
    sources: dict[str, NodeSource] = {
        "a": LedgerSource(s.chain_upto(6).ledger),
        "b": LedgerSource(s.chain_upto(6).ledger),
        "c": LedgerSource(s.chain_upto(4).ledger),
    }
    report = audit_nodes(s.genesis, sources)
    assert report.agree and report.exit_code() == 0
    assert report.lagging == ["c"]
    assert report.checked_pairs == 3
    assert not report.forks and not report.inconsistencies


def test_fork_at_one_height_names_the_validators_who_signed_both() -> None:
    s = story()
    honest, other = fork(s)
    report = audit_nodes(
        s.genesis, {"a": LedgerSource(honest.ledger), "b": LedgerSource(other.ledger)}
    )
    assert report.exit_code() == 1
    assert len(report.forks) == 1
    f = report.forks[0]
    assert f["height"] == 4
    # Certificates by validators 0,1,2 and 1,2,3: validators 1 and 2 signed both blocks.
    both = [s.keys.validators[i].public_key for i in (1, 2)]
    assert f["double_signers"] == both
    assert f["double_signer_names"] == ["validator-1", "validator-2"]


def test_fork_below_the_heads_is_found_from_the_taller_node() -> None:
    s = story()
    honest, other = fork(s, extra=2)
    report = audit_nodes(
        s.genesis, {"a": LedgerSource(honest.ledger), "b": LedgerSource(other.ledger)}
    )
    assert report.exit_code() == 1
    assert [f["height"] for f in report.forks] == [4]


def test_consistency_proof_that_fails_is_an_inconsistency() -> None:
    s = story()
    sources: dict[str, NodeSource] = {
        "short": LedgerSource(s.chain_upto(4).ledger),
        "liar": LyingProofs(s.chain_upto(6).ledger),
    }
    report = audit_nodes(s.genesis, sources)
    assert report.exit_code() == 1
    assert report.inconsistencies and "consistency proof fails" in report.inconsistencies[0]


def test_head_without_a_quorum_is_a_bad_head() -> None:
    s = story()
    chain = s.chain_upto(5)
    chain.add_block(s.block_txs[5], s.times[5], signers=[0, 1])
    report = audit_nodes(s.genesis, {"weak": LedgerSource(chain.ledger)})
    assert report.exit_code() == 1
    assert report.bad_heads == ["weak"]


def test_unreachable_node_exits_2_when_the_rest_agree() -> None:
    s = story()
    sources: dict[str, NodeSource] = {
        "a": LedgerSource(s.chain_upto(6).ledger),
        "down": Down(s.chain_upto(6).ledger),
    }
    report = audit_nodes(s.genesis, sources)
    assert report.agree and report.exit_code() == 2
    assert report.unreachable == ["down"]
