"""Governance txs through the full contract pipeline: every new error code (state byte for
byte unchanged on refusal), the check order, and the effects (docs/governance.md)."""

from __future__ import annotations

import pytest

from almoner.node.chain.contract.governance import get_proposal, list_proposals
from almoner.node.chain.contract.keys import list_recoveries
from almoner.node.chain.party_keys import current_key, history, key_history
from almoner.node.chain.state import get_party, validators_at
from almoner.node.chain.store import LevelStore
from almoner.node.chain.validator_sets import (
    PROPOSAL_TTL,
    SET_CHANGE_DELAY,
    set_history,
    validator_info,
    version_at,
)
from tests import contract_fixtures as fx
from tests.contract_fixtures import (
    CHARITY_1,
    CHARITY_2,
    NEWCOMER,
    OUTSIDER,
    PLATFORM_1,
    REGULATOR,
    VALIDATORS,
    Ledger,
    key,
)

C1 = CHARITY_1.public_key
V = [v.public_key for v in VALIDATORS]
NEW = NEWCOMER.public_key


@pytest.fixture
def led(tmp_path: object) -> Ledger:
    """On a real LevelDB store, so the reverse scans of VALIDATORS/UPGRADE run on it."""
    return Ledger(store=LevelStore(str(tmp_path)))


def adopt_add(led: Ledger, pid: str = "p1", validator: bytes = NEW) -> None:
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change(pid, validator))
    led.submit(VALIDATORS[1], "proposal.approve", fx.approve(V[0], pid))
    led.submit(VALIDATORS[2], "proposal.approve", fx.approve(V[0], pid))


# -- validator set changes ----------------------------------------------------------------


def test_add_takes_effect_two_heights_after_quorum(led: Ledger) -> None:
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW))
    led.submit(VALIDATORS[1], "proposal.approve", fx.approve(V[0], "p1"))
    record = get_proposal(led.state, V[0], "p1")
    assert record is not None and record["adopted_height"] is None  # 2 of 4: no quorum yet
    led.submit(VALIDATORS[2], "proposal.approve", fx.approve(V[0], "p1"))  # 3 = quorum(4)
    record = get_proposal(led.state, V[0], "p1")
    assert record is not None
    assert record["adopted_height"] == led.height
    assert record["effective_height"] == led.height + SET_CHANGE_DELAY
    assert validators_at(led.state, led.height) == V
    assert validators_at(led.state, led.height + 1) == V  # never within a height in progress
    assert validators_at(led.state, led.height + 2) == [*V, NEW]
    info = validator_info(led.state, NEW)
    assert info is not None and info["name"] == "新验证人" and info["org_id"] == "VAL-5"
    assert [h["from_height"] for h in set_history(led.state)] == [1, led.height + 2]


def test_remove_and_replace(led: Ledger) -> None:
    adopt_add(led)
    for _ in range(SET_CHANGE_DELAY):
        led.commit()
    five = [*V, NEW]
    assert validators_at(led.state, led.height) == five
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p2", V[3], action="remove"))
    for i in (1, 2):
        led.submit(VALIDATORS[i], "proposal.approve", fx.approve(V[0], "p2"))
    # quorum(5) = 4: three approvals are not enough any more.
    record = get_proposal(led.state, V[0], "p2")
    assert record is not None and record["adopted_height"] is None
    led.submit(NEWCOMER, "proposal.approve", fx.approve(V[0], "p2"))
    assert validators_at(led.state, led.height + 2) == [V[0], V[1], V[2], NEW]
    removed = validator_info(led.state, V[3])
    assert removed is not None and removed["removed_height"] == led.height + 2
    led.commit()
    led.commit()
    other = key("validator-9").public_key
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p3", other, "replace", V[1]))
    for signer in (VALIDATORS[2], NEWCOMER):
        led.submit(signer, "proposal.approve", fx.approve(V[0], "p3"))
    assert validators_at(led.state, led.height + 2) == [V[0], other, V[2], NEW]


def test_set_never_drops_below_four(led: Ledger) -> None:
    err = led.reject(
        VALIDATORS[0],
        "validator.propose",
        fx.set_change("p1", V[3], "remove"),
        "invalid_set_change",
    )
    assert err.details["field"] == "body.validator"


def test_invalid_set_changes(led: Ledger) -> None:
    led.reject(VALIDATORS[0], "validator.propose", fx.set_change("p1", V[2]), "invalid_set_change")
    led.reject(
        VALIDATORS[0],
        "validator.propose",
        fx.set_change("p1", NEW, "replace", OUTSIDER.public_key),
        "invalid_set_change",
    )
    adopt_add(led)  # scheduled, not yet in force: a second add of the same key is refused
    led.reject(VALIDATORS[1], "validator.propose", fx.set_change("p9", NEW), "invalid_set_change")


def test_replaces_only_with_replace(led: Ledger) -> None:
    err = led.reject(
        VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW, "add", V[1]), "invalid_field"
    )
    assert err.details["field"] == "body.replaces"
    led.reject(
        VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW, "replace"), "invalid_field"
    )


def test_only_validators_in_force_govern(led: Ledger) -> None:
    led.reject(OUTSIDER, "validator.propose", fx.set_change("p1", NEW), "unknown_signer")
    led.reject(REGULATOR, "validator.propose", fx.set_change("p1", NEW), "role_not_allowed")
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW))
    led.reject(NEWCOMER, "proposal.approve", fx.approve(V[0], "p1"), "unknown_signer")


def test_approval_errors_in_order(led: Ledger) -> None:
    led.reject(VALIDATORS[1], "proposal.approve", fx.approve(V[0], "nope"), "unknown_proposal")
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW))
    led.reject(VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW), "duplicate_id")
    led.reject(VALIDATORS[0], "proposal.approve", fx.approve(V[0], "p1"), "duplicate_id")
    for i in (1, 2):
        led.submit(VALIDATORS[i], "proposal.approve", fx.approve(V[0], "p1"))
    led.reject(VALIDATORS[3], "proposal.approve", fx.approve(V[0], "p1"), "proposal_closed")


def test_proposals_expire(led: Ledger) -> None:
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("p1", NEW))
    led.commit()
    led.height = 1 + PROPOSAL_TTL  # the contract knows only the height it is given
    led.submit(VALIDATORS[1], "proposal.approve", fx.approve(V[0], "p1"))  # last height
    led.commit()
    err = led.reject(VALIDATORS[2], "proposal.approve", fx.approve(V[0], "p1"), "proposal_expired")
    assert err.details["expires_height"] == 1 + PROPOSAL_TTL


def test_change_rechecked_on_adoption(led: Ledger) -> None:
    """Two proposals to add the same key: the second cannot be adopted after the first."""
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("a", NEW))
    led.submit(VALIDATORS[1], "validator.propose", fx.set_change("b", NEW))
    for i in (1, 2):
        led.submit(VALIDATORS[i], "proposal.approve", fx.approve(V[0], "a"))
    led.submit(VALIDATORS[0], "proposal.approve", fx.approve(V[1], "b"))
    led.reject(VALIDATORS[2], "proposal.approve", fx.approve(V[1], "b"), "invalid_set_change")
    assert len(list_proposals(led.state)) == 2


def test_removed_validator_loses_its_vote(led: Ledger) -> None:
    adopt_add(led)
    led.commit()
    led.commit()
    led.submit(VALIDATORS[0], "validator.propose", fx.set_change("r", V[3], "remove"))
    for signer in (VALIDATORS[1], VALIDATORS[2], NEWCOMER):
        led.submit(signer, "proposal.approve", fx.approve(V[0], "r"))
    led.commit()
    led.commit()
    assert V[3] not in validators_at(led.state, led.height)
    led.reject(
        VALIDATORS[3],
        "validator.propose",
        fx.set_change("x", OUTSIDER.public_key),
        "unknown_signer",
    )


# -- upgrades -----------------------------------------------------------------------------


def test_upgrade_adopted_for_its_height(led: Ledger) -> None:
    led.submit(VALIDATORS[0], "upgrade.propose", fx.upgrade("u1", 10))
    for i in (1, 2):
        led.submit(VALIDATORS[i], "proposal.approve", fx.approve(V[0], "u1"))
    assert version_at(led.state, 9) == 1
    assert version_at(led.state, 10) == 2
    assert version_at(led.state, 1000) == 2


def test_invalid_upgrades(led: Ledger) -> None:
    too_soon = led.height + 1
    err = led.reject(
        VALIDATORS[0], "upgrade.propose", fx.upgrade("u1", too_soon), "invalid_upgrade"
    )
    assert err.details["field"] == "body.height"
    led.submit(VALIDATORS[0], "upgrade.propose", fx.upgrade("u1", 10))
    for i in (1, 2):
        led.submit(VALIDATORS[i], "proposal.approve", fx.approve(V[0], "u1"))
    err = led.reject(VALIDATORS[0], "upgrade.propose", fx.upgrade("u2", 20), "invalid_upgrade")
    assert err.details["field"] == "body.version"  # version 2 is already scheduled
    err = led.reject(VALIDATORS[0], "upgrade.propose", fx.upgrade("u2", 9, 3), "invalid_upgrade")
    assert err.details["field"] == "body.height"  # not after the scheduled upgrade


# -- party keys ---------------------------------------------------------------------------


def test_rotation_retires_the_old_key(led: Ledger) -> None:
    fresh = key("charity-1-2027")
    led.submit(CHARITY_1, "party.rotate_key", fx.rotate(fresh, C1))
    assert current_key(led.state, C1) == fresh.public_key
    err = led.reject(CHARITY_1, "campaign.open", fx.campaign("late"), "key_retired")
    assert err.details["until_height"] == led.height
    led.submit(fresh, "campaign.open", fx.campaign("flood"))  # signs for the same party
    # the party keeps its id: donations to it and its funds are named by the original key
    led.submit(PLATFORM_1, "donation.record", fx.donation("d1", C1, 100, campaign="flood"))
    led.submit(fresh, "funds.disburse", fx.disburse("x1", 100, fund="flood"))
    assert [k["key"] for k in key_history(led.state, C1)] == [C1, fresh.public_key]
    kinds = [e["kind"] for e in history(led.state, C1)]
    assert kinds == ["register", "rotate"]


def test_rotation_needs_proof_of_possession(led: Ledger) -> None:
    fresh = key("charity-1-2027")
    body = {**fx.rotate(fresh, C1), "new_sig": fx.pop(fresh, CHARITY_2.public_key)}
    err = led.reject(CHARITY_1, "party.rotate_key", body, "bad_signature")
    assert err.details["field"] == "body.new_sig"
    body = {**fx.rotate(fresh, C1), "new_sig": fx.pop(fresh, C1, chain="other-chain")}
    led.reject(CHARITY_1, "party.rotate_key", body, "bad_signature")


def test_keys_are_never_reused(led: Ledger) -> None:
    led.reject(CHARITY_1, "party.rotate_key", fx.rotate(CHARITY_2, C1), "key_in_use")
    fresh = key("fresh")
    led.submit(CHARITY_1, "party.rotate_key", fx.rotate(fresh, C1))
    # back to the retired key: refused, and nobody may register it either
    led.reject(fresh, "party.rotate_key", fx.rotate(CHARITY_1, C1), "key_in_use")
    led.reject(REGULATOR, "party.register", fx.register(fresh.public_key), "duplicate_id")


def test_emergency_recovery_by_regulator_quorum(led: Ledger) -> None:
    regs = [key(f"regulator-{i}") for i in (2, 3)]
    for r in regs:
        led.submit(REGULATOR, "party.register", fx.register(r.public_key, role="regulator"))
    fresh = key("charity-1-recovered")
    led.submit(REGULATOR, "party.recover", fx.recover("lost-1", C1, fresh))
    led.reject(REGULATOR, "party.recover", fx.recover("lost-1", C1, fresh), "duplicate_id")
    led.submit(regs[0], "recovery.approve", fx.approve_recovery(REGULATOR.public_key, "lost-1"))
    assert current_key(led.state, C1) == C1  # 2 of 3 regulators: quorum(3) is 3
    led.submit(regs[1], "recovery.approve", fx.approve_recovery(REGULATOR.public_key, "lost-1"))
    assert current_key(led.state, C1) == fresh.public_key
    led.reject(CHARITY_1, "campaign.open", fx.campaign("x"), "key_retired")
    event = history(led.state, C1)[-1]
    assert event["kind"] == "recover" and event["reason"] == "key leaked"
    assert event["by"] == REGULATOR.public_key
    led.reject(
        regs[0],
        "recovery.approve",
        fx.approve_recovery(REGULATOR.public_key, "lost-1"),
        "proposal_closed",
    )
    assert list_recoveries(led.state)[0]["adopted_height"] == led.height


def test_recovery_errors(led: Ledger) -> None:
    fresh = key("fresh")
    led.reject(
        REGULATOR, "party.recover", fx.recover("r", OUTSIDER.public_key, fresh), "unknown_party"
    )
    led.reject(REGULATOR, "party.recover", fx.recover("r", C1, CHARITY_2), "key_in_use")
    led.reject(CHARITY_2, "party.recover", fx.recover("r", C1, fresh), "role_not_allowed")
    led.reject(
        REGULATOR,
        "recovery.approve",
        fx.approve_recovery(REGULATOR.public_key, "r"),
        "unknown_proposal",
    )


def test_single_regulator_recovers_alone(led: Ledger) -> None:
    """quorum(1) = 1: with one regulator, its proposal adopts itself."""
    fresh = key("fresh")
    led.submit(REGULATOR, "party.recover", fx.recover("r", C1, fresh))
    assert current_key(led.state, C1) == fresh.public_key


def test_suspend_and_reinstate_keep_history(led: Ledger) -> None:
    led.reject(REGULATOR, "party.reinstate", fx.reinstate(C1), "duplicate_id")
    led.reject(REGULATOR, "party.reinstate", fx.reinstate(OUTSIDER.public_key), "unknown_party")
    led.submit(REGULATOR, "party.suspend", fx.suspend(C1, "audit pending"))
    led.reject(CHARITY_1, "campaign.open", fx.campaign("x"), "signer_suspended")
    led.commit()
    led.submit(REGULATOR, "party.reinstate", fx.reinstate(C1))
    party = get_party(led.state, C1)
    assert party is not None and not party["suspended"]
    led.submit(CHARITY_1, "campaign.open", fx.campaign("x"))
    led.submit(REGULATOR, "party.suspend", fx.suspend(C1, "again"))
    events = history(led.state, C1)
    assert [e["kind"] for e in events] == ["register", "suspend", "reinstate", "suspend"]
    assert [e["reason"] for e in events[1:]] == ["audit pending", "cleared by the court", "again"]
    assert events[1]["height"] == 1 and events[2]["height"] == 2


def test_suspended_party_cannot_rotate_but_can_be_recovered(led: Ledger) -> None:
    led.submit(REGULATOR, "party.suspend", fx.suspend(C1))
    fresh = key("fresh")
    led.reject(CHARITY_1, "party.rotate_key", fx.rotate(fresh, C1), "signer_suspended")
    led.submit(REGULATOR, "party.recover", fx.recover("r", C1, fresh))
    led.reject(fresh, "campaign.open", fx.campaign("x"), "signer_suspended")
    led.submit(REGULATOR, "party.reinstate", fx.reinstate(C1))
    led.submit(fresh, "campaign.open", fx.campaign("x"))
