"""The rules of Algorithm 1 one at a time, on a single machine fed by hand."""

from __future__ import annotations

from dataclasses import replace

from almoner.consensus import (
    Machine,
    Outbound,
    Proposal,
    ProposalRequest,
    ValidityRequest,
    Vote,
    proposer_index,
    verify_certificate,
)
from almoner.node.chain.codec import decode, encode
from tests.consensus.sim_support import SimSigner, SimVerifier, validator_key

from .helpers import CHAIN, PARAMS, V1, V2, keys, machine, proposal, sent_votes, vote


def test_proposer_asks_the_app_then_proposes_prevotes_and_decides() -> None:
    m, verifier, ready = machine(4, me=1)  # proposer of (1, 0) is validators[1]
    assert ready.requests == [ProposalRequest(1, 0)]
    assert ready.persist is not None
    ready = m.propose_value(1, 0, V1)
    kinds = [o.message.kind for o in ready.send]
    assert kinds == ["proposal", "prevote"]  # lines 19 and 22
    assert ready.persist is not None  # persisted before the driver sends
    m.step(vote("prevote", 0, V1))
    ready = m.step(vote("prevote", 2, V1))  # 3 = quorum(4): line 36
    assert [v.block_hash for v in sent_votes(ready, "precommit")] == [V1]
    assert (m.locked_round, m.locked_value) == (0, V1)
    m.step(vote("precommit", 0, V1))
    ready = m.step(vote("precommit", 3, V1))  # line 49
    [decision] = ready.decided
    assert (decision.height, decision.round, decision.block_hash) == (1, 0, V1)
    assert len(decision.certificate.votes) == 3
    verify_certificate(decision.certificate, CHAIN, keys(4), verifier, height=1, block_hash=V1)
    assert decision.proposal.block_hash == V1


def test_validity_is_asked_once_and_an_invalid_value_gets_a_nil_prevote() -> None:
    m, _, _ = machine(4, me=0)
    ready = m.step(proposal(1, V1))
    assert ready.requests == [ValidityRequest(1, V1)]
    assert not ready.send  # waits for the app's verdict
    ready = m.on_validity(1, V1, False)
    assert [v.block_hash for v in sent_votes(ready, "prevote")] == [None]  # line 26


def test_timeouts_fire_on_logical_time_and_grow_with_the_round() -> None:
    m, _, _ = machine(4, me=0)
    assert not m.tick(PARAMS.timeout_propose_ms - 1).send
    ready = m.tick(1)  # line 57
    assert [v.block_hash for v in sent_votes(ready, "prevote")] == [None]
    m.step(vote("prevote", 1, None))
    ready = m.step(vote("prevote", 2, None))
    assert [v.block_hash for v in sent_votes(ready, "precommit")] == [None]  # line 44
    for who in (1, 2):
        m.step(vote("precommit", who, None))  # line 47 arms timeoutPrecommit
    m.tick(PARAMS.timeout_precommit(0))  # line 65
    assert m.round == 1
    before = m.now
    m.tick(PARAMS.timeout_propose(1) - 1)
    assert m.phase == "propose"
    m.tick(1)
    assert m.phase == "prevote" and m.now - before == PARAMS.timeout_propose(1)


def _lock_on_v1_then_go_to_round_1(m: Machine) -> None:
    m.step(proposal(1, V1))
    m.on_validity(1, V1, True)
    for who in (1, 2):
        m.step(vote("prevote", who, V1))
    assert m.locked_value == V1
    for who in (1, 2):
        m.step(vote("precommit", who, None))
    m.tick(PARAMS.timeout_precommit(0))
    assert m.round == 1


def test_a_locked_validator_prevotes_nil_for_another_value_line_22() -> None:
    m, _, _ = machine(4, me=0)
    _lock_on_v1_then_go_to_round_1(m)
    m.step(proposal(2, V2, round_=1))
    ready = m.on_validity(1, V2, True)
    assert [v.block_hash for v in sent_votes(ready, "prevote")] == [None]


def test_the_broken_lock_flag_really_breaks_the_lock() -> None:
    m, _, _ = machine(4, me=0, params=replace(PARAMS, broken_lock_rule=True))
    _lock_on_v1_then_go_to_round_1(m)
    m.step(proposal(2, V2, round_=1))
    ready = m.on_validity(1, V2, True)
    assert [v.block_hash for v in sent_votes(ready, "prevote")] == [V2]


def test_a_proof_of_lock_newer_than_the_lock_unlocks_line_28() -> None:
    m, _, _ = machine(4, me=0)
    _lock_on_v1_then_go_to_round_1(m)  # locked on V1 at round 0
    for who in (1, 2, 3):
        m.step(vote("prevote", who, V2, round_=1))  # a POL for V2 at round 1
    for who in (1, 2):
        m.step(vote("precommit", who, None, round_=2))  # line 55 takes us to round 2
    assert m.round == 2 and m.locked_round == 0
    m.step(proposal(3, V2, round_=2, valid_round=1))  # proposer of (1, 2) is validators[3]
    ready = m.on_validity(1, V2, True)
    assert [v.block_hash for v in sent_votes(ready, "prevote")] == [V2]


def test_f_plus_1_messages_of_a_higher_round_skip_to_it_line_55() -> None:
    m, _, _ = machine(4, me=0)  # f = 1: two senders needed
    m.step(vote("prevote", 1, None, round_=5))
    assert m.round == 0
    m.step(vote("precommit", 2, None, round_=5))
    assert m.round == 5


def test_conflicting_votes_are_evidence_and_each_signature_is_verified_once() -> None:
    m, verifier, _ = machine(4, me=0)
    first = vote("prevote", 2, V1)
    for _ in range(3):
        m.step(first)
    assert verifier.calls == 1
    second = vote("prevote", 2, V2)
    ready = m.step(second)
    [evidence] = ready.evidence
    assert (evidence.first, evidence.second, evidence.culprit) == (first, second, first.validator)
    assert not m.step(vote("prevote", 2, None)).evidence  # reported once per slot


def test_bad_input_is_dropped_and_counted_never_raised() -> None:
    m, _, _ = machine(4, me=0)
    good = vote("prevote", 1, V1)
    outsider = SimSigner(validator_key(99))
    missing = good.to_map()
    del missing["round"]
    bad_types = {**good.to_map(), "round": "one"}
    junk: list[object] = [
        replace(good, chain="other"),
        replace(good, sig=bytes(64)),
        outsider.sign_vote(replace(good, validator=outsider.public_key, sig=b"")),
        proposal(2, V1),  # not the proposer of (1, 0)
        missing,
        bad_types,
        {**good.to_map(), "extra": 1},
        replace(good, block_hash=b"short"),
        replace(good, height=True),
        42,
        None,
        [1, 2],
        vote("prevote", 1, V1, round_=10**6),
    ]
    for item in junk:
        ready = m.step(item)  # type: ignore[arg-type]
        assert ready.dropped and not ready.send
    assert m.stats["malformed"] >= 7
    assert {"wrong_chain", "bad_signature", "not_member", "not_proposer", "too_far_ahead"} <= set(
        m.stats
    )
    assert m.step(good.to_map()).dropped == []  # the protocol map form is accepted


def test_next_height_messages_wait_for_start_height_and_the_set_is_per_height() -> None:
    m, verifier, _ = machine(4, me=0)
    early = vote("prevote", 3, V2, height=2)
    m.step(early)
    assert verifier.calls == 0  # buffered, not yet verified
    m.step(proposal(1, V1))
    m.on_validity(1, V1, True)
    for who in (1, 2):
        m.step(vote("prevote", who, V1))
    for who in (1, 2):
        ready = m.step(vote("precommit", who, V1))
    assert ready.decided
    calls = verifier.calls
    new_set = [*keys(4)[1:], validator_key(7)]
    m.start_height(2, new_set)  # validator 0 is no longer a member: it still follows
    assert verifier.calls == calls + 1
    assert m.q == 3 and m._tally.count(0, "prevote", V2) == 1
    assert "not_member" in str(m.step(vote("prevote", 0, V1, height=2)).dropped)


def test_a_single_validator_decides_alone() -> None:
    m, _, ready = machine(1, me=0)
    assert ready.requests == [ProposalRequest(1, 0)]
    ready = m.propose_value(1, 0, V1)
    assert [d.block_hash for d in ready.decided] == [V1]


def _restore(record: dict[str, object], me: int = 0) -> Machine:
    stored = decode(encode(record))  # through the node's canonical codec, as on disk
    return Machine.restore(
        stored, CHAIN, SimSigner(validator_key(me)), SimVerifier(), keys(4), PARAMS
    )


def test_restart_resends_what_was_signed_and_never_signs_a_conflict() -> None:
    m, _, _ = machine(4, me=0)
    m.step(proposal(1, V1))
    ready = m.on_validity(1, V1, True)
    [prevote] = sent_votes(ready, "prevote")
    assert ready.persist is not None
    restored = _restore(ready.persist)
    assert (restored.height, restored.round, restored.phase) == (1, 0, "prevote")
    assert [o.message for o in restored.start().send] == [prevote]
    # Even a record that claims the step was still `propose` cannot make it sign nil.
    rewound = _restore({**ready.persist, "step": "propose"})
    rewound.start()
    again = rewound.tick(PARAMS.timeout_propose_ms)  # line 57 would prevote nil
    assert sent_votes(again, "prevote") == [prevote]


def test_a_restarted_proposer_re_sends_its_proposal_and_ignores_a_new_value() -> None:
    m, _, _ = machine(4, me=1)
    ready = m.propose_value(1, 0, V1)
    signed = [o.message for o in ready.send if isinstance(o.message, Proposal)]
    assert ready.persist is not None
    restored = _restore(ready.persist, me=1)
    ready = restored.start()
    assert [o.message for o in ready.send if isinstance(o.message, Proposal)] == signed
    assert not ready.requests
    assert not restored.propose_value(1, 0, V2).send


def test_the_wal_record_is_plain_data_with_the_lock() -> None:
    m, _, _ = machine(4, me=0)
    _lock_on_v1_then_go_to_round_1(m)
    record = m.persisted().to_record()
    assert decode(encode(record)) == record
    assert (record["locked_round"], record["locked_value"]) == (0, V1)
    assert {"height", "round", "step", "own", "valid_value"} <= set(record)


def test_rebroadcast_resends_own_messages_and_relays_the_proof_of_lock() -> None:
    m, _, _ = machine(4, me=0)
    m.step(proposal(1, V1))
    m.on_validity(1, V1, True)
    for who in (1, 2):
        m.step(vote("prevote", who, V1))
    ready = m.tick(PARAMS.rebroadcast_ms)
    sent = [o.message for o in ready.send]
    assert all(isinstance(o, Outbound) and o.to is None for o in ready.send)
    relayed_prevotes = {v.validator for v in sent if isinstance(v, Vote) and v.kind == "prevote"}
    assert relayed_prevotes == set(keys(4)[:3])
    assert any(isinstance(p, Proposal) for p in sent)


def test_a_proof_of_lock_completed_after_its_round_still_sets_the_valid_value() -> None:
    """The extension of lines 42-43 to earlier rounds (see `_line_42_past_round`)."""
    m, _, _ = machine(4, me=0)
    m.step(proposal(1, V1))
    m.on_validity(1, V1, True)  # prevote V1 in round 0, but no proof of lock yet
    for who in (2, 3):
        m.step(vote("prevote", who, None, round_=1))  # line 55: on to round 1
    assert m.round == 1 and m.valid_round == -1
    for who in (1, 2):
        m.step(vote("prevote", who, V1))  # round 0's prevotes arrive late
    assert (m.valid_round, m.valid_value) == (0, V1)
    assert m.locked_round == -1  # no lock is taken outside the current round
    m.step(vote("prevote", 2, None, round_=3))
    ready = m.step(vote("prevote", 3, None, round_=3))  # round 3: validators[0] proposes
    [p] = [o.message for o in ready.send if isinstance(o.message, Proposal)]
    assert (p.round, p.block_hash, p.valid_round) == (3, V1, 0)  # lines 15-16, not getValue
    assert not ready.requests


def test_a_validator_heights_behind_decides_them_from_its_buffer() -> None:
    """Messages for every height within `heights_ahead` are held, not dropped: a validator
    that fell behind decides those heights from what it holds, with no catch-up and no
    round lost waiting for it. Beyond the window they are still dropped."""
    ahead = PARAMS.heights_ahead
    assert ahead >= 2
    m, _, _ = machine(4, me=0)
    value = {h: bytes([h]) * 32 for h in range(1, ahead + 3)}

    def peers_messages(height: int) -> list[Proposal | Vote]:
        """What validators 1 to 3 sent for `height` while validator 0 was still at 1."""
        who = proposer_index(height, 0, 4)
        sent: list[Proposal | Vote] = [] if who == 0 else [proposal(who, value[height], height)]
        kinds = ("prevote", "precommit")
        return sent + [vote(k, v, value[height], height) for k in kinds for v in (1, 2, 3)]

    for height in range(2, ahead + 3):
        dropped = [bool(m.step(msg).dropped) for msg in peers_messages(height)]
        assert dropped == [height > 1 + ahead] * len(dropped), height
    decided: list[bytes] = []
    for height in range(1, ahead + 2):
        if height == 1:
            readies = [m.step(msg) for msg in peers_messages(1)]
        else:
            readies = [m.start_height(height, keys(4))]
        if proposer_index(height, 0, 4) == 0:
            readies.append(m.propose_value(height, 0, value[height]))
        readies.append(m.on_validity(height, value[height], True))
        decided += [d.block_hash for ready in readies for d in ready.decided]
        assert decided[-1] == value[height]
    assert decided == [value[h] for h in range(1, ahead + 2)]
    m.start_height(ahead + 2, keys(4))  # its messages came too early: dropped
    assert not m.on_validity(ahead + 2, value[ahead + 2], True).decided
