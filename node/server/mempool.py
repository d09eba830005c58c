"""Pending transactions: admitted once, checked against the pending state, bounded.

Admission runs the whole contract against the committed state plus every tx already
pending, so a platform learns about an overdraft when it submits, not minutes later.
Each signature is verified once: the ids of admitted txs are handed to the block
builder as already verified. After each commit the pending state is rebuilt from the
new head, and txs that no longer apply (a conflicting tx won the race) are dropped.

Txs gossiped by a validator were already run through the contract by the node that
admitted them, so they are admitted on their shape, their signature and their signer
alone (a registered, unsuspended party of the type's role: junk signed by fresh keys is
refused at once) and their business rules are deferred (`from_peer`): in the usual case
they never run here, because the block that carries them executes them anyway, and
running the contract twice per tx on every validator was a sixth of a validator's time
under load. Deferred txs sit after every applied one; they are applied, in order, before
the next tx that needs the contract here (a client's submission) and once they have
waited DEFER_COMMITS commits, so a deferred tx that the contract would refuse is found
and dropped within a few heights (and at once by a proposer, whose block builder
refuses it).

Fairness: each signer may hold at most `max_per_party` pending txs, so one platform
cannot take every slot; and regulator and validator txs (a suspension, evidence) have a
reserved lane of `reserved_txs` slots above the global cap, so a flood can never keep
them out. A refusal is `busy` with a retry hint (the API sends it as Retry-After).
"""

from __future__ import annotations

from collections.abc import Iterable, KeysView
from dataclasses import dataclass
from typing import Any

from almoner.node.chain.codec import H
from almoner.node.chain.contract.engine import check_and_apply, check_signer
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.state import get_party
from almoner.node.chain.store import Overlay
from almoner.node.chain.tx import MAX_TX_BYTES, check_tx_shape, check_tx_signature, decode_tx
from almoner.node.errors import CodecError, ProtocolError

# The pending overlay keeps committed txs' keys until it is rebuilt; bound that.
REBUILD_AFTER_KEYS = 500_000
# Types whose signer is a validator, and roles, that use the reserved lane.
PRIORITY_TYPES = frozenset({"evidence.submit"})
PRIORITY_ROLES = frozenset({"regulator"})
RETRY_AFTER_S = 1
# Commits a peer's tx may wait before this node runs the contract on it itself.
DEFER_COMMITS = 2


@dataclass(frozen=True)
class Admission:
    tx_id: bytes
    status: str  # "pending" (new or already pending) or "committed"


def busy(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("busy", message, {**details, "retry_after_s": RETRY_AFTER_S})


class Mempool:
    def __init__(
        self,
        ledger: Ledger,
        max_txs: int,
        max_bytes: int,
        max_per_party: int | None = None,
        reserved_txs: int | None = None,
    ) -> None:
        self.ledger = ledger
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_per_party = max_per_party or max(1, max_txs // 4)
        self.reserved_txs = reserved_txs if reserved_txs is not None else max(16, max_txs // 50)
        self._pending: dict[bytes, bytes] = {}
        self._signer_of: dict[bytes, bytes] = {}
        self._front: dict[bytes, None] = {}  # priority txs that may go first, in order
        self._per_signer: dict[bytes, int] = {}
        self._bytes = 0
        self._state = Overlay(ledger.store)
        # Pending txs from peers whose contract run is deferred, with the commit count
        # when each came; all of them come after every applied tx in `_pending`.
        self._deferred: dict[bytes, int] = {}
        self._commits = 0
        # Txs ever held: a proposer waits for the clients a commit answered (gather.py).
        self.arrivals = 0
        self.rejected_total = 0
        self.refused_busy = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._pending

    def get(self, tx_id: bytes) -> bytes | None:
        return self._pending.get(tx_id)

    def add(
        self, raw: bytes, *, signature_checked: bool = False, from_peer: bool = False
    ) -> Admission:
        """Admit one tx or raise ProtocolError (its code is the API's answer).

        `signature_checked`: the caller found `signed_tx_id(raw) == H(raw)` (a burst's
        signatures are checked on worker threads first); the contract then skips it.
        `from_peer`: a validator gossiped it; its contract run is deferred (see above)."""
        if len(raw) > MAX_TX_BYTES:
            raise CodecError(
                "too_large",
                f"tx is {len(raw)} bytes, over the {MAX_TX_BYTES}-byte limit",
                {"size": len(raw), "limit": MAX_TX_BYTES},
            )
        tx_id = H(raw)
        if tx_id in self._pending:
            return Admission(tx_id, "pending")
        if self.ledger.tx_location(tx_id) is not None:
            return Admission(tx_id, "committed")
        try:
            tx = decode_tx(raw)
        except ProtocolError:
            self.rejected_total += 1
            raise
        signer = tx.get("signer")
        signer = signer if isinstance(signer, bytes) else b""
        priority = self._is_priority(tx, signer)
        self._check_room(signer, len(raw), priority)
        if from_peer and not priority and self._admit_deferred(tx_id, raw, tx, signature_checked):
            return Admission(tx_id, "pending")
        self._apply_deferred()
        try:
            check_and_apply(
                self._state,
                raw,
                self.ledger.head.height + 1,
                len(self._pending),
                self.ledger.chain_id,
                verify_signature=not signature_checked,
                decoded=tx,
            )
        except ProtocolError:
            self.rejected_total += 1
            raise
        if priority and self._valid_alone(raw, tx):
            self._front[tx_id] = None
        self._hold(tx_id, raw, signer)
        return Admission(tx_id, "pending")

    def _hold(self, tx_id: bytes, raw: bytes, signer: bytes) -> None:
        self._pending[tx_id] = raw
        self.arrivals += 1
        self._signer_of[tx_id] = signer
        self._per_signer[signer] = self._per_signer.get(signer, 0) + 1
        self._bytes += len(raw)

    def _admit_deferred(
        self, tx_id: bytes, raw: bytes, tx: dict[str, Any], signature_checked: bool
    ) -> bool:
        """A peer's tx on its shape, its signature and its signer (a registered party of
        the right role, or a validator): junk signed by fresh keys never gets in. False
        when the signer is unknown here: it may be registered by a deferred tx, so the
        caller runs the contract on those first, and then on this one."""
        try:
            check_tx_shape(tx, self.ledger.chain_id)
            if not signature_checked:
                check_tx_signature(tx, raw)
            check_signer(self._state, tx, self.ledger.head.height + 1)
        except ProtocolError as exc:
            if exc.code == "unknown_signer" and self._deferred:
                return False
            self.rejected_total += 1
            raise
        self._hold(tx_id, raw, tx["signer"])
        self._deferred[tx_id] = self._commits
        return True

    def _apply_deferred(self) -> list[bytes]:
        """Run the contract on the deferred txs, in order, on top of the applied ones;
        those it refuses are dropped and returned."""
        if not self._deferred:
            return []
        deferred = [(tx_id, self._pending[tx_id]) for tx_id in self._deferred]
        self._deferred.clear()
        invalid = self._apply_in_order(deferred, len(self._pending) - len(deferred))
        self.rejected_total += len(invalid)
        return invalid

    def _valid_alone(self, raw: bytes, tx: dict[str, Any]) -> bool:
        """Whether the tx applies to the committed state with no pending tx before it:
        only then may it jump the queue (see `candidates`)."""
        try:
            check_and_apply(
                Overlay(self.ledger.store),
                raw,
                self.ledger.head.height + 1,
                0,
                self.ledger.chain_id,
                verify_signature=False,
                decoded=tx,
            )
        except ProtocolError:
            return False
        return True

    def _check_room(self, signer: bytes, size: int, priority: bool) -> None:
        """Per-party quota first, then the global cap (or, for priority txs, the reserve)."""
        held = self._per_signer.get(signer, 0)
        if held >= self.max_per_party:
            self.refused_busy += 1
            raise busy(
                "this party has too many pending txs; retry once some are committed",
                party_pending=held,
                quota=self.max_per_party,
            )
        full = len(self._pending) >= self.max_txs or self._bytes + size > self.max_bytes
        if not full:
            return
        if priority:
            reserve_bytes = self.reserved_txs * MAX_TX_BYTES
            if (
                len(self._pending) < self.max_txs + self.reserved_txs
                and self._bytes + size <= self.max_bytes + reserve_bytes
            ):
                return
        self.refused_busy += 1
        raise busy("the mempool is full; retry later", pending=len(self._pending))

    def _is_priority(self, tx: dict[str, Any], signer: bytes) -> bool:
        """Regulators' and validators' txs: suspensions and evidence must get through."""
        if tx.get("type") in PRIORITY_TYPES:
            return True
        if signer in self.ledger.validators(self.ledger.head.height + 1):
            return True
        party = get_party(self._state, signer) if len(signer) == 32 else None
        return party is not None and party.get("role") in PRIORITY_ROLES

    def pending_of(self, signer: bytes) -> int:
        return self._per_signer.get(signer, 0)

    def candidates(self) -> list[bytes]:
        """Pending txs for the next block: regulators' and validators' txs that apply on
        their own first (a suspension must not wait behind the flood it stops), then the
        rest in admission order. The block builder re-checks each in this order."""
        front = [self._pending[tx_id] for tx_id in self._front]
        if not front:
            return list(self._pending.values())
        return front + [raw for tx_id, raw in self._pending.items() if tx_id not in self._front]

    def verified_ids(self) -> KeysView[bytes]:
        """Ids whose signature admission checked: a live view, not a copy per block."""
        return self._pending.keys()

    def on_commit(self, committed: Iterable[bytes], dropped: Iterable[bytes] = ()) -> list[bytes]:
        """Forget committed (and explicitly dropped) txs and bring the pending state up to date.

        When every committed tx was pending here (the usual case: txs are gossiped to all
        validators), the pending state already holds their effects and the rest's, so it
        stays as it is: the store now has the committed part, the overlay the remainder.
        Otherwise (a block with txs this node never saw, or txs dropped as invalid) it is
        rebuilt from the new head and txs that no longer apply are dropped and returned.
        Deferred txs that have waited DEFER_COMMITS commits are then run through the
        contract, and those it refuses are dropped and returned too.
        """
        committed = list(committed)
        dropped = list(dropped)
        if committed or not dropped:  # a block was committed (not only txs dropped)
            self._commits += 1
        all_known = all(tx_id in self._pending for tx_id in committed)
        # A committed deferred tx's effects are in the store but not in the pending
        # state: the applied txs still pending were checked without them.
        skipped = any(tx_id in self._deferred for tx_id in committed)
        for tx_id in (*committed, *dropped):
            self._forget(tx_id)
        applied_left = len(self._pending) > len(self._deferred)
        if (
            all_known
            and not dropped
            and not (skipped and applied_left)
            and len(self._state) < REBUILD_AFTER_KEYS
        ):
            if not applied_left:
                self._state = Overlay(self.ledger.store)
            return self._apply_stale()
        return self._rebuild() + self._apply_stale()

    def _apply_stale(self) -> list[bytes]:
        oldest = next(iter(self._deferred.values()), None)
        if oldest is None or self._commits - oldest < DEFER_COMMITS:
            return []
        return self._apply_deferred()

    def _rebuild(self) -> list[bytes]:
        """The pending state anew from the head: the applied txs again, in order (the
        deferred ones stay deferred)."""
        self._state = Overlay(self.ledger.store)
        applied = [(t, r) for t, r in self._pending.items() if t not in self._deferred]
        return self._apply_in_order(applied, 0)

    def _apply_in_order(self, txs: list[tuple[bytes, bytes]], first_index: int) -> list[bytes]:
        """Run the contract on pending txs (signatures already checked) into the pending
        state, in order; those it refuses are dropped and returned."""
        height = self.ledger.head.height + 1
        invalid: list[bytes] = []
        for offset, (tx_id, raw) in enumerate(txs):
            try:
                check_and_apply(
                    self._state,
                    raw,
                    height,
                    first_index + offset,
                    self.ledger.chain_id,
                    verify_signature=False,
                )
            except ProtocolError:
                invalid.append(tx_id)
        for tx_id in invalid:
            self._forget(tx_id)
        return invalid

    def _forget(self, tx_id: bytes) -> None:
        raw = self._pending.pop(tx_id, None)
        if raw is None:
            return
        self._front.pop(tx_id, None)
        self._deferred.pop(tx_id, None)
        self._bytes -= len(raw)
        signer = self._signer_of.pop(tx_id)
        left = self._per_signer[signer] - 1
        if left:
            self._per_signer[signer] = left
        else:
            del self._per_signer[signer]
