"""Secondary indexes: written in the block's own batch, and built on open for an older store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from almoner.node.chain import schema
from almoner.node.chain.genesis import load_genesis
from almoner.node.chain.ledger import Ledger
from almoner.node.chain.store import LevelStore
from almoner.node.errors import StoreError
from tests.explorer.chain import build_chain


def index_entries(store: LevelStore) -> dict[bytes, bytes]:
    return dict(store.iterate(schema.IX_PREFIX))


def test_a_block_and_its_index_entries_are_one_write(tmp_path: Path) -> None:
    """Every index entry present after a commit names a committed block; none is missing."""
    built = build_chain(tmp_path)
    store = LevelStore(built.home / "data")
    try:
        ledger = Ledger(store, load_genesis(built.genesis_path))
        heights = {
            schema.from_u64(k[len(schema.IX_HEIGHT_TIME) :])
            for k, _ in store.iterate(schema.IX_HEIGHT_TIME)
        }
        assert heights == set(range(1, ledger.head.height + 1))
        donations = list(store.iterate(schema.IX_DONATIONS))
        assert len(donations) == len(list(store.iterate(schema.DONATION)))
    finally:
        store.close()


def test_an_older_store_gets_its_indexes_built_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built = build_chain(tmp_path)
    genesis = load_genesis(built.genesis_path)
    store = LevelStore(built.home / "data")
    try:
        expected = index_entries(store)
        assert len(expected) > 100
        # Make it a schema-1 store: no indexes, older version; plus a stray entry an
        # interrupted upgrade could have left, which must not survive or double-count.
        changes: dict[bytes, bytes | None] = dict.fromkeys(expected)
        changes[schema.META_SCHEMA_VERSION] = schema.u64(1)
        changes[schema.IX_CHARITY_COUNTS + b"\x00" * 32] = b"\x01"
        store.write(changes)
        head_before = store.get(schema.META_HEAD)
        with caplog.at_level(logging.INFO, logger="almoner.indexes"):
            ledger = Ledger(store, genesis)
        assert "query indexes built over 8 blocks" in caplog.text
        assert index_entries(store) == expected
        assert store.get(schema.META_SCHEMA_VERSION) == schema.u64(schema.SCHEMA_VERSION)
        assert store.get(schema.META_HEAD) == head_before and ledger.head.height == built.height
    finally:
        store.close()


def test_a_store_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    built = build_chain(tmp_path)
    store = LevelStore(built.home / "data")
    try:
        store.write({schema.META_SCHEMA_VERSION: schema.u64(99)})
        with pytest.raises(StoreError, match="schema version 99"):
            Ledger(store, load_genesis(built.genesis_path))
    finally:
        store.close()
