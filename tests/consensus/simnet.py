"""An in-process network of validators with a seeded scheduler, and the safety checker.

Every run is a pure function of its `SimConfig` (seed included): messages are delayed,
dropped, duplicated and reordered, the network partitions and heals, honest validators
crash and restart from their last persisted record, and up to the configured validators
are Byzantine (`consensus.testing_byzantine`). During a chaos period anything goes; then
the network heals and every honest validator must decide the following heights within a
bounded logical time.

The checker runs inside each step, at the moment a decision is made or a message is sent:
agreement (one value per height among honest deciders), validity (only proposed,
application-valid values; every certificate passes `verify_certificate`) and no honest
double-sign (one value per (validator, height, round, kind), across restarts).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from almoner.consensus.certificate import CertificateError, verify_certificate
from almoner.consensus.crypto import Signer, Verifier
from almoner.consensus.machine import Machine
from almoner.consensus.messages import Proposal, Vote
from almoner.consensus.persisted import PersistedState
from almoner.consensus.ready import Decision, Params, ProposalRequest, Ready
from tests.consensus.sim_byzantine import Byzantine
from tests.consensus.sim_sets import SetSchedule
from tests.consensus.sim_support import SimSigner, SimVerifier, SplitMix64, validator_key

CHAIN = "almoner-sim"
SIM_PARAMS = Params(
    timeout_propose_ms=300,
    timeout_prevote_ms=100,
    timeout_precommit_ms=100,
    timeout_delta_ms=50,
    rebroadcast_ms=250,
)


class SafetyViolation(Exception):
    """An invariant broke; the message says which and where."""


@dataclass(frozen=True)
class SimConfig:
    n: int
    seed: int
    heights: int = 20  # run until every honest validator decided this many heights
    chaos_ms: int = 0  # faults below apply before this logical time only
    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 40
    partitions: bool = False
    crashes: bool = False
    byzantine: Mapping[int, str] = field(default_factory=dict)
    broken_lock: bool = False
    params: Params = SIM_PARAMS
    tick_ms: int = 10
    heights_after_heal: int = 3  # liveness: decided this many heights past the heal ...
    liveness_ms: int = 30_000  # ... within this much logical time
    max_ms: int = 600_000
    stop_on_violation: bool = True
    # (signer factory, verifier) to use real signatures, e.g. node.consensus_crypto.
    crypto: tuple[Callable[[int], Signer], Verifier] | None = None
    # Governance (sim_sets.py): every `change_every` heights the decided block carries a
    # set change (add / remove / replace, cycling) in force `change_delay` heights later;
    # `spare` extra validators can join. 0 = the set never changes.
    change_every: int = 0
    change_delay: int = 2
    spare: int = 0


@dataclass
class SimResult:
    violation: str | None = None
    decided: int = 0  # heights decided by every honest validator
    heal_ms: int = 0
    end_ms: int = 0
    # Every honest validator decided heights_after_heal more heights than the highest
    # decided at the heal, within liveness_ms of it (live_ms: how long that took).
    live: bool = False
    live_ms: int | None = None
    delivered: int = 0
    evidence_against: set[bytes] = field(default_factory=set)
    dropped: dict[str, int] = field(default_factory=dict)


class Application:
    """The block builder and validity oracle every simulated app shares."""

    def __init__(self) -> None:
        self.valid: set[bytes] = set()
        self.proposed: set[bytes] = set()

    def build(self, who: int, height: int, round_: int) -> bytes:
        value = hashlib.sha256(f"block/{who}/{height}/{round_}".encode()).digest()
        self.valid.add(value)
        return value


class Checker:
    def __init__(self, chain: str, sets: SetSchedule, verifier: Verifier) -> None:
        self.chain = chain
        self.sets = sets
        self.verifier = verifier
        self.signed: dict[tuple[bytes, int, int, str], bytes | None] = {}
        self.decided: dict[int, bytes] = {}

    def sent(self, msg: Proposal | Vote) -> None:
        key = (msg.sender, msg.height, msg.round, msg.kind)
        if key in self.signed and self.signed[key] != msg.block_hash:
            raise SafetyViolation(f"honest double-sign {key[1:]} by {msg.sender.hex()[:8]}")
        self.signed[key] = msg.block_hash

    def decision(self, who: int, d: Decision, app: Application) -> None:
        if d.block_hash not in app.proposed or d.block_hash not in app.valid:
            raise SafetyViolation(f"validity: node {who} decided an unproposed/invalid value")
        try:
            # against the set the chain says is in force there, as `verify` checks it
            members = self.sets.truth(d.height)
            verify_certificate(d.certificate, self.chain, members, self.verifier)
        except CertificateError as exc:
            raise SafetyViolation(f"node {who} made a bad certificate: {exc}") from exc
        first = self.decided.setdefault(d.height, d.block_hash)
        if first != d.block_hash:
            raise SafetyViolation(f"agreement: two values decided at height {d.height}")


class SimNode:
    def __init__(self, index: int, sim: Simulation, signer: Signer) -> None:
        self.index = index
        self.sim = sim
        self.key = signer.public_key
        self.signer = signer
        self.byzantine: Byzantine | None = None
        self.record: dict[str, Any] | None = None
        self.down = False
        self.decisions: dict[int, Decision] = {}
        self.served: dict[tuple[bytes, int], int] = {}
        self.decided_at: dict[int, int] = {}
        self.machine = self._new_machine()

    def _new_machine(self) -> Machine:
        s = self.sim
        params = s.params
        if s.cfg.broken_lock:
            params = replace(params, broken_lock_rule=True)
        if self.record is None:
            return Machine(CHAIN, self.signer, s.verifier, 1, s.sets.known(1, 0), params)
        height = int(self.record["height"])
        members = s.sets.known(height, self.height)
        return Machine.restore(self.record, CHAIN, self.signer, s.verifier, members, params)

    def boot(self) -> None:
        self.down = False
        self.machine = self._new_machine()
        self.handle(self.machine.start())
        if self.machine.decided:  # crashed between a decision and start_height
            following = self.machine.height + 1
            members = self.sim.sets.known(following, self.height)
            self.handle(self.machine.start_height(following, members))

    def deliver(self, src: bytes, payload: Any) -> None:
        m = self.machine
        if (
            isinstance(payload, Proposal | Vote)
            and isinstance(payload.height, int)
            and payload.height < m.height
        ):
            self._catch_up(src, payload.height)
        self.handle(m.step(payload))

    def _catch_up(self, peer: bytes, height: int) -> None:
        """Block sync, as the node would serve it: the decided proposal and precommits."""
        d = self.decisions.get(height)
        wait = self.sim.params.rebroadcast_ms
        last = self.served.get((peer, height), -(10**9))
        if d is None or self.sim.now - max(last, self.decided_at[height]) < wait:
            return  # late votes right after a decision are normal; a laggard re-sends
        self.served[(peer, height)] = self.sim.now
        for vote in d.certificate.precommits(CHAIN):
            self.sim.send(self, peer, vote)
        self.sim.send(self, peer, d.proposal)

    def handle(self, ready: Ready) -> None:
        queue = [ready]
        while queue:
            ready = queue.pop(0)
            if ready.persist is not None:  # 1. persist ...
                self.record = dict(ready.persist)
                assert ready.persist_own == PersistedState.from_record(self.record).own
            for out in ready.send:  # 2. ... then send
                self.sim.emit(self, out)
            for e in ready.evidence:
                self.sim.result.evidence_against.add(e.culprit)
            for req in ready.requests:
                if isinstance(req, ProposalRequest):
                    value = self.sim.app.build(self.index, req.height, req.round)
                    queue.append(self.machine.propose_value(req.height, req.round, value))
                else:
                    ok = req.block_hash in self.sim.app.valid
                    queue.append(self.machine.on_validity(req.height, req.block_hash, ok))
            for d in ready.decided:
                self.decisions[d.height] = d
                self.decided_at[d.height] = self.sim.now
                if self.byzantine is None:
                    self.sim.checker.decision(self.index, d, self.sim.app)
                # The set of the next height as this node knows it: only changes carried
                # by blocks it has decided (a ledger learns nothing sooner).
                members = self.sim.sets.known(d.height + 1, self.height)
                queue.append(self.machine.start_height(d.height + 1, members))

    def follow(self) -> None:
        """Outside the set, a node sends nothing, so nobody notices it lagging: it asks
        for the decided block of its height, as an observer's catch-up would."""
        m = self.machine
        if self.key in m.validators:
            return
        for other in self.sim.nodes:
            if other is not self and not other.down and m.height in other.decisions:
                other._catch_up(self.key, m.height)
                return

    @property
    def height(self) -> int:
        """Heights this validator has decided."""
        return len(self.decisions)


class Simulation:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.params = cfg.params
        self.rng = SplitMix64(cfg.seed)
        self.now = 0
        self.app = Application()
        self.result = SimResult()
        self._queue: list[tuple[int, int, int, bytes, Any]] = []
        self._seq = 0
        pool = cfg.n + cfg.spare  # every node that is ever a validator runs from the start
        self.keys = [validator_key(i) for i in range(pool)]
        if cfg.crypto is None:
            self.verifier: Verifier = SimVerifier()
            signers: list[Signer] = [SimSigner(k) for k in self.keys]
        else:
            factory, self.verifier = cfg.crypto
            signers = [factory(i) for i in range(pool)]
            self.keys = [s.public_key for s in signers]
        byzantine_keys = {self.keys[i] for i in cfg.byzantine}
        self.sets = SetSchedule(
            self.keys[: cfg.n], self.keys[cfg.n :], byzantine_keys, cfg.change_every,
            cfg.change_delay,
        )  # fmt: skip
        self.checker = Checker(CHAIN, self.sets, self.verifier)
        self.nodes = [SimNode(i, self, signers[i]) for i in range(pool)]
        self.by_key = {node.key: node for node in self.nodes}
        honest = [k for i, k in enumerate(self.keys) if i not in cfg.byzantine]
        colluders = [k for i, k in enumerate(self.keys) if i in cfg.byzantine]
        # Byzantine validators tell each other the first story, so they act on it together.
        groups = (honest[: len(honest) // 2] + colluders, honest[len(honest) // 2 :])
        for i, strategy in cfg.byzantine.items():
            node = self.nodes[i]
            node.byzantine = Byzantine(
                strategy, node.signer, self.rng.fork(), CHAIN, groups, self.app.valid.add
            )
        self.partition: dict[bytes, int] | None = None
        self._next_fault = 0

    # -- network -------------------------------------------------------------------------

    def emit(self, node: SimNode, out: Any) -> None:
        msg = out.message
        if node.byzantine is None:
            if msg.sender == node.key:  # relayed messages are someone else's signature
                self.checker.sent(msg)
            sends: list[tuple[bytes | None, Any]] = [(out.to, msg)]
        else:
            sends = node.byzantine.outgoing(out)
        for to, payload in sends:
            if isinstance(payload, Proposal) and isinstance(payload.block_hash, bytes):
                self.app.proposed.add(payload.block_hash)
            targets = [to] if to is not None else [k for k in self.keys if k != node.key]
            for dst in targets:
                self.send(node, dst, payload)

    def send(self, src: SimNode, dst: bytes, payload: Any) -> None:
        chaos = self.now < self.cfg.chaos_ms
        if chaos and self.rng.chance(self.cfg.drop):
            return
        if chaos and self.partition and self.partition[src.key] != self.partition[dst]:
            return
        copies = 2 if self.rng.chance(self.cfg.duplicate) else 1
        for _ in range(copies):
            delay = self.rng.between(self.cfg.min_delay_ms, self.cfg.max_delay_ms)
            self._seq += 1
            heapq.heappush(self._queue, (self.now + delay, self._seq, src.index, dst, payload))

    # -- faults --------------------------------------------------------------------------

    def _faults(self) -> None:
        if self.now < self._next_fault:
            return
        self._next_fault = self.now + self.rng.between(100, 1500)
        if self.now >= self.cfg.chaos_ms:
            self._heal()
            return
        if self.cfg.partitions and self.rng.chance(0.4):
            if self.partition is None:
                self.partition = {k: self.rng.below(2) for k in self.keys}
            else:
                self.partition = None
        if self.cfg.crashes and self.rng.chance(0.5):
            node = self.rng.pick(self.nodes)
            if node.byzantine is None:
                if node.down:
                    node.boot()
                else:
                    node.down = True

    def _heal(self) -> None:
        self.partition = None
        for node in self.nodes:
            if node.down:
                node.boot()

    # -- main loop -----------------------------------------------------------------------

    def honest(self) -> list[SimNode]:
        return [node for node in self.nodes if node.byzantine is None]

    def run(self) -> SimResult:
        cfg, result = self.cfg, self.result
        for node in self.nodes:
            node.boot()
        healed_at: int | None = None
        live_target = 0
        try:
            while self.now < cfg.max_ms:
                self._faults()
                if healed_at is None and self.now >= cfg.chaos_ms:
                    self._heal()
                    healed_at = self.now
                    reached = max(node.height for node in self.honest())
                    live_target = reached + cfg.heights_after_heal
                    result.heal_ms = self.now
                while self._queue and self._queue[0][0] <= self.now:
                    _, _, src, dst, payload = heapq.heappop(self._queue)
                    node = self.by_key[dst]
                    if not node.down:
                        result.delivered += 1
                        node.deliver(self.keys[src], payload)
                if healed_at is not None:
                    lowest = min(n.height for n in self.honest())
                    if result.live_ms is None and lowest >= live_target:
                        result.live_ms = self.now - healed_at
                        result.live = result.live_ms <= cfg.liveness_ms
                    if result.live_ms is None and self.now - healed_at > cfg.liveness_ms:
                        break  # not live within the bound: result.live stays False
                    if result.live_ms is not None and lowest >= cfg.heights:
                        break
                self.now += cfg.tick_ms
                for node in self.nodes:
                    if not node.down:
                        node.handle(node.machine.tick(cfg.tick_ms))
                        if cfg.change_every:
                            node.follow()
        except SafetyViolation as exc:
            result.violation = str(exc)
        result.end_ms = self.now
        result.decided = min(node.height for node in self.honest())
        for node in self.nodes:
            for key, count in node.machine.stats.items():
                result.dropped[key] = result.dropped.get(key, 0) + count
        return result


def simulate(cfg: SimConfig) -> SimResult:
    return Simulation(cfg).run()
