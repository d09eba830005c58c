"""One storage interface with two implementations: LevelDB (plyvel) and an in-memory twin.

Everything the ledger keeps goes through `KVStore`. A block and all its consequences are
written with one `write()` call, which is atomic and (for LevelDB) synced, so a crash
leaves either the whole block or none of it. The in-memory twin has the same semantics,
so the contract and the Merkle log are tested against both.

Fail-stop: every method raises `StoreError` and nothing else when the backend fails (a
disk error, corruption, a closed database), so a caller has one error to treat as fatal.
A validator that carried on after a failed write could sign a vote it has not recorded
and, after a restart, sign a different one in the same round.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import plyvel
from sortedcontainers import SortedList

from almoner.node.errors import StoreError

# What plyvel raises: its own errors (IOError is also an OSError), OSError from the
# filesystem, and RuntimeError once the database is closed.
BACKEND_ERRORS = (plyvel.Error, OSError, RuntimeError)


class KVReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys with `prefix` in bytewise order; with `start` (forward only), from the
        first key >= start, so a queue can be read from its head without walking what was
        already consumed."""
        ...


class KVStore(KVReader, Protocol):
    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        """Apply puts (bytes) and deletes (None) atomically."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """In-memory twin of LevelStore: same ordering (bytewise keys), same atomicity.

    The sorted key list is rebuilt lazily on the first iteration after a write, so a
    block's many inserts cost O(1) each instead of a list insertion each. A lock makes a
    write and a scan exclusive, as LevelDB's batches and snapshots are: the node writes
    from its store worker thread while the event loop reads.
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._sorted = True
        self._lock = threading.Lock()
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("the in-memory store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        _check_start(prefix, reverse, start)
        self._check_open()
        with self._lock:
            if not self._sorted:
                self._keys = sorted(self._data)
                self._sorted = True
            first = bisect.bisect_left(self._keys, start or prefix)
            keys: list[bytes] = []
            for key in self._keys[first:]:
                if not key.startswith(prefix):
                    break
                keys.append(key)
            if reverse:
                keys.reverse()
            # Materialise values now: like a LevelDB iterator, this is a snapshot.
            data = self._data
            items = [(key, data[key]) for key in keys]
        yield from items

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        self._check_open()
        with self._lock:
            for key, value in changes.items():
                if value is None:
                    if self._data.pop(key, None) is not None:
                        self._sorted = False
                else:
                    if key not in self._data:
                        self._sorted = False
                    self._data[key] = value

    def close(self) -> None:
        self.closed = True


# LevelDB options (docs/performance.md, "Fifth round"). With LevelDB's defaults, its background
# compactions came to take as much CPU as the node's own work once the ledger held some
# 50,000 txs: a node's CPU per tx nearly doubled as the ledger grew, and the network's
# throughput fell by a third. What the ledger stores is mostly hashes, keys and
# signatures, which Snappy cannot shrink but spends CPU trying, on every compaction and
# every read; a 4 MiB memtable flushed small tables that were merged again and again.
LEVELDB_OPTIONS: dict[str, Any] = {
    "compression": None,
    "write_buffer_size": 32 * 1024 * 1024,  # up to twice this in memory while one flushes
    # Most lookups on the hot path miss (is this tx id or donation id already known?):
    # a filter answers them without reading a block of every level.
    "bloom_filter_bits": 10,
}


class LevelStore:
    """LevelDB through plyvel; `write` is one WriteBatch, synced by default."""

    def __init__(self, path: str | Path) -> None:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
            self._db = plyvel.DB(str(path), create_if_missing=True, **LEVELDB_OPTIONS)
        except plyvel.IOError as exc:
            raise StoreError(
                f"cannot open the LevelDB store at {path}: {exc} "
                "(is another node process using this data directory?)"
            ) from exc
        except plyvel.CorruptionError as exc:
            raise StoreError(f"the LevelDB store at {path} is corrupt: {exc}") from exc
        except BACKEND_ERRORS as exc:
            raise StoreError(f"cannot open the LevelDB store at {path}: {exc}") from exc
        self.path = Path(path)

    def get(self, key: bytes) -> bytes | None:
        # The contract's most frequent call: the boundary inline, not a context manager.
        try:
            value: bytes | None = self._db.get(key)
        except BACKEND_ERRORS as exc:
            raise StoreError(f"LevelDB read failed at {self.path}: {exc}") from exc
        return value

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        _check_start(prefix, reverse, start)
        with _backend(self.path, "scan"):
            yield from self._iterate(prefix, reverse, start)

    def _iterate(
        self, prefix: bytes, reverse: bool, start: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        if start is not None:
            stop = _prefix_end(prefix)
            with self._db.iterator(start=start, stop=stop) as it:
                for key, value in it:
                    if not key.startswith(prefix):
                        return
                    yield key, value
            return
        if reverse:
            # plyvel 1.5's reverse prefix iterator skips a key equal to the prefix when it
            # is the last key of the range (found by tests/test_store.py); reverse scans
            # here are tiny (validator sets), so reverse a forward scan instead.
            with self._db.iterator(prefix=prefix) as it:
                items = list(it)
            yield from reversed(items)
            return
        with self._db.iterator(prefix=prefix) as it:
            yield from it

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        with _backend(self.path, "write"), self._db.write_batch(sync=sync) as batch:
            for key, value in changes.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def close(self) -> None:
        with _backend(self.path, "close"):
            if not self._db.closed:
                self._db.close()


@contextlib.contextmanager
def _backend(path: Path, action: str) -> Iterator[None]:
    """The boundary: a backend failure leaves here as StoreError, with what was being done."""
    try:
        yield
    except BACKEND_ERRORS as exc:
        raise StoreError(f"LevelDB {action} failed at {path}: {exc}") from exc


def _check_start(prefix: bytes, reverse: bool, start: bytes | None) -> None:
    if start is not None and (reverse or not start.startswith(prefix)):
        raise ValueError("start must extend the prefix, and only forward scans take one")


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key with `prefix` (None: no such key, scan to the end)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _namespace(key: bytes) -> bytes | None:
    """The key's schema prefix up to its second "/" (b"s/fl/"), or None if it has none.

    A prefix scan only ever needs the written keys of one namespace, so the overlay keeps
    a sorted index per namespace that has been scanned, instead of one for every key.
    """
    first = key.find(b"/")
    second = key.find(b"/", first + 1) if first >= 0 else -1
    return key[: second + 1] if second >= 0 else None


class Overlay:
    """Uncommitted changes layered over a reader.

    The contract validates a tx by writing into a child overlay and only merging it into the
    block's overlay when every rule passed, so a rejected tx leaves nothing behind. The
    block's overlay then becomes one atomic `KVStore.write`. A prefix scan costs
    O(log n + k): written keys of each scanned namespace are kept in a sorted index, built
    on the first scan and maintained from then on.
    """

    def __init__(self, base: KVReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}
        self._indexes: dict[bytes, SortedList[bytes]] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._base.get(key)

    def _note(self, key: bytes) -> None:
        if self._indexes and key not in self._writes:
            index = self._indexes.get(_namespace(key) or b"")
            if index is not None:
                index.add(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._note(key)
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._note(key)
        self._writes[key] = None

    def _own_keys(self, prefix: bytes, reverse: bool, start: bytes | None) -> list[bytes]:
        namespace = _namespace(prefix)
        first = start or prefix
        if namespace is None:  # a scan wider than one namespace: rare, sort what matches
            keys = sorted(k for k in self._writes if k.startswith(prefix) and k >= first)
        else:
            index = self._indexes.get(namespace)
            if index is None:
                index = SortedList(k for k in self._writes if k.startswith(namespace))
                self._indexes[namespace] = index
            keys = []
            for key in index.islice(index.bisect_left(first)):
                if not key.startswith(prefix):
                    break
                keys.append(key)
        if reverse:
            keys.reverse()
        return keys

    def iterate(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Merge the base's keys with this overlay's, in bytewise order."""
        _check_start(prefix, reverse, start)
        mine = self._own_keys(prefix, reverse, start)
        base = self._base.iterate(prefix, reverse=reverse, start=start)
        i = 0
        nxt = next(base, None)
        while True:
            own = mine[i] if i < len(mine) else None
            if own is None:
                if nxt is None:
                    return
                yield nxt
                nxt = next(base, None)
                continue
            if nxt is not None and (nxt[0] > own if reverse else nxt[0] < own):
                yield nxt
                nxt = next(base, None)
                continue
            if nxt is not None and nxt[0] == own:
                nxt = next(base, None)
            value = self._writes[own]
            i += 1
            if value is not None:
                yield own, value

    def child(self) -> Overlay:
        return Overlay(self)

    def snapshot(self, base: KVReader) -> Overlay:
        """A private copy of these changes over `base` (which must already hold what this
        overlay's own base held): later writes to either are not seen by the other."""
        copy = Overlay(base)
        copy._writes = dict(self._writes)
        return copy

    def merge(self, child: Overlay) -> None:
        """Take a child's changes as our own (the child must have been made from self)."""
        if child._base is not self:
            raise ValueError("can only merge a child overlay into its own parent")
        if self._indexes:  # inlined _note: this loop runs for every key a block writes
            writes, indexes = self._writes, self._indexes
            for key in child._writes:
                if key not in writes:
                    index = indexes.get(_namespace(key) or b"")
                    if index is not None:
                        index.add(key)
        self._writes.update(child._writes)

    def changes(self) -> dict[bytes, bytes | None]:
        return dict(self._writes)

    def __len__(self) -> int:
        return len(self._writes)
