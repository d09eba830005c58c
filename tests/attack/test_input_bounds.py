"""Findings 1, 6 and 8 of issue 14 at the unit level: each original input, now refused
cleanly with its v1 code, and the mempool's fairness rules on a real LevelDB ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from almoner.node.chain.codec import MAX_DEPTH, H, decode, decode_payload, encode, split_array
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.chain.tx import check_tx_shape, decode_tx
from almoner.node.chain.views import trace_view
from almoner.node.errors import CodecError, ProtocolError
from almoner.node.server.mempool import Mempool
from tests.localchain import LOCAL_GENESIS_TIME, LocalChain, LocalKeys, Workload, local_genesis

DEEP = b"\x91" * 1000 + b"\xc0"  # finding 8: arrays nested 1,000 deep
MILLION_NILS = b"\xdd\x00\x0f\x42\x40" + b"\xc0" * 1_000_000  # finding 1


def test_deep_nesting_is_malformed_not_a_recursion_error() -> None:
    for decoder in (decode, decode_payload, decode_tx):
        with pytest.raises(CodecError) as caught:
            decoder(DEEP)
        assert caught.value.code == "malformed"
        assert caught.value.http_status == 400
    # Maps too, and right at the limit it still decodes.
    deep_map = b"\x81\xa1k" * 200 + b"\xc0"
    with pytest.raises(CodecError, match="nested"):
        decode(deep_map)
    at_limit = encode(_nested(MAX_DEPTH - 1))
    assert decode(at_limit) == _nested(MAX_DEPTH - 1)
    with pytest.raises(CodecError, match="nested"):
        decode(encode(_nested(MAX_DEPTH)))


def _nested(depth: int) -> object:
    value: object = None
    for _ in range(depth + 1):
        value = [value]
    return value


def test_a_million_element_batch_is_refused_from_its_header() -> None:
    with pytest.raises(CodecError) as caught:
        split_array(MILLION_NILS)
    assert caught.value.code == "too_large"
    assert caught.value.details == {"items": 1_000_000, "limit": 10_000}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Ledger, Workload, LocalKeys]]:
    genesis, keys = local_genesis()
    store = LevelStore(tmp_path / "db")
    try:
        yield Ledger(store, genesis), Workload(genesis, keys), keys
    finally:
        store.close()


def _donation_body(work: Workload, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "donation": work.next_id("d"),
        "donor": b"\x01" * 32,
        "charity": work.pub("charity-1"),
        "campaign": None,
        "amount": 100,
        "currency": "CNY",
        "received_at": LOCAL_GENESIS_TIME,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": "ZZZ"}, "body.currency"),
        ({"currency": "cny"}, "body.currency"),
        ({"received_at": 1}, "body.received_at"),
        ({"received_at": 5_000_000_000_000}, "body.received_at"),
        ({"amount": 10**15 + 1}, "body.amount"),
    ],
)
def test_domain_values_out_of_range_are_invalid_field(
    setup: tuple[Ledger, Workload, LocalKeys], changes: dict[str, object], field: str
) -> None:
    ledger, work, _ = setup
    raw = work.tx("platform-1", "donation.record", _donation_body(work, **changes))
    with pytest.raises(ProtocolError) as caught:
        check_tx_shape(decode_tx(raw), ledger.chain_id)
    assert caught.value.code == "invalid_field"
    assert caught.value.details == {"field": field}


def test_trace_of_an_overlong_donation_id_is_not_found(
    setup: tuple[Ledger, Workload, LocalKeys],
) -> None:
    ledger, work, _ = setup
    for donation_id in ("x" * 256, "x" * 10_000, "", "caf\u00e9"):
        with pytest.raises(ProtocolError) as caught:
            trace_view(ledger, work.pub("platform-1"), donation_id)
        assert caught.value.code == "not_found"


def test_one_party_cannot_take_every_slot(setup: tuple[Ledger, Workload, LocalKeys]) -> None:
    """Finding 6: the flooder hits its quota; another platform and the regulator get in."""
    ledger, work, keys = setup
    pool = Mempool(ledger, max_txs=40, max_bytes=1 << 30, max_per_party=10, reserved_txs=4)
    for _ in range(10):
        assert pool.add(work.donation("platform-1")).status == "pending"
    with pytest.raises(ProtocolError) as caught:
        pool.add(work.donation("platform-1"))
    assert caught.value.code == "busy"
    assert caught.value.details["quota"] == 10
    assert caught.value.details["retry_after_s"] >= 1
    assert pool.pending_of(keys["platform-1"].public_key) == 10
    assert pool.add(work.donation("platform-2")).status == "pending"


def test_a_full_pool_still_takes_a_suspension(setup: tuple[Ledger, Workload, LocalKeys]) -> None:
    ledger, work, keys = setup
    pool = Mempool(ledger, max_txs=20, max_bytes=1 << 30, max_per_party=10, reserved_txs=2)
    for platform in ("platform-1", "platform-2"):
        for _ in range(10):
            pool.add(work.donation(platform))
    with pytest.raises(ProtocolError, match="mempool is full"):
        pool.add(work.donation("charity-1", charity="charity-2"))  # not a platform: any code
    suspend = work.tx(
        "regulator",
        "party.suspend",
        {"party": keys["platform-1"].public_key, "reason": "flooding"},
    )
    assert pool.add(suspend).status == "pending"
    assert len(pool) == 21
    assert pool.candidates()[0] == suspend, "the suspension goes first in the next block"
    executed = ledger.build_block(
        pool.candidates(),
        time_ms=LOCAL_GENESIS_TIME + 1000,
        proposer=ledger.validators(1)[1],
        max_txs=100,
        max_bytes=1 << 20,
        verified=pool.verified_ids(),
    )
    assert H(suspend) in executed.tx_ids
    refused = {tid for tid, exc in executed.rejected if exc.code == "signer_suspended"}
    assert len(refused) == 10, "the flooder's pending txs fall out with its suspension"
    # Committing frees the flooder's slots and its quota.
    dropped = pool.on_commit(list(pool.verified_ids())[:10])
    assert dropped == []
    assert pool.pending_of(keys["platform-1"].public_key) == 0


def test_trace_hops_are_paged() -> None:
    """Finding 7: a long trace is answered a page of hops at a time."""
    genesis, keys = local_genesis()
    chain = LocalChain(genesis, keys.validators)
    work = Workload(genesis, keys)
    chain.add_block([work.donation(donation_id="long-trace", amount=1000)])
    chain.add_block([work.transfer("charity-1", "charity-2", 10) for _ in range(5)])
    platform = work.pub("platform-1")
    whole = trace_view(chain.ledger, platform, "long-trace")
    assert whole["hops_total"] == 5 and len(whole["hops"]) == 5 and whole["hops_next"] is None
    pages = []
    start: int | None = 0
    while start is not None:
        page = trace_view(chain.ledger, platform, "long-trace", hops_from=start, hops_limit=2)
        assert page["hops_total"] == 5 and len(page["hops"]) <= 2
        assert set(page["proofs"]) >= {hop["tx_id"].hex() for hop in page["hops"]}
        pages.append(page["hops"])
        start = page["hops_next"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [hop for p in pages for hop in p] == whole["hops"]
