"""The two store implementations and the overlay behave identically (bytewise order,
atomic writes), checked against a plain dict model."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almoner.node.chain.store import KVReader, KVStore, LevelStore, MemoryStore, Overlay
from almoner.node.errors import StoreError

# Few distinct bytes, so prefixes, overwrites and deletes of existing keys are common; "/"
# makes schema-like namespaces (b"s/fl/…"), which the overlay indexes separately.
keys = st.lists(st.sampled_from([0, 47, 97, 255]), min_size=1, max_size=5).map(bytes)
ops = st.lists(st.tuples(st.sampled_from(["put", "del"]), keys, st.binary(max_size=8)), max_size=40)


def _model_iter(
    model: dict[bytes, bytes], prefix: bytes, reverse: bool
) -> list[tuple[bytes, bytes]]:
    return sorted(((k, v) for k, v in model.items() if k.startswith(prefix)), reverse=reverse)


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest) -> Iterator[KVStore]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            db = LevelStore(tmp)
            yield db
            db.close()


@settings(max_examples=60)
@given(
    batches=st.lists(ops, max_size=4),
    prefix=st.lists(st.sampled_from([0, 47, 97, 255]), max_size=4).map(bytes),
)
def test_store_matches_model(batches: list[list[tuple[str, bytes, bytes]]], prefix: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[KVStore] = [MemoryStore(), LevelStore(tmp)]
        model: dict[bytes, bytes] = {}
        for batch in batches:
            overlay = Overlay(stores[0])
            changes: dict[bytes, bytes | None] = {}
            for op, key, value in batch:
                if op == "put":
                    changes[key] = value
                    overlay.put(key, value)
                else:
                    changes[key] = None
                    overlay.delete(key)
            # The overlay over the old state must look like the new state.
            expected = dict(model)
            for key, change in changes.items():
                if change is None:
                    expected.pop(key, None)
                else:
                    expected[key] = change
            for reverse in (False, True):
                assert list(overlay.iterate(prefix, reverse=reverse)) == _model_iter(
                    expected, prefix, reverse
                )
            for s in stores:
                s.write(changes)
            model = expected
            for s in stores:
                for reverse in (False, True):
                    assert list(s.iterate(prefix, reverse=reverse)) == _model_iter(
                        model, prefix, reverse
                    )
                for key in model:
                    assert s.get(key) == model[key]
        stores[1].close()


def test_child_overlay_merges_only_when_asked(store: KVStore) -> None:
    store.write({b"a": b"1"})
    parent = Overlay(store)
    child = parent.child()
    child.put(b"b", b"2")
    child.delete(b"a")
    assert parent.get(b"a") == b"1" and parent.get(b"b") is None
    assert child.get(b"a") is None and child.get(b"b") == b"2"
    parent.merge(child)
    assert parent.changes() == {b"a": None, b"b": b"2"}
    assert store.get(b"a") == b"1"
    with pytest.raises(ValueError, match="own parent"):
        Overlay(store).merge(child)


def test_leveldb_persists_across_reopen() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = LevelStore(tmp)
        db.write({b"k": b"v", b"gone": b"x"})
        db.write({b"gone": None})
        db.close()
        again = LevelStore(tmp)
        assert again.get(b"k") == b"v"
        assert again.get(b"gone") is None
        again.close()


def test_leveldb_lock_is_a_clear_error() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = LevelStore(tmp)
        with pytest.raises(StoreError, match="another node process"):
            LevelStore(tmp)
        db.close()


@settings(max_examples=80)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["put", "del", "scan"]), keys), max_size=60),
)
def test_overlay_scans_interleaved_with_writes(steps: list[tuple[str, bytes]]) -> None:
    """Indexes built by an early scan must see every later write, through children too."""
    base = MemoryStore()
    base.write({b"s/a/1": b"x", b"s/b/1": b"y", b"a/": b"z"})
    model = {b"s/a/1": b"x", b"s/b/1": b"y", b"a/": b"z"}
    overlay = Overlay(base)
    for n, (op, key) in enumerate(steps):
        if op == "put":
            child = overlay.child()
            child.put(key, b"%d" % n)
            overlay.merge(child)
            model[key] = b"%d" % n
        elif op == "del":
            overlay.delete(key)
            model.pop(key, None)
        else:
            for reverse in (False, True):
                assert list(overlay.iterate(key, reverse=reverse)) == _model_iter(
                    model, key, reverse
                )


@settings(max_examples=60)
@given(
    data=st.dictionaries(keys, st.binary(max_size=3), max_size=25),
    pending=st.dictionaries(keys, st.none() | st.binary(max_size=3), max_size=10),
    prefix=st.lists(st.sampled_from([0, 47, 97, 255]), max_size=3).map(bytes),
    suffix=st.lists(st.sampled_from([0, 47, 97, 255]), max_size=3).map(bytes),
)
def test_scans_from_a_start_key(
    data: dict[bytes, bytes],
    pending: dict[bytes, bytes | None],
    prefix: bytes,
    suffix: bytes,
) -> None:
    """`start` (a queue's head) skips earlier keys in every implementation alike."""
    start = prefix + suffix
    with tempfile.TemporaryDirectory() as tmp:
        level = LevelStore(tmp)
        memory = MemoryStore()
        for store in (level, memory):
            store.write(data)
        overlay = Overlay(memory)
        merged = dict(data)
        for key, value in pending.items():
            if value is None:
                overlay.delete(key)
                merged.pop(key, None)
            else:
                overlay.put(key, value)
                merged[key] = value
        readers: list[tuple[KVReader, dict[bytes, bytes]]] = [
            (level, data), (memory, data), (overlay, merged),
        ]  # fmt: skip
        for reader, model in readers:
            expected = [(k, v) for k, v in _model_iter(model, prefix, False) if k >= start]
            assert list(reader.iterate(prefix, start=start)) == expected
        level.close()


def test_start_must_extend_the_prefix_and_go_forward() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="start"):
        list(store.iterate(b"a/", start=b"b/"))
    with pytest.raises(ValueError, match="start"):
        list(Overlay(store).iterate(b"a/", reverse=True, start=b"a/1"))


def test_every_method_fails_as_store_error_once_the_backend_fails(store: KVStore) -> None:
    """Fail-stop: a backend failure (here: the database closed under the caller) reaches
    the caller as StoreError, the one error the driver treats as fatal, from every method."""
    store.write({b"a/1": b"x"})
    store.close()
    with pytest.raises(StoreError):
        store.get(b"a/1")
    with pytest.raises(StoreError):
        list(store.iterate(b"a/"))
    with pytest.raises(StoreError):
        store.write({b"a/2": b"y"})


def test_a_failure_mid_scan_is_a_store_error(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "db")
    store.write({b"a/%d" % i: b"x" for i in range(10)})
    scan = store.iterate(b"a/")
    assert next(scan) == (b"a/0", b"x")
    store._db.close()  # the backend goes away while a scan is open
    with pytest.raises(StoreError, match="LevelDB"):
        list(scan)


def test_opening_where_a_file_stands_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "db").write_bytes(b"not a directory")
    with pytest.raises(StoreError, match="cannot open"):
        LevelStore(tmp_path / "db")


def test_leveldb_tables_are_not_compressed(tmp_path: Path) -> None:
    """The ledger's bytes (hashes, keys, signatures) do not compress: Snappy only cost CPU,
    on every compaction and read (LEVELDB_OPTIONS). Zeros would shrink twentyfold under
    it; stored as they are, the tables hold all of them."""
    size = 2 * 1024 * 1024
    store = LevelStore(tmp_path / "db")
    store.write({b"k%03d" % i: bytes(size // 64) for i in range(64)})
    store.close()
    LevelStore(tmp_path / "db").close()  # reopening turns the write-ahead log into a table
    tables = sum(f.stat().st_size for f in (tmp_path / "db").glob("*.ldb"))
    assert tables >= size
