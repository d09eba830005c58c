"""Tendermint consensus for Almoner (docs/spec/06-consensus-and-p2p.md): a pure state machine.

What this package owns: the rules of Algorithm 1 of Buchman, Kwon and Milosevic, "The latest
gossip on BFT consensus" (2018) -- heights, rounds, propose/prevote/precommit, locked and
valid values, timeouts growing with the round, the f+1 round skip -- plus the message
dataclasses, commit certificates and their standalone check, equivocation evidence, and the
persisted record that stops a restarted validator from signing twice. It owns no I/O, no
clock, no randomness and no asyncio, and imports nothing from `node/`: that is what lets
`consensus.testing` run whole networks deterministically in one process.

Time is logical. The driver calls `tick(elapsed_ms)` with whatever time passed; timeouts are
`timeout_X_ms + round * timeout_delta_ms` (genesis params) measured on that clock, so a
simulation advances it by fiat and a node by its monotonic clock.

Block contents are opaque: the machine sees block hashes, asks the application for a value
when it proposes (`ProposalRequest`, answered by `propose_value`) and whether a proposed
value is valid (`ValidityRequest`, answered by `on_validity`). Signatures go through the
`Signer`/`Verifier` Protocols of `consensus.crypto`; every incoming message is verified
exactly once, when it is first admitted (exact duplicates are dropped before verifying).

The driver's main loop (the node's, or `consensus.testing`'s)::

    m = Machine(chain, signer, verifier, height, validators, params)   # or Machine.restore(...)
    ready = m.start()
    loop:
        store.put_consensus_record(ready.persist)   # 1. persist + fsync, if not None
        for out in ready.send: transport.send(out)   # 2. then send (out.to None: everyone)
        for req in ready.requests:                   # 3. the application
            ProposalRequest  -> later: m.propose_value(req.height, req.round, block_hash)
            ValidityRequest  -> later: m.on_validity(req.height, req.block_hash, ok)
        for d in ready.decided:                      # 4. commit block d.block_hash with
            commit(d, d.certificate)                 #    d.certificate, then
            ready = m.start_height(d.height + 1, validators_for(d.height + 1))
        for e in ready.evidence: submit_evidence(e)  # evidence.submit tx (PROTOCOL §2)
        ready = m.step(message) | m.tick(elapsed_ms) | ...   # next input

Every input returns a `Ready`; steps 1-2 must happen in that order for every Ready. After
a restart, `Machine.restore(record, ...)` then `start()`; if the record says `decided` and
the block store holds that height, call `start_height(height + 1, ...)` next.
Messages for height + 1 are buffered (bounded) until `start_height`; older or further
heights are dropped, and catching a lagging peer up (sending it a decided height's proposal
and certificate precommits, see `Certificate.precommits`) is the driver's job.
"""

from almoner.consensus.certificate import (
    Certificate,
    CertificateError,
    CommitSig,
    verify_certificate,
)
from almoner.consensus.crypto import Signer, Verifier
from almoner.consensus.machine import ConsensusError, Machine
from almoner.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    PROPOSAL,
    Message,
    MessageError,
    Proposal,
    Vote,
    max_faulty,
    parse_message,
    proposer_index,
    quorum,
)
from almoner.consensus.persisted import PersistedState, PersistedStateError
from almoner.consensus.ready import (
    Decision,
    Evidence,
    Outbound,
    Params,
    ProposalRequest,
    Ready,
    ValidityRequest,
)

__all__ = [
    "PRECOMMIT",
    "PREVOTE",
    "PROPOSAL",
    "Certificate",
    "CertificateError",
    "CommitSig",
    "ConsensusError",
    "Decision",
    "Evidence",
    "Machine",
    "Message",
    "MessageError",
    "Outbound",
    "Params",
    "PersistedState",
    "PersistedStateError",
    "Proposal",
    "ProposalRequest",
    "Ready",
    "Signer",
    "ValidityRequest",
    "Verifier",
    "Vote",
    "max_faulty",
    "parse_message",
    "proposer_index",
    "quorum",
    "verify_certificate",
]
