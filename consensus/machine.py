"""The Tendermint state machine of docs/spec/06 (Buchman, Kwon, Milosevic 2018, Alg. 1).

Each `upon` rule is a method named after its line in Algorithm 1. After every input the
rules are applied until none fires, so the order messages arrive in never matters, only the
set of messages heard. The machine only computes: every input returns a `Ready`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from almoner.consensus.certificate import Certificate, CommitSig
from almoner.consensus.crypto import Signer, Verifier
from almoner.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    PROPOSAL,
    Message,
    MessageError,
    Proposal,
    Vote,
    check_message,
    max_faulty,
    parse_message,
    proposer_index,
    quorum,
)
from almoner.consensus.persisted import PersistedState
from almoner.consensus.ready import (
    Decision,
    Evidence,
    Outbound,
    Params,
    ProposalRequest,
    Ready,
    ValidityRequest,
)
from almoner.consensus.tally import Tally

STEP_PROPOSE = "propose"
STEP_PREVOTE = "prevote"
STEP_PRECOMMIT = "precommit"
_TIMEOUT_PROPOSE = "propose"
_TIMEOUT_PREVOTE = "prevote"
_TIMEOUT_PRECOMMIT = "precommit"
MAX_VOTES_PER_SLOT = 4  # per (validator, round, kind): one honest vote, a few equivocations


class ConsensusError(Exception):
    """The driver broke the contract (e.g. went back a height); a bug, not a network event."""


class Machine:
    """One validator's consensus at one height at a time; see the package docstring."""

    def __init__(
        self,
        chain: str,
        signer: Signer,
        verifier: Verifier,
        height: int,
        validators: Sequence[bytes],
        params: Params | None = None,
    ) -> None:
        self.chain = chain
        self.signer = signer
        self.verifier = verifier
        self.params = params or Params()
        self.me = signer.public_key
        self.now = 0
        self._seq = 0
        self._timers: list[tuple[int, int, str, int, int]] = []
        self._buffer: dict[Message, None] = {}
        self._buffered_by: dict[bytes, int] = {}
        self._restored = False
        self.stats: dict[str, int] = {}
        self._out = Ready()
        self._dirty = False
        self._enter_height(height, validators)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        record: Mapping[str, Any],
        chain: str,
        signer: Signer,
        verifier: Verifier,
        validators: Sequence[bytes],
        params: Params | None = None,
    ) -> Machine:
        """Resume from the last persisted record; call `start()` next."""
        state = PersistedState.from_record(record)
        m = cls(chain, signer, verifier, state.height, validators, params)
        m.round = state.round
        m.phase = state.step
        m.decided = state.decided
        m.locked_round, m.locked_value = state.locked_round, state.locked_value
        m.valid_round, m.valid_value = state.valid_round, state.valid_value
        if m.valid_value is not None:
            m._validity[m.valid_value] = True  # it passed valid(v) before the crash
        for msg in state.own:
            m._own[(msg.round, msg.kind)] = msg
            m._count_own(msg)
        m._restored = True
        return m

    def start(self) -> Ready:
        """Line 10 for a fresh machine; for a restored one, re-arm timers and re-send."""
        if not self._restored:
            self._start_round(0)
        elif not self.decided:
            self._resume()
        return self._drain()

    def _resume(self) -> None:
        r = self.round
        if self.phase == STEP_PROPOSE:
            if self._is_proposer(r) and (r, PROPOSAL) not in self._own:
                self._propose(r)
            self._schedule(_TIMEOUT_PROPOSE, self.params.timeout_propose(r))
        elif self.phase == STEP_PREVOTE:
            self._schedule(_TIMEOUT_PREVOTE, self.params.timeout_prevote(r))
        else:
            self._schedule(_TIMEOUT_PRECOMMIT, self.params.timeout_precommit(r))
        self._resend()
        self._apply_rules()

    def _enter_height(self, height: int, validators: Sequence[bytes]) -> None:
        if height < 1 or not validators or len(set(validators)) != len(validators):
            raise ConsensusError("a height is >= 1 and its validator set distinct, non-empty")
        self.height = height
        self.validators = tuple(validators)
        self._members = frozenset(validators)
        self.q = quorum(len(validators))
        self.f = max_faulty(len(validators))
        self.round = 0
        self.phase = STEP_PROPOSE  # step_p of the paper (`step` is the input method)
        self.decided = False
        self.locked_round: int = -1
        self.locked_value: bytes | None = None
        self.valid_round: int = -1
        self.valid_value: bytes | None = None
        self._own: dict[tuple[int, str], Message] = {}
        self._tally = Tally()
        self._validity: dict[bytes, bool] = {}
        self._fired: set[tuple[int, int]] = set()  # (line, round) for "for the first time"
        self._awaiting_value: int | None = None
        # Re-sending is for heights that stall; a fresh height gets a full period first.
        self._next_rebroadcast = self.now + self.params.rebroadcast_ms
        self._asked: set[bytes] = set()  # valid(v) questions already put to the app
        self._reported: set[tuple[bytes, int, str]] = set()  # evidence once per slot
        self._timers.clear()
        self._dirty = True

    # -- inputs --------------------------------------------------------------------------

    def step(self, message: Message | Mapping[str, Any]) -> Ready:
        """A message from the network, as a dataclass or a decoded protocol map."""
        try:
            msg = (
                check_message(message)
                if isinstance(message, Proposal | Vote)
                else parse_message(message)
            )
        except (MessageError, KeyError, TypeError) as exc:
            self._drop(f"malformed: {exc}")
            return self._drain()
        if msg.chain != self.chain:
            self._drop("wrong_chain")
        elif self.height < msg.height <= self.height + self.params.heights_ahead:
            self._buffer_message(msg)
        elif msg.height != self.height or self.decided:
            self._drop("other_height")
        elif self._accept(msg):
            self._apply_rules()
        return self._drain()

    def tick(self, elapsed_ms: int) -> Ready:
        """Advance logical time; fire due timeouts (lines 57, 61, 65) and re-sends."""
        if elapsed_ms < 0:
            raise ConsensusError("time does not go backwards")
        self.now += elapsed_ms
        while self._timers and self._timers[0][0] <= self.now:
            _, _, kind, height, round_ = heapq.heappop(self._timers)
            self._on_timeout(kind, height, round_)
            self._apply_rules()
        if self.now >= self._next_rebroadcast:
            self._next_rebroadcast = self.now + self.params.rebroadcast_ms
            if not self.decided:
                self._resend()
        return self._drain()

    def _resend(self) -> None:
        """Re-send own messages, and relay the proof of lock (proposal and 2f+1 prevotes)
        for the valid value: the paper's liveness assumes what one correct validator
        received, all eventually receive, and an equivocator may have shown its prevote
        to only some of us. Without this relay, validators locked on different values can
        wait on each other forever."""
        sent = list(self._own.values())
        if self.valid_value is not None:
            r, v = self.valid_round, self.valid_value
            relay: list[Message] = list(self._tally.votes_for(r, PREVOTE, v))
            proposal = self._tally.proposal(r, v)
            if proposal is not None:
                relay.append(proposal)
            sent.extend(m for m in relay if m.sender != self.me)
        self._out.send.extend(Outbound(m) for m in sent)

    def propose_value(self, height: int, round_: int, block_hash: bytes) -> Ready:
        """The app's answer to ProposalRequest (getValue, line 18). Late answers are ignored."""
        if (
            height == self.height
            and round_ == self.round
            and self._awaiting_value == round_
            and not self.decided
            and self.phase == STEP_PROPOSE
        ):
            self._awaiting_value = None
            self._validity[block_hash] = True  # the app built it
            self._send_proposal(block_hash, -1)  # line 19
            self._apply_rules()
        return self._drain()

    def on_validity(self, height: int, block_hash: bytes, valid: bool) -> Ready:
        """The app's answer to ValidityRequest: valid(v) of lines 22-49."""
        if height == self.height and block_hash not in self._validity:
            self._validity[block_hash] = bool(valid)
            self._apply_rules()
        return self._drain()

    def start_height(self, height: int, validators: Sequence[bytes]) -> Ready:
        """Begin `height` (usually decided + 1, after the app committed) with its validators."""
        if height <= self.height:
            raise ConsensusError(f"cannot go from height {self.height} to {height}")
        buffered = [m for m in self._buffer if m.height == height]
        later = [m for m in self._buffer if m.height > height]
        self._buffer.clear()
        self._buffered_by.clear()
        self._enter_height(height, validators)
        self._start_round(0)
        for msg in later:  # held on, against the new height's members and window
            if msg.height <= height + self.params.heights_ahead:
                self._buffer_message(msg)
        for msg in buffered:
            if self._accept(msg):
                self._apply_rules()
        return self._drain()

    # -- intake --------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        key = reason.split(":", 1)[0]
        self.stats[key] = self.stats.get(key, 0) + 1
        self._out.dropped.append(reason)

    def _buffer_message(self, msg: Message) -> None:
        """Hold a later height's message until `start_height`; unverified, so bounded per
        member and in total (a non-member's are dropped: it cannot fill anyone's share)."""
        if msg in self._buffer:
            return
        per_sender = max(1, self.params.max_buffered // len(self.validators))
        held = self._buffered_by.get(msg.sender, 0)
        if msg.sender not in self._members:
            self._drop("not_member")
        elif held >= per_sender or len(self._buffer) >= self.params.max_buffered:
            self._drop("buffer_full")
        else:
            self._buffer[msg] = None
            self._buffered_by[msg.sender] = held + 1

    def _accept(self, msg: Message) -> bool:
        """Admit a current-height message into the tally; verifies each signature once."""
        if msg.sender not in self._members:
            self._drop("not_member")
            return False
        if msg.round > self.round + self.params.max_rounds_ahead:
            self._drop("too_far_ahead")
            return False
        if isinstance(msg, Proposal):
            return self._accept_proposal(msg)
        return self._accept_vote(msg)

    def _accept_proposal(self, p: Proposal) -> bool:
        if p.proposer != self.validators[proposer_index(p.height, p.round, len(self.validators))]:
            self._drop("not_proposer")
            return False
        if self._tally.proposal(p.round, p.block_hash) is not None:
            self._drop("duplicate")  # same value again, or re-signed with another valid_round
            return False
        if self._tally.proposal_count(p.round) >= 4 and self._tally.supported(p.block_hash) == 0:
            self._drop("too_many_proposals")
            return False
        if not self.verifier.verify_proposal(p):
            self._drop("bad_signature")
            return False
        self._tally.add_proposal(p)
        if p.block_hash not in self._validity and p.block_hash not in self._asked:
            self._asked.add(p.block_hash)
            self._out.requests.append(ValidityRequest(self.height, p.block_hash))
        return True

    def _accept_vote(self, v: Vote) -> bool:
        earlier = self._tally.votes_of(v.round, v.kind, v.validator)
        if any(e.block_hash == v.block_hash for e in earlier):
            self._drop("duplicate")  # the common case of gossip: no second verification
            return False
        if earlier and not self._worth_counting(v, len(earlier)):
            self._drop("equivocation")  # already proven; junk values need not be kept
            return False
        if not self.verifier.verify_vote(v):
            self._drop("bad_signature")
            return False
        slot = (v.validator, v.round, v.kind)
        if earlier and slot not in self._reported:
            self._reported.add(slot)
            self._out.evidence.append(Evidence(earlier[0], v))
        self._tally.add_vote(v)
        return True

    def _worth_counting(self, v: Vote, held: int) -> bool:
        """The first conflicting vote is always kept: it is the evidence. Further ones only
        for values that can matter (nil, a proposed value, one others vote for), and only a
        few, to bound memory."""
        if held == 1:
            return True
        if held >= MAX_VOTES_PER_SLOT:
            return False
        h = v.block_hash
        return h is None or self._tally.proposed(h) or self._tally.supported(h) > 0

    # -- the rules of Algorithm 1 ----------------------------------------------------------

    def _apply_rules(self) -> None:
        # Rules only enable one another, so iterate to a fixpoint; each firing changes the
        # step, round or height, or marks a "for the first time" rule, so this terminates.
        while not self.decided and (
            self._line_49()
            or self._line_55()
            or self._line_22_28()
            or self._line_34()
            or self._line_36()
            or self._line_44()
            or self._line_47()
            or self._line_42_past_round()
        ):
            pass

    def _line_22_28(self) -> bool:
        """Lines 22 and 28: prevote on the round's proposal, honouring the lock."""
        if self.phase != STEP_PROPOSE:
            return False
        r = self.round
        for p in self._tally.proposals(r):
            v = p.block_hash
            valid = self._validity.get(v)
            if valid is None:
                continue  # valid(v) is still with the app
            if p.valid_round == -1:  # line 22
                free = self.locked_round == -1 or self.locked_value == v
            elif self._tally.count(p.valid_round, PREVOTE, v) >= self.q:  # line 28
                free = self.locked_round <= p.valid_round or self.locked_value == v
            else:
                continue  # no proof of lock for vr yet: wait, or time out (line 57)
            if self.params.broken_lock_rule:
                free = True
            self._vote(PREVOTE, v if valid and free else None)  # lines 24/26, 30/32
            self.phase = STEP_PREVOTE  # lines 27, 33
            return True
        return False

    def _line_34(self) -> bool:
        """Line 34: 2f+1 prevotes of any kind, first time: arm timeoutPrevote."""
        key = (34, self.round)
        if (
            self.phase == STEP_PREVOTE
            and key not in self._fired
            and self._tally.total(self.round, PREVOTE) >= self.q
        ):
            self._fired.add(key)
            self._schedule(_TIMEOUT_PREVOTE, self.params.timeout_prevote(self.round))  # line 35
            return True
        return False

    def _line_36(self) -> bool:
        """Line 36: proposal + 2f+1 prevotes for it: lock and precommit; remember as valid."""
        key = (36, self.round)
        if self.phase == STEP_PROPOSE or key in self._fired:
            return False
        for p in self._tally.proposals(self.round):
            v = p.block_hash
            if self._validity.get(v) and self._tally.count(self.round, PREVOTE, v) >= self.q:
                self._fired.add(key)
                if self.phase == STEP_PREVOTE:  # line 37
                    self.locked_value, self.locked_round = v, self.round  # lines 38-39
                    self._vote(PRECOMMIT, v)  # line 40
                    self.phase = STEP_PRECOMMIT  # line 41
                self.valid_value, self.valid_round = v, self.round  # lines 42-43
                self._dirty = True
                return True
        return False

    def _line_42_past_round(self) -> bool:
        """Lines 42-43 for an earlier round: a proposal and 2f+1 prevotes for it in round r,
        round_p > r > validRound_p, also make it the valid value.

        An extension of Algorithm 1 (which updates validValue only in round_p): a prevote
        that arrives after its round ended -- common right after a partition heals --
        would otherwise leave a validator locked on v waiting until it is itself proposer
        again. Safe: it changes no lock, and whoever receives the re-proposal checks the
        proof of lock itself (line 28)."""
        for r, v in self._tally.quorums(PREVOTE, self.q):
            if (
                self.valid_round < r < self.round
                and self._validity.get(v)
                and self._tally.proposal(r, v) is not None
            ):
                self.valid_value, self.valid_round = v, r
                self._dirty = True
                return True
        return False

    def _line_44(self) -> bool:
        """Line 44: 2f+1 prevotes for nil: precommit nil."""
        if self.phase == STEP_PREVOTE and self._tally.count(self.round, PREVOTE, None) >= self.q:
            self._vote(PRECOMMIT, None)  # line 45
            self.phase = STEP_PRECOMMIT  # line 46
            return True
        return False

    def _line_47(self) -> bool:
        """Line 47: 2f+1 precommits of any kind, first time: arm timeoutPrecommit."""
        key = (47, self.round)
        if key not in self._fired and self._tally.total(self.round, PRECOMMIT) >= self.q:
            self._fired.add(key)
            self._schedule(_TIMEOUT_PRECOMMIT, self.params.timeout_precommit(self.round))
            return True
        return False

    def _line_49(self) -> bool:
        """Line 49: a proposal and 2f+1 precommits for it in any round: decide."""
        for r, v in self._tally.quorums(PRECOMMIT, self.q):
            proposal = self._tally.proposal(r, v)
            if proposal is None or not self._validity.get(v):
                continue
            order = {key: i for i, key in enumerate(self.validators)}
            votes = sorted(self._tally.votes_for(r, PRECOMMIT, v), key=lambda x: order[x.validator])
            cert = Certificate(
                self.height, r, v, tuple(CommitSig(x.validator, x.sig) for x in votes)
            )
            self._out.decided.append(Decision(self.height, r, v, cert, proposal))  # line 51
            self.decided = True  # lines 52-54 wait for the driver's start_height
            self._timers.clear()
            self._dirty = True
            return True
        return False

    def _line_55(self) -> bool:
        """Line 55: f+1 validators are in a higher round: skip to it."""
        ahead = [
            r
            for r in self._tally.rounds_heard()
            if r > self.round and self._tally.senders(r) >= self.f + 1
        ]
        if not ahead:
            return False
        self._start_round(max(ahead))  # line 56
        return True

    def _on_timeout(self, kind: str, height: int, round_: int) -> None:
        if height != self.height or round_ != self.round or self.decided:
            return
        if kind == _TIMEOUT_PROPOSE and self.phase == STEP_PROPOSE:  # line 57
            self._vote(PREVOTE, None)  # line 59
            self.phase = STEP_PREVOTE  # line 60
        elif kind == _TIMEOUT_PREVOTE and self.phase == STEP_PREVOTE:  # line 61
            self._vote(PRECOMMIT, None)  # line 63
            self.phase = STEP_PRECOMMIT  # line 64
        elif kind == _TIMEOUT_PRECOMMIT:  # line 65
            self._start_round(self.round + 1)  # line 67

    def _start_round(self, round_: int) -> None:
        """Line 11: StartRound."""
        self.round = round_  # line 12
        self.phase = STEP_PROPOSE  # line 13
        self._dirty = True
        self._awaiting_value = None
        if self._is_proposer(round_):  # line 14
            self._propose(round_)
        # Line 21 arms this only for non-proposers; a proposer whose app is slow would then
        # wait for line 55 alone, so it is armed for every validator (it is harmless: it
        # only acts while the step is still `propose`).
        self._schedule(_TIMEOUT_PROPOSE, self.params.timeout_propose(round_))

    # -- own messages --------------------------------------------------------------------

    def _is_proposer(self, round_: int) -> bool:
        n = len(self.validators)
        return self.validators[proposer_index(self.height, round_, n)] == self.me

    def _propose(self, round_: int) -> None:
        if (round_, PROPOSAL) in self._own:  # restarted: re-send what was signed
            self._out.send.append(Outbound(self._own[(round_, PROPOSAL)]))
        elif self.valid_value is not None:  # lines 15-16
            self._send_proposal(self.valid_value, self.valid_round)  # line 19
        else:
            self._request_value(round_)  # line 18

    def _request_value(self, round_: int) -> None:
        self._awaiting_value = round_
        self._out.requests.append(ProposalRequest(self.height, round_))

    def _send_proposal(self, block_hash: bytes, valid_round: int) -> None:
        msg = self._own.get((self.round, PROPOSAL))
        if msg is None:  # never sign a second proposal for one (height, round)
            msg = self.signer.sign_proposal(
                Proposal(self.chain, self.height, self.round, valid_round, block_hash, self.me)
            )
            self._own[(self.round, PROPOSAL)] = msg
        self._dirty = True
        self._count_own(msg)
        self._out.send.append(Outbound(msg))

    def _vote(self, kind: str, block_hash: bytes | None) -> None:
        if self.me not in self._members:
            return  # outside this height's set (governance): follow, never vote or count
        msg = self._own.get((self.round, kind))
        if msg is None:  # never sign a second vote for one (height, round, kind)
            vote = Vote(
                PRECOMMIT if kind == PRECOMMIT else PREVOTE,
                self.chain,
                self.height,
                self.round,
                block_hash,
                self.me,
            )
            msg = self.signer.sign_vote(vote)
            self._own[(self.round, kind)] = msg
        self._dirty = True
        self._count_own(msg)
        self._out.send.append(Outbound(msg))

    def _count_own(self, msg: Message) -> None:
        if isinstance(msg, Proposal):
            if self._tally.proposal(msg.round, msg.block_hash) is None:
                self._tally.add_proposal(msg)
                self._validity[msg.block_hash] = True
        elif not self._tally.votes_of(msg.round, msg.kind, msg.validator):
            self._tally.add_vote(msg)

    # -- plumbing ------------------------------------------------------------------------

    def _schedule(self, kind: str, after_ms: int) -> None:
        self._seq += 1
        heapq.heappush(
            self._timers, (self.now + after_ms, self._seq, kind, self.height, self.round)
        )

    def persisted(self) -> PersistedState:
        return PersistedState(
            height=self.height,
            round=self.round,
            step=self.phase,
            decided=self.decided,
            locked_round=self.locked_round,
            locked_value=self.locked_value,
            valid_round=self.valid_round,
            valid_value=self.valid_value,
            own=tuple(self._own.values()),
        )

    def _drain(self) -> Ready:
        out, self._out = self._out, Ready()
        if self._dirty:
            state = self.persisted()
            out.persist, out.persist_own = state.to_record(), state.own
            self._dirty = False
        return out
