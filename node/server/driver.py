"""The consensus driver: the one task that owns the machine and commits blocks.

Everything that changes the chain goes through one asyncio task reading one inbox, so
the machine, the ledger and the mempool never see interleaved updates: consensus
messages, ticks, and blocks fetched by catch-up are all events in that inbox.

Group commit: the driver handles every event already queued (up to GROUP_MAX), then makes
the machine's newest state durable with one fsync and only then releases the messages
that state produced, as `consensus/` requires (a state is a whole snapshot, so the newest
covers every earlier one). A state save pending when a block commits rides in the block's
synced batch, and what it produced leaves right after that commit, before the next height
begins. Persisting is fail-stop: if the consensus state cannot be written (or a block
cannot be committed), the driver stops before sending anything that depends on it and
`/healthz` turns unhealthy; a restart on a healthy store resumes from the last durable
record, so the validator never signs a second, different message for one (height, round,
kind). As a second line, an own message is sent only if it is in the last record known to
be durable.

Blocking work (fsync, block building and execution, the signature checks of a proposed or
fetched block, the commit) runs on one worker thread that owns the store's writes, so the
event loop keeps answering HTTP while a large block executes. Small steps run on the event
loop instead, where the two thread hand-offs would cost more than the work: a block of at
most INLINE_TXS txs is executed there, and a state save or such a block's commit is
written there while the recent synced writes have averaged under INLINE_WRITE_S (a slow
disk sends them back to the worker). The driver awaits each step before its next one,
wherever it ran, so its own order is unchanged. Heights start lazily: after a
commit the next height begins only when there is work (pending txs, a message from a peer
for that height, or the heartbeat falling due), so an idle network does not spin through
empty rounds (docs/spec/05-chain.md, "no empty blocks").

Pipelining: the next proposer builds its block while the height before is decided
(`BlockAhead`, node/server/ahead.py). After its commit it holds the proposal for a few
milliseconds at most, until the clients that commit answered have sent their next txs
(`CommitGather`, node/server/gather.py), so that they ride in this height, not the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeGuard, TypeVar

from almoner.consensus import (
    Decision,
    Machine,
    Message,
    MessageError,
    Params,
    PersistedStateError,
    Proposal,
    ProposalRequest,
    Ready,
    ValidityRequest,
    Vote,
    parse_message,
)
from almoner.consensus import Evidence as EvidenceFound
from almoner.consensus.messages import proposer_index
from almoner.node.chain import schema
from almoner.node.chain.certified import check_certified_block
from almoner.node.chain.codec import decode, encode
from almoner.node.chain.consensus_crypto import NodeSigner, NodeVerifier
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.ledger import (
    BlockBuilder,
    BlockError,
    ExecutedBlock,
    Ledger,
    UpgradeRequired,
)
from almoner.node.chain.signing import block_hash
from almoner.node.chain.state import evidence_key
from almoner.node.chain.tx import encode_tx, make_tx
from almoner.node.errors import AlmonerError, ProtocolError, StoreError
from almoner.node.server.ahead import BlockAhead
from almoner.node.server.gather import DEFAULT_WINDOW_MS, CommitGather
from almoner.node.server.mempool import Mempool
from almoner.node.server.metrics import Metrics
from almoner.node.server.notifier import CommitNotifier
from almoner.node.server.tasks import cancel_all
from almoner.node.server.transport import Transport

log = logging.getLogger("almoner.driver")
T = TypeVar("T")

CONSENSUS_STATE_KEY = schema.CONSENSUS_STATE + b"state"
INBOX_MAX = 50_000
MAX_FUTURE_SKEW_MS = 30_000
MAX_BLOCKS_KEPT = 64
# Events handled before one state save and one release of messages: enough to take a
# burst of votes at once, few enough that saves stay frequent under a flood.
GROUP_MAX = 256
# Proposals are kept (their blocks buffered) only up to this many heights past the next,
# the window in which the machine buffers messages (Params.heights_ahead): a validator a
# few heights behind decides them from what it holds; further ahead, catch-up fetches.
LOOKAHEAD_HEIGHTS = Params().heights_ahead
# Room a block's header, list framing and certificate take beyond its txs' bytes.
BLOCK_OVERHEAD_BYTES = 64 * 1024
# Seen-but-uncommitted evidence is forgotten this many heights after the offence.
EVIDENCE_KEEP_HEIGHTS = 10_000
MAX_PENDING_EVIDENCE = 1024
# A proposal is completed on the event loop when at most this many pending txs are not
# yet in the block built ahead, and the block stays this small; else on the store worker.
INLINE_TXS = 16
INLINE_BLOCK_TXS = 256
# A block of at most INLINE_TXS txs is checked, and a state save or such a block's commit
# is written, on the event loop while these writes have lately taken less than this: two
# thread hand-offs (on a busy machine, two waits for a core) cost more than the loop's
# wait for a disk this fast (LevelDB's write releases the GIL, so the other threads and
# processes run meanwhile). Timed under load, one fsync here often takes 1 to 5 ms; a
# disk slower than this (a spinning or network disk) sends the writes to the store worker.
INLINE_WRITE_S = 0.02
WRITE_AVERAGE_WEIGHT = 0.2


def _complete(
    builder: BlockBuilder,
    candidates: list[bytes],
    verified: Container[bytes],
    *,
    heartbeat: bool,
    time_ms: int,
    proposer: bytes,
) -> tuple[ExecutedBlock | None, list[bytes]]:
    """Top the block up with the candidates and finish it, unless it would be empty and
    no heartbeat is due; also the ids of the candidates the contract refused."""
    builder.add(candidates, verified)
    if not builder.tx_ids and not heartbeat:
        return None, [tid for tid, _ in builder.take_rejected()]
    executed = builder.finish(time_ms=time_ms, proposer=proposer)
    return executed, [tid for tid, _ in executed.rejected]


class DriverError(AlmonerError):
    """The driver was asked for consensus work it cannot do (it runs no machine)."""


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class PeerMessage:
    sender: bytes
    msg: dict[str, Any]


class Unsaved(NamedTuple):
    """The machine's newest state not yet on disk, and the own messages it holds."""

    record: dict[str, Any]
    own: tuple[Message, ...]


@dataclass(frozen=True)
class SyncedBlock:
    block: Any
    cert: Any
    source: str


def _height_of(block: dict[str, Any]) -> int:
    height = block["header"].get("height")
    return height if isinstance(height, int) and not isinstance(height, bool) else 0


def _is_gossip(event: Tick | PeerMessage | SyncedBlock) -> TypeGuard[PeerMessage]:
    return isinstance(event, PeerMessage) and event.msg.get("type") == "txs"


def wall_ms() -> int:
    return int(time.time() * 1000)


class Driver:
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        transport: Transport,
        key: KeyPair | None,
        notifier: CommitNotifier,
        metrics: Metrics,
        tick_ms: int = 10,
        gather_ms: int = DEFAULT_WINDOW_MS,
    ) -> None:
        self.ledger = ledger
        self.mempool = mempool
        self.transport = transport
        self.key = key
        self.notifier = notifier
        self.metrics = metrics
        self.tick_ms = tick_ms
        self.params = ledger.genesis.params
        self.verifier = NodeVerifier()
        self.inbox: asyncio.Queue[Tick | PeerMessage | SyncedBlock] = asyncio.Queue(INBOX_MAX)
        self.machine: Machine | None = None
        self.is_validator = key is not None and key.public_key in ledger.validators(
            ledger.head.height + 1
        )
        self._blocks: dict[bytes, dict[str, Any]] = {}
        self._executed: dict[bytes, ExecutedBlock] = {}
        self._proposal_request: ProposalRequest | None = None
        self._idle = False
        self._peer_work_seen = False
        self._restored = False
        self._last_tick = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self.pending_evidence: dict[bytes, dict[str, Any]] = {}
        self._sync_refused: dict[str, int] = {}  # catch-up source -> blocks refused
        self.stopped = asyncio.Event()
        self.fatal: str | None = None
        self.store_failed = False
        # Own messages in the last record that reached the disk: the only ones sendable.
        self._durable_own: set[Message] = set()
        # The machine's newest state not yet on disk, and the messages waiting for it.
        self._unsaved: Unsaved | None = None
        self._outbox: list[tuple[Proposal | Vote, bytes | None]] = []
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="almoner-store")
        self._gather = CommitGather(gather_ms / 1000)
        self._held_since: float | None = None  # a proposal waits for arrivals since then
        self._gather_timer: asyncio.TimerHandle | None = None
        self._write_s = 0.0  # moving average of recent synced writes (INLINE_WRITE_S)
        self._ahead = BlockAhead(ledger, mempool, self.params, INLINE_TXS)  # pipelining
        # The head height whose successor's set and version were last looked at.
        self._followed = -1

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._follow_chain()
        for task in (
            asyncio.create_task(self._run(), name="driver"),
            asyncio.create_task(self._ticker(), name="ticker"),
        ):
            task.add_done_callback(self._task_ended)
            self._tasks.append(task)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """The driver's tasks run until they are cancelled. One that ends otherwise leaves
        a validator that answers /healthz but never votes again, which its peers see only
        as a missing vote: stop loudly instead (/healthz turns 503 with the reason)."""
        if task.cancelled() or self.stopped.is_set():
            return
        exc = task.exception()
        log.error("the driver's %s task ended", task.get_name(), exc_info=exc)
        self._tasks.remove(task)  # reported here: stop() must not raise it again
        self._fail_stop(f"the {task.get_name()} task ended: {exc!r}")

    async def stop(self) -> None:
        """Cancel the tasks, then wait for the store worker's current job (a commit or a
        state write is one atomic batch) so the store can be closed after this."""
        await cancel_all(self._tasks)
        self._end_hold()
        await asyncio.to_thread(self._worker.shutdown, True)
        await self._ahead.close()

    async def _off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking store or CPU work on the store worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, functools.partial(fn, *args, **kwargs))

    async def _blocking(self, inline: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Cheap blocking work here, the rest on the store worker; the driver awaits it
        either way, so its order does not depend on where it ran."""
        return fn(*args, **kwargs) if inline else await self._off_loop(fn, *args, **kwargs)

    async def _synced_write(
        self, small: bool, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """A write that ends in an fsync: a small one here while such writes are fast."""
        if not small:
            return await self._off_loop(fn, *args, **kwargs)
        inline = self._write_s < INLINE_WRITE_S
        return await self._blocking(inline, self._timed_write, fn, *args, **kwargs)

    def _timed_write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Timed where it runs, so a hand-off's wait never counts against the disk."""
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            self._write_s += (elapsed - self._write_s) * WRITE_AVERAGE_WEIGHT

    def _running_machine(self) -> Machine:
        if self.machine is None:
            raise DriverError("no consensus machine runs here (an observer, or stopped)")
        return self.machine

    def _start_machine(self) -> None:
        if self.key is None:
            raise ValueError("only a validator (a node with a key) runs the consensus machine")
        params = Params.from_genesis(self.params)
        signer = NodeSigner(self.key)
        next_height = self.ledger.head.height + 1
        validators = self.ledger.validators(next_height)
        raw = self.ledger.store.get(CONSENSUS_STATE_KEY)
        try:
            record = decode(raw, max_size=1 << 26) if raw is not None else None
        except ProtocolError as exc:
            raise StoreError(f"the stored consensus state does not decode: {exc}") from exc
        chain = self.ledger.chain_id
        self._restored = isinstance(record, dict) and record.get("height") == next_height
        if isinstance(record, dict) and self._restored:
            try:
                self.machine = Machine.restore(
                    record, chain, signer, self.verifier, validators, params
                )
            except PersistedStateError as exc:
                raise StoreError(f"the stored consensus state is unusable: {exc}") from exc
            self._durable_own = set(self.machine.persisted().own)
            log.info("resumed consensus at height %d from the persisted state", next_height)
        else:
            self.machine = Machine(chain, signer, self.verifier, next_height, validators, params)
        self._idle = True

    def _follow_chain(self) -> None:
        """Once per new head: halt before a protocol version this node does not run, and
        join or leave consensus as governance changes the set (docs/governance.md)."""
        head = self.ledger.head.height
        if head == self._followed:
            return
        self._followed = head
        next_height = head + 1
        try:
            self.ledger.require_supported(next_height)
        except UpgradeRequired as exc:
            log.error("consensus halted: %s", exc.message)
            self.fatal = exc.message
            self.machine = None
            self.is_validator = False
            self.stopped.set()
            return
        if self.key is None:
            return
        member = self.key.public_key in self.ledger.validators(next_height)
        if member and self.machine is None:
            log.info("this node is a validator from height %d", next_height)
            self.is_validator = True
            self._start_machine()
        elif not member and self.machine is not None:
            log.info("this node left the validator set at height %d; observing", next_height)
            self.machine = None
            self.is_validator = False
            self._proposal_request = None

    # -- inputs ---------------------------------------------------------------------
    def deliver(self, sender: bytes, msg: dict[str, Any]) -> bool:
        """Queue a peer's message; False when the inbox is full or the store has failed
        (the API answers 503)."""
        if self.store_failed:
            return False
        try:
            self.inbox.put_nowait(PeerMessage(sender, msg))
        except asyncio.QueueFull:
            return False
        return True

    def deliver_blocks(self, items: list[tuple[Any, Any]], source: str) -> bool:
        """Queue a fetched batch whole, or none of it (False): a batch cut short by a full
        inbox would make its later blocks unlinkable, and count against an honest peer."""
        if self.store_failed or self.inbox.maxsize - self.inbox.qsize() < len(items):
            return False
        for block, cert in items:
            self.inbox.put_nowait(SyncedBlock(block, cert, source))
        return True

    def sync_refusals(self, source: str) -> int:
        """Blocks from this catch-up source refused so far: catch-up strikes the peer."""
        return self._sync_refused.get(source, 0)

    def _refuse_synced(self, source: str) -> None:
        self._sync_refused[source] = self._sync_refused.get(source, 0) + 1
        if len(self._sync_refused) > 1024:  # sources are configured peers; stay bounded
            self._sync_refused.clear()

    def nudge(self) -> None:
        """Txs were just admitted: an idle driver starts the next height now rather than at
        its next tick (up to tick_ms of latency for a lone submission), and a proposal held
        for arrivals (`_gathering`) is looked at again."""
        if (self._idle or self._held_since is not None) and self.machine is not None:
            self._tick_now()
        self._ahead.fill()

    def _tick_now(self) -> None:
        if self.inbox.empty():
            with contextlib.suppress(asyncio.QueueFull):
                self.inbox.put_nowait(Tick())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            if self.inbox.empty():
                with contextlib.suppress(asyncio.QueueFull):
                    self.inbox.put_nowait(Tick())

    async def _run(self) -> None:
        try:
            if self.machine is not None and self._restored:
                self._idle = False
                await self._process(self.machine.start())
            await self._flush()
            while True:
                batch = [await self.inbox.get()]
                while len(batch) < GROUP_MAX and not self.inbox.empty():
                    batch.append(self.inbox.get_nowait())
                with self._contained("a group of events", len(batch)):
                    await self._run_group(batch)
        except StoreError as exc:
            self._outbox.clear()  # produced by a state that is not on disk: never sent
            self._fail_stop(str(exc))

    async def _run_group(self, batch: list[Tick | PeerMessage | SyncedBlock]) -> None:
        # Consensus first, and its messages out, before the gossiped txs of the same group
        # are admitted: a vote must not wait behind a burst of txs.
        gossip = [e for e in batch if _is_gossip(e)]
        for event in batch:
            if not _is_gossip(event):
                await self._handle_logged(event)
        if gossip and len(gossip) < len(batch):
            await self._flush()
        if gossip:
            for event in gossip:
                self._admit_gossip(event)
            self._ahead.fill()
            await self._handle_logged(Tick())  # then start or propose once
        await self._flush()

    def _admit_gossip(self, event: PeerMessage) -> None:
        """A peer's txs into the mempool, their contract run deferred (mempool.py); one
        bad tx is refused alone (the mempool's answer), nothing else of the group is
        affected."""
        if self.fatal is not None:
            return
        for raw in event.msg.get("txs") or []:
            if isinstance(raw, bytes):
                with contextlib.suppress(ProtocolError):
                    self.mempool.add(raw, from_peer=True)

    async def _handle_logged(self, event: Tick | PeerMessage | SyncedBlock) -> None:
        with self._contained("an event", event):
            await self._handle(event)

    @contextlib.contextmanager
    def _contained(self, what: str, detail: object) -> Iterator[None]:
        """A bug reached by one event, or by the work between events, must not halt the
        node. Commits are single atomic batches and state writes fail-stop (StoreError goes
        on), so nothing is half-written; the work is dropped and counted, and consensus
        recovers by rebroadcast. `detail` is formatted only if something failed."""
        try:
            yield
        except StoreError:
            raise
        except Exception:
            log.exception("dropped %s the driver could not handle: %r", what, detail)
            self.metrics.inc("almoner_driver_errors_total")

    async def _flush(self) -> None:
        """Save the newest state (one fsync, on the store worker) if an own message about
        to leave is not yet on disk, then send what the states produced, in order.

        A state that signed nothing new is not saved on its own: nothing depends on it
        being durable (a restart that loses it resumes from the last saved record, whose
        own messages it re-sends rather than signing others for the same height, round and
        kind), so it waits for the next save or rides in the next block commit. That is
        one fsync fewer per height (the one at each height's start)."""
        if self._unsaved is not None and self._unsaved_own_pending():
            unsaved, self._unsaved = self._unsaved, None
            await self._persist(unsaved)
        outbox, self._outbox = self._outbox, []
        for message, to in outbox:
            self._send(message, to)

    def _unsaved_own_pending(self) -> bool:
        me = self.key.public_key if self.key is not None else None
        return any(m.sender == me and m not in self._durable_own for m, _ in self._outbox)

    def _fail_stop(self, reason: str) -> None:
        """The store failed (or a driver task died): continuing could sign what is not
        recorded, so stop consensus (no more sends, no more inputs) and let /healthz
        report it."""
        log.error("consensus driver stopped: %s", reason)
        self.fatal = reason
        self.store_failed = True
        self.machine = None
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.stopped.set()

    async def _handle(self, event: Tick | PeerMessage | SyncedBlock) -> None:
        if self.fatal is not None:
            return  # halted for an upgrade: events are drained, nothing is committed
        if isinstance(event, PeerMessage):
            await self._on_peer_message(event)
        elif isinstance(event, SyncedBlock):
            await self._on_synced_block(event)
        self._follow_chain()
        now = time.monotonic()
        elapsed = int((now - self._last_tick) * 1000)
        if self.machine is not None:
            if elapsed > 0:
                self._last_tick = now
                if not self._idle:
                    await self._process(self.machine.tick(elapsed))
            await self._maybe_start_height()
            await self._maybe_propose()

    async def _on_peer_message(self, event: PeerMessage) -> None:
        msg = event.msg
        if msg["type"] == "txs":
            self._admit_gossip(event)
            return
        if self.machine is None:
            return
        body = msg.get(msg["type"])
        try:
            parsed = parse_message(body if isinstance(body, dict) else {})
        except MessageError:
            self.metrics.inc("almoner_p2p_dropped_total", reason="malformed")
            return
        if parsed.sender == event.sender:  # its own message: catch-up learns its height
            self.transport.heard_from(event.sender, parsed.height)
        head = self.ledger.head.height
        if self._idle and head < parsed.height <= head + 1 + LOOKAHEAD_HEIGHTS:
            self._peer_work_seen = True  # a peer started a later height: there is work
        if isinstance(parsed, Proposal):
            block = msg.get("block")
            if not self._keep_block(parsed, block):
                self.metrics.inc("almoner_p2p_dropped_total", reason="block_mismatch")
                return
        await self._process(self.machine.step(parsed))

    def _keep_block(self, proposal: Proposal, block: Any) -> bool:
        """Buffer a proposal's block only once the proposal is credible: within the height
        window, from the round's proposer, validly signed, and of a block no larger than a
        block may be. Checked before anything is stored: an unsigned proposal for height
        10**9 with an 8 MiB block costs a signature check, not 8 MiB held until restart."""
        next_height = self.ledger.head.height + 1
        if proposal.height < next_height:
            return True  # old: the machine drops it; no need to hold its block
        if proposal.block_hash in self._blocks:
            return True
        if proposal.height > next_height + LOOKAHEAD_HEIGHTS:
            return False
        validators = self.ledger.validators(next_height)
        if proposal.height == next_height:
            expected = validators[proposer_index(proposal.height, proposal.round, len(validators))]
            if proposal.proposer != expected:
                return False
        elif proposal.proposer not in validators:  # next height's set may still change
            return False
        if not self.verifier.verify_proposal(proposal):
            return False
        if not isinstance(block, dict) or not isinstance(block.get("header"), dict):
            return False
        try:
            if block_hash(block["header"]) != proposal.block_hash:
                return False
            if len(encode(block)) > self.params["max_block_bytes"] + BLOCK_OVERHEAD_BYTES:
                return False
        except AlmonerError:
            return False
        if len(self._blocks) >= MAX_BLOCKS_KEPT:
            self._blocks.pop(next(iter(self._blocks)))
        self._blocks[proposal.block_hash] = block
        return True

    # -- the Ready loop -------------------------------------------------------------
    async def _process(self, first: Ready) -> None:
        queue = deque([first])
        while queue:
            ready = queue.popleft()
            if ready.persist is not None:  # saved by the next flush or commit
                self._unsaved = Unsaved(ready.persist, ready.persist_own)
            self._outbox.extend((out.message, out.to) for out in ready.send)
            for found in ready.evidence:
                self._on_evidence(found)
            for request in ready.requests:
                if isinstance(request, ProposalRequest):
                    self._proposal_request = request
                elif isinstance(request, ValidityRequest):
                    valid = await self._validate(request.height, request.block_hash)
                    machine = self._running_machine()
                    queue.append(machine.on_validity(request.height, request.block_hash, valid))
            for decision in ready.decided:
                await self._commit_decision(decision)
            for reason in ready.dropped:
                self.metrics.inc("almoner_consensus_dropped_total", reason=reason.split(":")[0])

    async def _persist(self, unsaved: Unsaved) -> None:
        """Write and fsync the consensus state; any failure is fatal (StoreError)."""
        try:
            await self._synced_write(
                True,
                self.ledger.store.write,
                {CONSENSUS_STATE_KEY: encode(unsaved.record)},
                sync=True,
            )
        except StoreError:
            raise
        except Exception as exc:  # not durable, whatever the reason: the same hazard
            raise StoreError(f"cannot persist the consensus state: {exc!r}") from exc
        self._saved(unsaved)

    def _saved(self, unsaved: Unsaved) -> None:
        """The record is on disk (alone, or in a block's batch): its own messages may leave."""
        self._durable_own = set(unsaved.own)
        self.metrics.inc("almoner_consensus_state_saves_total")

    def _send(self, message: Proposal | Vote, to: bytes | None) -> None:
        own = self.key is not None and message.sender == self.key.public_key
        if own and message not in self._durable_own:
            raise StoreError(
                f"refusing to send an own {type(message).__name__.lower()} for height "
                f"{message.height} round {message.round} that is not in the durable state"
            )
        wire = self._wire(message)
        if wire is None:
            return
        if to is None:
            self.transport.broadcast(wire)
        else:
            self.transport.send_to(to, wire)

    def _wire(self, message: Proposal | Vote) -> dict[str, Any] | None:
        if isinstance(message, Vote):
            self.metrics.inc("almoner_consensus_sent_total", kind=message.kind)
            return {"type": "vote", "vote": message.to_map()}
        block = self._blocks.get(message.block_hash)
        if block is None:
            log.warning("no block for own proposal %s", message.block_hash.hex())
            return None
        self.metrics.inc("almoner_consensus_sent_total", kind="proposal")
        return {"type": "proposal", "proposal": message.to_map(), "block": block}

    # -- application answers --------------------------------------------------------
    def _heartbeat_due(self) -> bool:
        return wall_ms() - self.ledger.head.time >= self.params["heartbeat_ms"]

    async def _maybe_start_height(self) -> None:
        if not self._idle or self.machine is None:
            return
        if not (len(self.mempool) or self._peer_work_seen or self._heartbeat_due()):
            return
        self._idle = False
        self._peer_work_seen = False
        height = self.ledger.head.height + 1
        if self.machine.height < height:
            await self._process(self.machine.start_height(height, self.ledger.validators(height)))
        else:
            await self._process(self.machine.start())

    async def _maybe_propose(self) -> None:
        request, machine = self._proposal_request, self.machine
        if request is None or machine is None:
            return
        if request.height != machine.height or request.round != machine.round:
            self._proposal_request = None
            return
        if request.height != self.ledger.head.height + 1:
            return
        heartbeat = self._heartbeat_due()
        if not len(self.mempool) and not heartbeat:
            return
        if self.key is None:
            return  # only a validator gets a ProposalRequest
        if self._gathering(heartbeat):
            return
        started = time.monotonic()
        builder = await self._ahead.take()
        candidates = self.mempool.candidates()
        step = functools.partial(
            _complete,
            builder,
            candidates,
            self.mempool.verified_ids(),
            heartbeat=heartbeat,
            time_ms=max(wall_ms(), self.ledger.head.time + 1),
            proposer=self.key.public_key,
        )
        # Little left to run (the block was built ahead): here, without the two thread
        # hand-offs that cost more than the work; otherwise on the store worker.
        unseen = builder.unseen(candidates)
        small = unseen <= INLINE_TXS and len(candidates) <= INLINE_BLOCK_TXS
        executed, rejected = await self._blocking(small, step)
        if rejected:
            self.mempool.on_commit((), rejected)
        if executed is None:
            self._ahead.keep(builder)  # nothing to propose yet: fill it further next time
            return
        self.metrics.observe("almoner_propose_build_seconds", time.monotonic() - started)
        if builder.ahead:
            self.metrics.inc("almoner_blocks_built_ahead_total")
        self._proposal_request = None
        self._blocks[executed.block_hash] = executed.block
        self._executed[executed.block_hash] = executed
        self._build_ahead(executed)  # a lone validator proposes the next height too
        await self._process(
            machine.propose_value(request.height, request.round, executed.block_hash)
        )

    def _gathering(self, heartbeat: bool) -> bool:
        """Whether the proposal waits for the clients the last commit answered. While it
        does, a timer ticks when the wait runs out and each arrival ticks (`nudge`)."""
        now = time.monotonic()
        full = heartbeat or len(self.mempool) >= self.params["max_block_txs"]
        wait = self._gather.wait_s(now, self.mempool.arrivals, full)
        if wait <= 0:
            if self._held_since is not None:
                self.metrics.observe("almoner_propose_gather_seconds", now - self._held_since)
            self._end_hold()
            return False
        if self._held_since is None:
            self._held_since = now
        if self._gather_timer is None:
            self._gather_timer = asyncio.get_running_loop().call_later(wait, self._gather_due)
        return True

    def _gather_due(self) -> None:
        self._gather_timer = None
        self._tick_now()

    def _end_hold(self) -> None:
        self._held_since = None
        if self._gather_timer is not None:
            self._gather_timer.cancel()
            self._gather_timer = None

    # -- pipelining -----------------------------------------------------------------
    def _build_ahead(self, executed: ExecutedBlock) -> None:
        if self.key is not None and self.machine is not None:
            self._ahead.start(executed, self.key.public_key)

    async def _validate(self, height: int, hash_: bytes) -> bool:
        if hash_ in self._executed:
            return True
        block = self._blocks.get(hash_)
        if block is None or height != self.ledger.head.height + 1:
            return False
        if block["header"].get("time", 0) > wall_ms() + MAX_FUTURE_SKEW_MS:
            return False
        try:
            txs = block.get("txs")  # a peer's: execute_block judges what it really is
            executed = await self._blocking(
                isinstance(txs, list) and len(txs) <= INLINE_TXS,
                self.ledger.execute_block,
                block,
                verified=self.mempool.verified_ids(),
            )
        except BlockError as exc:
            log.warning("refusing block %s at height %d: %s", hash_.hex()[:16], height, exc)
            self.metrics.inc("almoner_blocks_refused_total", rule=exc.rule)
            return False
        self._executed[hash_] = executed
        self._build_ahead(executed)
        return True

    async def _commit_decision(self, decision: Decision) -> None:
        executed = self._executed.get(decision.block_hash)
        if executed is None and await self._validate(decision.height, decision.block_hash):
            executed = self._executed[decision.block_hash]
        if executed is None:
            # We never saw the block: catch-up fetches it with its certificate.
            log.info("decided height %d without its block; waiting for catch-up", decision.height)
            return
        await self._commit(executed, decision.certificate.to_map())

    async def _commit(self, executed: ExecutedBlock, cert: dict[str, Any]) -> None:
        started = time.monotonic()
        unsaved, also = self._unsaved, None
        if unsaved is not None:
            also = {CONSENSUS_STATE_KEY: encode(unsaved.record)}
        try:
            small = len(executed.tx_ids) <= INLINE_TXS
            await self._synced_write(small, self.ledger.commit, executed, cert, also)
        except BlockError as exc:  # executed against a head that has moved on: stale
            log.warning("not committing block %d: %s", executed.height, exc)
            self._executed.pop(executed.block_hash, None)
            return
        if unsaved is not None:  # it rode in the block's batch
            self._unsaved = None
            self._saved(unsaved)
        await self._flush()  # this height's messages leave before the next height's state
        self.mempool.on_commit(executed.tx_ids)
        self.notifier.committed(executed.tx_ids)
        self.metrics.inc("almoner_txs_committed_total", len(executed.tx_ids))
        self.metrics.inc("almoner_blocks_committed_total")
        self.metrics.observe("almoner_commit_seconds", time.monotonic() - started)
        # Keep blocks proposed for later heights: a proposal for the next height often
        # arrives before this commit, and dropping its block would cost a whole round.
        # Executions are against the old head, so none of them stays valid.
        self._blocks = {h: b for h, b in self._blocks.items() if _height_of(b) > executed.height}
        self._prune_evidence()
        self._executed.clear()
        self._ahead.committed(executed.block_hash)
        self._proposal_request = None
        self._idle = True
        self._peer_work_seen = False
        self._end_hold()
        self._gather.committed(time.monotonic(), self.mempool.arrivals, len(executed.tx_ids))

    async def _on_synced_block(self, event: SyncedBlock) -> None:
        header = event.block.get("header") if isinstance(event.block, dict) else None
        height = header.get("height") if isinstance(header, dict) else None
        if not isinstance(height, int) or height > self.ledger.head.height + 1:
            self._refuse_synced(event.source)  # not a block, or one we cannot link yet
            return
        if height != self.ledger.head.height + 1:
            return  # already have it: the syncer asks again from our head
        try:
            executed = await self._off_loop(
                check_certified_block, self.ledger, event.block, event.cert, self.verifier
            )
        except BlockError as exc:
            log.warning("catch-up block from %s refused: %s (%s)", event.source, exc, exc.rule)
            self.metrics.inc("almoner_sync_refused_total", rule=exc.rule)
            self._refuse_synced(event.source)
            return
        await self._commit(executed, event.cert)
        self.metrics.inc("almoner_sync_blocks_total")
        if self.machine is not None and self.machine.height <= self.ledger.head.height:
            self._idle = True

    # -- evidence -------------------------------------------------------------------
    def _prune_evidence(self) -> None:
        """Forget seen evidence once it is committed (it is listed as committed then) or
        too old to matter; /v1/evidence must not grow without bound."""
        head = self.ledger.head.height
        for key, record in list(self.pending_evidence.items()):
            stored = evidence_key(
                record["validator"], record["height"], record["round"], record["kind"]
            )
            old = record["height"] + EVIDENCE_KEEP_HEIGHTS < head
            if old or self.ledger.store.get(stored) is not None:
                del self.pending_evidence[key]

    def _on_evidence(self, found: EvidenceFound) -> None:
        first, second = found.first, found.second
        key = (
            first.validator
            + schema.u64(first.height)
            + schema.u64(first.round)
            + first.kind.encode()
        )
        if key in self.pending_evidence or len(self.pending_evidence) >= MAX_PENDING_EVIDENCE:
            return
        record = {
            "validator": first.validator,
            "height": first.height,
            "round": first.round,
            "kind": first.kind,
            "votes": [first.to_map(), second.to_map()],
        }
        self.pending_evidence[key] = record
        self.metrics.inc("almoner_evidence_total")
        log.warning(
            "equivocation by %s at height %d round %d",
            first.validator.hex(),
            first.height,
            first.round,
        )
        if self.key is None:
            return
        tx = make_tx(
            self.ledger.chain_id,
            "evidence.submit",
            self.key,
            {"votes": record["votes"]},
            nonce=wall_ms(),
        )
        try:
            self.mempool.add(encode_tx(tx))
        except ProtocolError as exc:
            log.info("evidence tx not admitted: %s", exc.code)
        else:
            self.transport.broadcast({"type": "txs", "txs": [encode_tx(tx)]})

    # -- status ---------------------------------------------------------------------
    @property
    def round(self) -> int:
        return self.machine.round if self.machine is not None else 0
