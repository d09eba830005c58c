"""Small fixtures shared by the consensus unit tests: keys, machines, message builders."""

from __future__ import annotations

from almoner.consensus import Machine, Params, Proposal, Ready, Vote
from tests.consensus.sim_support import SimSigner, SimVerifier, validator_key

CHAIN = "almoner-test"
PARAMS = Params(
    timeout_propose_ms=100,
    timeout_prevote_ms=50,
    timeout_precommit_ms=50,
    timeout_delta_ms=10,
    rebroadcast_ms=1000,
)


def keys(n: int) -> list[bytes]:
    return [validator_key(i) for i in range(n)]


def signers(n: int) -> list[SimSigner]:
    return [SimSigner(k) for k in keys(n)]


def machine(
    n: int, me: int, height: int = 1, params: Params = PARAMS
) -> tuple[Machine, SimVerifier, Ready]:
    verifier = SimVerifier()
    m = Machine(CHAIN, SimSigner(validator_key(me)), verifier, height, keys(n), params)
    return m, verifier, m.start()


def vote(kind: str, who: int, block_hash: bytes | None, height: int = 1, round_: int = 0) -> Vote:
    unsigned = Vote(
        "prevote" if kind == "prevote" else "precommit",
        CHAIN,
        height,
        round_,
        block_hash,
        validator_key(who),
    )
    return SimSigner(validator_key(who)).sign_vote(unsigned)


def proposal(
    who: int, block_hash: bytes, height: int = 1, round_: int = 0, valid_round: int = -1
) -> Proposal:
    unsigned = Proposal(CHAIN, height, round_, valid_round, block_hash, validator_key(who))
    return SimSigner(validator_key(who)).sign_proposal(unsigned)


def sent_votes(ready: Ready, kind: str) -> list[Vote]:
    return [o.message for o in ready.send if isinstance(o.message, Vote) and o.message.kind == kind]


V1 = b"\x01" * 32
V2 = b"\x02" * 32
