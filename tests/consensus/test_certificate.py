"""Commit certificates and the node's Ed25519 implementation of the crypto interface."""

from __future__ import annotations

from dataclasses import replace

import pytest

from almoner.consensus import (
    Certificate,
    CertificateError,
    CommitSig,
    MessageError,
    Proposal,
    Vote,
    max_faulty,
    parse_message,
    proposer_index,
    quorum,
    verify_certificate,
)
from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.signing import proposal_sign_bytes, vote_sign_bytes

CHAIN = "almoner-test"
KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
MEMBERS = [k.public_key for k in KEYS]
BLOCK = b"\xab" * 32


def _precommit(i: int, height: int = 5, round_: int = 1, block: bytes | None = BLOCK) -> Vote:
    return NodeSigner(KEYS[i]).sign_vote(
        Vote("precommit", CHAIN, height, round_, block, MEMBERS[i])
    )


def _cert(voters: list[int]) -> Certificate:
    votes = tuple(CommitSig(v.validator, v.sig) for v in (_precommit(i) for i in voters))
    return Certificate(height=5, round=1, block_hash=BLOCK, votes=votes)


def test_quorum_arithmetic_and_proposer_rotation() -> None:
    assert [quorum(n) for n in (1, 3, 4, 7, 10, 31)] == [1, 3, 3, 5, 7, 21]
    assert [max_faulty(n) for n in (1, 3, 4, 7, 10, 31)] == [0, 0, 1, 2, 3, 10]
    assert proposer_index(1, 0, 4) == 1 and proposer_index(3, 2, 4) == 1


def test_messages_map_to_exactly_the_protocol_maps() -> None:
    vote = _precommit(0)
    assert set(vote.to_map()) == {
        "kind",
        "chain",
        "height",
        "round",
        "block_hash",
        "validator",
        "sig",
    }
    assert parse_message(vote.to_map()) == vote
    prop = Proposal(CHAIN, 5, 1, -1, BLOCK, MEMBERS[1], bytes(64))
    assert prop.to_map()["kind"] == "proposal" and parse_message(prop.to_map()) == prop
    with pytest.raises(MessageError):
        parse_message({**prop.to_map(), "valid_round": 1})  # valid_round < round


def test_node_signatures_use_the_protocol_sign_bytes() -> None:
    vote = _precommit(2)
    assert KeyPair.from_seed(KEYS[2].seed).sign(vote_sign_bytes(vote.to_map())) == vote.sig
    verifier = NodeVerifier()
    assert verifier.verify_vote(vote)
    assert not verifier.verify_vote(replace(vote, kind="prevote"))  # kind is signed
    assert not verifier.verify_vote(replace(vote, chain="other"))
    prop = NodeSigner(KEYS[1]).sign_proposal(Proposal(CHAIN, 5, 1, 0, BLOCK, MEMBERS[1]))
    assert KEYS[1].sign(proposal_sign_bytes(prop.to_map())) == prop.sig
    assert verifier.verify_proposal(prop)
    assert not verifier.verify_proposal(replace(prop, valid_round=-1))


def test_a_quorum_of_member_precommits_is_a_valid_certificate() -> None:
    cert = _cert([0, 2, 3])
    verify_certificate(cert, CHAIN, MEMBERS, NodeVerifier(), height=5, block_hash=BLOCK)
    assert Certificate.from_map(cert.to_map()) == cert
    assert cert.to_map()["votes"][0] == {"validator": MEMBERS[0], "sig": cert.votes[0].sig}


@pytest.mark.parametrize(
    ("cert", "reason"),
    [
        (_cert([0, 2]), "no_quorum"),
        (_cert([0, 2, 2]), "duplicate_validator"),
        (replace(_cert([0, 1, 2]), round=2), "bad_signature"),
        (replace(_cert([0, 1, 2]), block_hash=b"\xcd" * 32), "bad_signature"),
        (
            replace(
                _cert([0, 1]), votes=(*_cert([0, 1]).votes, CommitSig(b"\x09" * 32, bytes(64)))
            ),
            "not_member",
        ),
        (
            replace(
                _cert([0, 1, 2]), votes=(*_cert([0, 1]).votes, CommitSig(MEMBERS[3], bytes(64)))
            ),
            "bad_signature",
        ),
        (replace(_cert([0, 1, 2]), height=0), "malformed"),
    ],
)
def test_bad_certificates_are_rejected_with_a_reason(cert: Certificate, reason: str) -> None:
    with pytest.raises(CertificateError) as info:
        verify_certificate(cert, CHAIN, MEMBERS, NodeVerifier())
    assert info.value.reason == reason


def test_a_prevote_quorum_is_not_a_commit() -> None:
    prevotes = [
        NodeSigner(KEYS[i]).sign_vote(Vote("prevote", CHAIN, 5, 1, BLOCK, MEMBERS[i]))
        for i in range(3)
    ]
    cert = Certificate(5, 1, BLOCK, tuple(CommitSig(v.validator, v.sig) for v in prevotes))
    with pytest.raises(CertificateError, match="bad_signature"):
        verify_certificate(cert, CHAIN, MEMBERS, NodeVerifier())


def test_pinning_height_and_block() -> None:
    cert = _cert([0, 1, 2])
    with pytest.raises(CertificateError, match="wrong_height"):
        verify_certificate(cert, CHAIN, MEMBERS, NodeVerifier(), height=6)
    with pytest.raises(CertificateError, match="wrong_block"):
        verify_certificate(cert, CHAIN, MEMBERS, NodeVerifier(), block_hash=b"\x00" * 32)
    with pytest.raises(CertificateError, match="malformed"):
        Certificate.from_map({**cert.to_map(), "extra": 1})
