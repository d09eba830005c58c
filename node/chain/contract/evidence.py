"""evidence.submit: the ledger records which validator signed two different values.

Its own check order (docs/spec/03): vote shapes (`invalid_field`, done with the body in
`node.tx`), vote signatures (`bad_signature`), conflict / height / membership
(`invalid_field`), `duplicate_id`. The signer is checked before all of this, against the
validator set in force at the height of the block that carries the tx.
"""

from __future__ import annotations

from typing import Any

from almoner.node.chain.codec import encode
from almoner.node.chain.contract.base import TxContext
from almoner.node.chain.crypto import verify
from almoner.node.chain.signing import vote_sign_bytes
from almoner.node.chain.state import evidence_key, get_party, validators_at, write_record
from almoner.node.chain.store import KVReader, Overlay
from almoner.node.errors import ProtocolError, invalid_field

SAME_KEYS = ("chain", "validator", "height", "round", "kind")


def check_validator_signer(reader: KVReader, signer: bytes, height: int) -> None:
    """Only a validator of the set in force at `height` may submit evidence.

    A key outside that set is answered like any other signer that lacks the role: not a
    registered party either → `unknown_signer`; a suspended party → `signer_suspended`;
    any other party → `role_not_allowed`. Party suspension does not apply to validators:
    their credential is the validator set, not the registry.
    """
    if signer in validators_at(reader, height):
        return
    party = get_party(reader, signer)
    if party is None:
        raise ProtocolError("unknown_signer", "the signer is neither a validator nor a party")
    if party["suspended"]:
        raise ProtocolError("signer_suspended", "the signer is a suspended party")
    raise ProtocolError(
        "role_not_allowed",
        "evidence.submit must be signed by a validator",
        {"required": "validator", "role": party["role"]},
    )


def evidence_submit(
    state: Overlay, chain: str, reporter: bytes, body: dict[str, Any], ctx: TxContext
) -> None:
    votes: list[dict[str, Any]] = body["votes"]
    for i, vote in enumerate(votes):
        if not verify(vote["validator"], vote_sign_bytes(vote), vote["sig"]):
            raise ProtocolError(
                "bad_signature",
                f"vote {i} is not signed by its validator",
                {"field": f"body.votes[{i}].sig"},
            )
    first, second = votes
    if first["chain"] != chain:
        raise invalid_field("body.votes[0].chain", "the votes are for another chain")
    for name in SAME_KEYS:
        if first[name] != second[name]:
            raise invalid_field(f"body.votes[1].{name}", f"differs from vote 0's {name}")
    if first["block_hash"] == second["block_hash"]:
        raise invalid_field("body.votes[1].block_hash", "the votes do not conflict")
    if first["height"] > ctx.height:
        raise invalid_field(
            "body.votes[0].height",
            f"height {first['height']} is after the current height {ctx.height}",
        )
    culprit: bytes = first["validator"]
    if culprit not in validators_at(state, first["height"]):
        raise invalid_field(
            "body.votes[0].validator", "was not a validator at the height of the votes"
        )
    key = evidence_key(culprit, first["height"], first["round"], first["kind"])
    if state.get(key) is not None:
        raise ProtocolError(
            "duplicate_id",
            "this equivocation is already on the ledger",
            {"type": "evidence.submit", "validator": culprit.hex()},
        )
    record = {
        "validator": culprit,
        "height": first["height"],
        "round": first["round"],
        "kind": first["kind"],
        # Sorted so the record does not depend on the order the votes were submitted in.
        "votes": sorted(votes, key=encode),
        "reporter": reporter,
        "tx_id": ctx.tx_id,
        "committed_height": ctx.height,
    }
    write_record(state, key, record)
