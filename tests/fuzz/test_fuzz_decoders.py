"""Fuzz targets: the canonical decoder, the tx parser and the certified-block check.

The property for each: any input is either accepted or refused with the project's own
error (CodecError / ProtocolError / BlockError / SyncError) — never another exception,
which would be a 500 on the API or a crashed catch-up — and a refused block changes nothing.
Inputs are raw bytes and, more usefully, mutations of valid objects (a flipped byte, a
truncation, a splice, a field replaced by a value of another type).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from almoner.node.chain.certified import SyncError, check_certified_block, parse_block_stream
from almoner.node.chain.codec import decode, decode_payload, encode, split_array, split_stream
from almoner.node.chain.consensus_crypto import NodeVerifier
from almoner.node.chain.contract.engine import check_and_apply
from almoner.node.chain.ledger import BlockError
from almoner.node.chain.store import Overlay
from almoner.node.chain.tx import check_tx_shape, decode_tx
from almoner.node.errors import ProtocolError
from tests.fuzz.conftest import FUZZ, RUNS
from tests.localchain import LocalChain, Workload, local_genesis

GENESIS, KEYS = local_genesis()
WORK = Workload(GENESIS, KEYS)
VALID_TXS = [*WORK.opening(), WORK.donation(), WORK.donation(currency="CNY", charity="charity-2")]


def mutate(data: bytes, draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "splice", "same"]))
    if not data or kind == "same":
        return data
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        extra: bytes = draw(st.binary(min_size=1, max_size=16))
        return data[:at] + extra + data[at:]
    other: bytes = draw(st.sampled_from(VALID_TXS))
    cut: int = draw(st.integers(0, len(other) - 1))
    return data[:at] + other[cut:]


@st.composite
def tx_inputs(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=512))
    return mutate(draw(st.sampled_from(VALID_TXS)), draw)


@FUZZ
@given(st.binary(max_size=2048))
def test_decoder_takes_any_bytes(data: bytes) -> None:
    RUNS["decode(bytes)"] += 1
    for decoder in (decode, decode_payload, split_array, split_stream):
        with contextlib.suppress(ProtocolError):
            decoder(data)


@FUZZ
@given(tx_inputs())
def test_tx_parser_refuses_with_protocol_codes(raw: bytes) -> None:
    RUNS["tx parser"] += 1
    try:
        tx = decode_tx(raw)
        check_tx_shape(tx, GENESIS.chain_id)
    except ProtocolError as exc:
        assert exc.http_status < 500
        return
    assert encode(tx) == raw


@FUZZ
@given(tx_inputs())
def test_contract_pipeline_refuses_with_protocol_codes(raw: bytes) -> None:
    RUNS["contract check_and_apply"] += 1
    chain = LocalChain(GENESIS, KEYS.validators)
    try:
        check_and_apply(Overlay(chain.ledger.store), raw, 1, 0, GENESIS.chain_id)
    except ProtocolError as exc:
        assert exc.http_status < 500


@pytest.fixture(scope="module")
def certified() -> tuple[dict[str, Any], dict[str, Any]]:
    chain = LocalChain(GENESIS, KEYS.validators)
    return chain.add_block(VALID_TXS[:3])


def _replace(value: Any, path: list[Any], new: Any) -> Any:
    if not path or not isinstance(value, dict | list):
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    key = path[0]
    if isinstance(copy, dict):
        copy[key] = _replace(copy.get(key), path[1:], new)
    elif isinstance(key, int) and copy:
        copy[key % len(copy)] = _replace(copy[key % len(copy)], path[1:], new)
    return copy


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=8),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
paths = st.sampled_from(
    [
        ["header", "height"],
        ["header", "prev"],
        ["header", "time"],
        ["header", "proposer"],
        ["header", "tx_count"],
        ["header", "txs_root"],
        ["header", "log_root"],
        ["header", "log_size"],
        ["header", "validators_hash"],
        ["header", "chain"],
        ["header"],
        ["txs"],
        ["txs", 0],
        ["txs", 0, "body"],
        ["txs", 1, "sig"],
        ["commit", "votes"],
        ["commit", "votes", 0, "sig"],
        ["commit", "votes", 1, "validator"],
        ["commit", "height"],
        ["commit", "round"],
        ["commit", "block_hash"],
        ["commit"],
    ]
)


@FUZZ
@given(paths, junk)
def test_block_check_refuses_any_corruption(
    certified: tuple[dict[str, Any], dict[str, Any]], path: list[Any], new: Any
) -> None:
    RUNS["certified block check"] += 1
    block, cert = certified
    item = _replace({"block": block, "commit": cert}, ["block", *path], new)
    if path[0] == "commit":
        item = _replace({"block": block, "commit": cert}, path, new)
    chain = LocalChain(GENESIS, KEYS.validators)
    try:
        check_certified_block(chain.ledger, item["block"], item["commit"], NodeVerifier())
    except BlockError:
        assert chain.height == 0
        return
    assert item == {"block": block, "commit": cert}, "only the unchanged block is accepted"


@FUZZ
@given(st.data())
def test_block_stream_parser_takes_mutated_streams(
    certified: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    RUNS["block stream parser"] += 1
    block, cert = certified
    stream = encode({"block": block, "commit": cert}) * 2
    mutated = mutate(stream, data.draw)
    with contextlib.suppress(SyncError):
        parse_block_stream(mutated, "fuzz")
