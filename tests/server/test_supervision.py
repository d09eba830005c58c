"""The node's supervision service following a chain as it grows: block by block, across a
month boundary (the open period is only peeked at, never closed), it must end where one
`supervise` pass over the finished chain ends; with a cap on kept signals, counts stay
exact. Real LevelDB on both sides: the node's store and the service's scratch replay."""

from __future__ import annotations

import time
from pathlib import Path

from almoner.node.audit.supervise.engine import supervise
from almoner.node.chain import schema
from almoner.node.chain.codec import encode
from almoner.node.chain.genesis import load_genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.chain.supervision import thresholds
from almoner.node.server.supervision import RULES, SupervisionService
from tests.explorer.chain import build_chain


def wait_until(service: SupervisionService, height: int) -> None:
    deadline = time.monotonic() + 30
    service.want()
    while service.snapshot.height < height:
        assert service.error is None, service.error
        assert time.monotonic() < deadline, "the service did not catch up"
        time.sleep(0.01)


def test_following_block_by_block_ends_where_one_pass_ends(tmp_path: Path) -> None:
    built = build_chain(tmp_path / "built")
    genesis = load_genesis(built.genesis_path)
    finished = LevelStore(built.home / "data")
    growing = LevelStore(tmp_path / "node")
    try:
        blocks = list(Ledger(finished, genesis).iter_blocks())
        node = Ledger(growing, genesis)
        service = SupervisionService(node, genesis, "node-under-test")
        capped = SupervisionService(node, genesis, "capped", max_signals=5)
        try:
            for block, cert in blocks:
                node.commit(node.execute_block(block), cert)
                wait_until(service, node.head.height)
            wait_until(capped, node.head.height)  # catches up in one go
            assert service.computed_by() == {
                "node": "node-under-test",
                "height": built.height,
                "block_hash": node.head.block_hash.hex(),
                "head": built.height,
                "complete": True,
                "error": None,
            }
            report = supervise(genesis, [encode({"block": b, "commit": c}) for b, c in blocks])
            expected = report.to_json()
            snap = service.snapshot
            got = [s.to_json(snap.names[s.party.hex()]) for s in snap.signals]
            assert got == expected["signals"] and len(got) > 50
            assert [s.to_json() for s in snap.scores] == expected["scores"]
            assert snap.counts == {rule: expected["counts"].get(rule, 0) for rule in RULES}
            assert snap.dropped == 0
            # Capped: only the newest raised signals are kept, the counts stay exact.
            assert capped.snapshot.counts == snap.counts
            kept = capped.snapshot.signals
            provisional = len(kept) - 5
            assert 0 <= provisional < len(got)
            assert capped.snapshot.dropped == sum(snap.counts.values()) - len(kept)
        finally:
            service.stop()
            capped.stop()
        assert service.snapshot.height == built.height  # stop keeps the last answer
    finally:
        finished.close()
        growing.close()


def test_a_broken_store_stops_the_analysis_not_the_node(tmp_path: Path) -> None:
    built = build_chain(tmp_path / "built")
    genesis = load_genesis(built.genesis_path)
    store = LevelStore(built.home / "data")
    try:
        ledger = Ledger(store, genesis)
        store.write({schema.BLOCK + schema.u64(3): None})  # a block lost, as a bad disk does
        service = SupervisionService(ledger, genesis, "n")
        service.want()
        deadline = time.monotonic() + 30
        while service.error is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "block 3" in service.error
        assert service.computed_by()["error"] == service.error
        service.want()  # asking again changes nothing
        service.stop()
    finally:
        store.close()


def test_a_node_configured_with_its_own_thresholds_and_periods_matches_the_cli(
    tmp_path: Path,
) -> None:
    """`supervision_rules` and `supervision_period` reach the node's view: with a strict
    overhead limit and quarters, the node says what `supervise --rules --period quarter`
    says, and something different from the defaults."""
    built = build_chain(tmp_path / "built")
    genesis = load_genesis(built.genesis_path)
    rules = tmp_path / "rules.toml"
    rules.write_text('[overhead_above_limit]\nlimit = 0.01\nseverity = "high"\n')
    settings = thresholds.load(rules)
    store = LevelStore(built.home / "data")
    try:
        ledger = Ledger(store, genesis)
        items = [encode({"block": b, "commit": c}) for b, c in ledger.iter_blocks()]
        service = SupervisionService(ledger, genesis, "n", granularity="quarter", settings=settings)
        try:
            wait_until(service, ledger.head.height)
            snap = service.snapshot
            got = [s.to_json(snap.names[s.party.hex()]) for s in snap.signals]
        finally:
            service.stop()
    finally:
        store.close()
    expected = supervise(genesis, items, settings=settings, granularity="quarter").to_json()
    default = supervise(genesis, items).to_json()
    assert got == expected["signals"]
    assert got != default["signals"]
    overhead = [s for s in got if s["rule"] == "overhead_above_limit"]
    assert overhead and all(s["severity"] == "high" for s in overhead)
    assert all("Q" in s["period"] for s in overhead), overhead[0]["period"]
