"""Group commit never weakens persist-before-send: the real driver on a real LevelDB,
validator 0 of two (the test plays validator 1, echoing each of its votes), and every
proposal and vote it sends is, at that moment, either among the signed messages of the
consensus state on disk or for a height already committed, whether the driver wrote that
state on the event loop (a fast disk, small blocks) or on its store worker. A store that
fails stops the driver before anything is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import plyvel
import pytest

from almoner.consensus import Vote, parse_message
from almoner.node.chain import schema
from almoner.node.chain.codec import decode
from almoner.node.chain.consensus_crypto import NodeSigner
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.server import driver as driver_module
from almoner.node.server.driver import CONSENSUS_STATE_KEY as WAL_KEY
from almoner.node.server.driver import INLINE_TXS, Driver
from almoner.node.server.mempool import Mempool
from almoner.node.server.metrics import Metrics
from almoner.node.server.notifier import CommitNotifier
from almoner.node.server.transport import Transport
from bench.workload import make_parties, mixed_txs


class DurabilityCheckingTransport(Transport):
    """Records each consensus message sent with what the disk held at that moment, and
    answers each vote with the same vote from the other validator."""

    def __init__(self, store: LevelStore, client: httpx.AsyncClient, peer: KeyPair) -> None:
        super().__init__("unused", {}, None, client)
        self.store = store
        self.peer = peer
        self.driver: Driver | None = None
        self.sent: list[tuple[dict[str, Any], dict[str, Any] | None, int]] = []

    def broadcast(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "txs":
            return
        raw = self.store.get(WAL_KEY)
        record = decode(raw, max_size=1 << 26) if raw is not None else None
        head = self.store.get(schema.META_HEAD)
        committed = decode(head)["height"] if head is not None else 0
        self.sent.append((msg, record, committed))
        if msg["type"] == "vote" and self.driver is not None:
            mine = parse_message(msg["vote"])
            assert isinstance(mine, Vote)
            echo = NodeSigner(self.peer).sign_vote(
                Vote(
                    mine.kind,
                    mine.chain,
                    mine.height,
                    mine.round,
                    mine.block_hash,
                    self.peer.public_key,
                )
            )
            self.driver.deliver(self.peer.public_key, {"type": "vote", "vote": echo.to_map()})


class FailingStore(LevelStore):
    """A real LevelDB whose disk fails at the first consensus-state save."""

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if WAL_KEY in changes:
            raise_backend_error()
        super().write(changes, sync=sync)


class ThreadRecordingStore(LevelStore):
    """A real LevelDB that notes which thread wrote each consensus state (alone or in a
    block's commit), and whose synced writes can be slow."""

    def __init__(self, path: Path, delay_s: float = 0.0) -> None:
        super().__init__(path)
        self.delay_s = delay_s
        self.synced_on: list[str] = []

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        if WAL_KEY in changes:
            self.synced_on.append(threading.current_thread().name)
        if sync:
            time.sleep(self.delay_s)
        super().write(changes, sync=sync)


def raise_backend_error() -> None:
    from almoner.node.chain.store import _backend

    with _backend(Path("/dev/full"), "write"):
        raise plyvel.IOError("No space left on device")


async def run_chain(
    store: LevelStore, blocks: int, per_block: int = 40
) -> tuple[Driver, DurabilityCheckingTransport]:
    parties = make_parties(n_validators=2)
    fast = {**parties.genesis.params, "timeout_propose_ms": 50, "timeout_delta_ms": 10}
    ledger = Ledger(store, dataclasses.replace(parties.genesis, params=fast))
    mempool = Mempool(ledger, 10_000, 1 << 26)
    async with httpx.AsyncClient() as client:
        transport = DurabilityCheckingTransport(store, client, parties.validators[1])
        driver = Driver(
            ledger, mempool, transport, parties.validators[0], CommitNotifier(), Metrics(), 5
        )
        transport.driver = driver
        driver.start()
        txs = mixed_txs(parties, per_block * blocks)
        try:
            for start in range(0, len(txs), per_block):
                for raw in txs[start : start + per_block]:
                    mempool.add(raw)
                target = ledger.head.height + 1
                for _ in range(1000):
                    if ledger.head.height >= target or driver.stopped.is_set():
                        break
                    await asyncio.sleep(0.01)
                if driver.stopped.is_set():
                    break
        finally:
            await driver.stop()
    return driver, transport


@pytest.mark.parametrize("per_block", [40, 8])
def test_every_message_leaves_after_the_state_that_signed_it_is_on_disk(
    tmp_path: Path, per_block: int
) -> None:
    store = LevelStore(tmp_path / "db")
    try:
        driver, transport = asyncio.run(run_chain(store, blocks=5, per_block=per_block))
        assert store.get(schema.META_HEAD) is not None
        assert driver.ledger.head.height >= 5
    finally:
        store.close()
    kinds = {
        msg["type"] if msg["type"] == "proposal" else msg["vote"]["kind"]
        for msg, _, _ in transport.sent
    }
    assert kinds == {"proposal", "prevote", "precommit"}
    # Messages were sent while their height was still open (not all after a commit).
    assert any(body_of(msg)["height"] > committed for msg, _, committed in transport.sent)
    for msg, record, committed in transport.sent:
        body = body_of(msg)
        durable = record is not None and body in record["own"]
        assert durable or body["height"] <= committed, (body, record, committed)


def test_a_failing_store_stops_the_driver_before_anything_is_sent(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "db")
    try:
        driver, transport = asyncio.run(run_chain(store, blocks=1))
    finally:
        store.close()
    assert driver.fatal is not None and "No space left" in driver.fatal
    assert transport.sent == []
    assert driver.ledger.head.height == 0


def test_small_writes_stay_on_the_event_loop_while_the_disk_is_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Fast" is a threshold no write here reaches: a real fsync on a busy CI disk may
    well take over the 20 ms default, and that must not decide the test."""
    monkeypatch.setattr(driver_module, "INLINE_WRITE_S", 10.0)
    store = ThreadRecordingStore(tmp_path / "db")
    try:
        driver, _ = asyncio.run(run_chain(store, blocks=3, per_block=INLINE_TXS // 2))
    finally:
        store.close()
    assert driver.ledger.head.height >= 3
    assert store.synced_on and set(store.synced_on) == {threading.main_thread().name}


def test_a_slow_disk_sends_the_writes_back_to_the_store_worker(tmp_path: Path) -> None:
    """One 120 ms write lifts the moving average past INLINE_WRITE_S (20 ms): the first
    state save is made on the loop (nothing measured yet), none after the second."""
    store = ThreadRecordingStore(tmp_path / "db", delay_s=0.12)
    try:
        driver, _ = asyncio.run(run_chain(store, blocks=3, per_block=INLINE_TXS // 2))
    finally:
        store.close()
    assert driver.ledger.head.height >= 3
    on_loop = [name == threading.main_thread().name for name in store.synced_on]
    assert on_loop[0], store.synced_on
    assert len(on_loop) > 4 and not any(on_loop[2:]), store.synced_on


def body_of(msg: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = msg["proposal"] if msg["type"] == "proposal" else msg["vote"]
    return body
