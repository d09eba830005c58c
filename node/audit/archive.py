"""Chain archives: a self-contained, versioned, compressed copy of a chain for offline verify.

Format (version 1), all inside one gzip stream:

    frame   = kind (1 byte) || length (4 bytes, big-endian) || payload (length bytes)
    archive = frame(b"H", header) frame(b"B", item)* frame(b"E", trailer)

- header  : canonical msgpack `{"format": "almoner-archive", "version": 1,
            "genesis": <genesis JSON document>, "genesis_hash": bin32,
            "head": {"height", "log_size"} | nil, "source": str,
            "created_ms": int}`; `head` only sizes the progress bar, it is never trusted.
- item    : canonical msgpack `{"block": block, "commit": certificate}`, heights 1, 2, …
            (exactly the items of `GET /v1/blocks`).
- trailer : canonical msgpack `{"end": true, "count": N}`.

Framing lets a reader hand each item's bytes on untouched (to signature workers) without
decoding it; the trailer makes a cut archive detectable: a reader that reaches the end of
the data without a trailer, or with a trailer whose count disagrees, raises
`ArchiveTruncated`, which `verify` reports as the `truncated` violation.
"""

from __future__ import annotations

import gzip
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from almoner.node.audit.client import Client, ClientError
from almoner.node.chain.codec import decode, encode
from almoner.node.chain.genesis import Genesis, GenesisError, parse_genesis
from almoner.node.errors import AlmonerError

FORMAT = "almoner-archive"
VERSION = 1
KIND_HEADER = b"H"
KIND_ITEM = b"B"
KIND_END = b"E"
MAX_FRAME = 1 << 30
_FRAME = struct.Struct(">cI")
FETCH_BATCH = 32


class ArchiveError(AlmonerError):
    """The file is not a readable archive of a supported version (an I/O-level problem)."""


class ArchiveTruncated(ArchiveError):
    """The archive ends before its trailer, or the trailer disagrees with its contents."""


class SourceError(AlmonerError):
    """A node could not be reached or sent something that is not the block stream."""


class ArchiveWriter:
    """Write an archive to `path` (via `path.part`, renamed on `close`, so a failed export
    never leaves something that looks complete)."""

    def __init__(
        self,
        path: str | Path,
        genesis: Genesis,
        *,
        head: dict[str, Any] | None = None,
        source: str = "",
    ) -> None:
        self.path = Path(path)
        self._part = self.path.with_name(self.path.name + ".part")
        try:
            self._file: gzip.GzipFile = gzip.open(self._part, "wb", compresslevel=6)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ArchiveError(f"cannot write {self._part}: {exc.strerror}") from exc
        self.count = 0
        header = {
            "format": FORMAT,
            "version": VERSION,
            "genesis": genesis.to_json(),
            "genesis_hash": genesis.hash,
            "head": head,
            "source": source,
            "created_ms": int(time.time() * 1000),
        }
        self._frame(KIND_HEADER, encode(header))

    def _frame(self, kind: bytes, payload: bytes) -> None:
        try:
            self._file.write(_FRAME.pack(kind, len(payload)))
            self._file.write(payload)
        except OSError as exc:
            raise ArchiveError(f"cannot write {self._part}: {exc.strerror}") from exc

    def add(self, item: bytes) -> None:
        """Append one `{"block", "commit"}` item, given as its msgpack bytes."""
        self._frame(KIND_ITEM, item)
        self.count += 1

    def close(self) -> Path:
        trailer = {"end": True, "count": self.count}
        self._frame(KIND_END, encode(trailer))
        self._file.close()
        os.replace(self._part, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


class ArchiveReader:
    """Stream an archive: `header` and `genesis` at once, then `items()` one at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: gzip.GzipFile = gzip.open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ArchiveError(f"cannot read {self.path}: {exc.strerror}") from exc
        frame = self._next()
        if frame is None or frame[0] != KIND_HEADER:
            raise ArchiveError(f"{self.path} is not an Almoner archive (no header)")
        try:
            header = decode(frame[1], max_size=MAX_FRAME)
        except AlmonerError as exc:
            raise ArchiveError(f"{self.path} has an unreadable header: {exc}") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ArchiveError(f"{self.path} is not an Almoner archive")
        if header.get("version") != VERSION:
            raise ArchiveError(
                f"{self.path} is archive version {header.get('version')!r}; "
                f"this tool reads version {VERSION}"
            )
        self.header: dict[str, Any] = header
        try:
            self.genesis: Genesis = parse_genesis(header.get("genesis"))
        except GenesisError as exc:
            raise ArchiveError(f"{self.path} holds an invalid genesis: {exc}") from exc
        self.count = 0

    @property
    def head_height(self) -> int | None:
        head = self.header.get("head")
        height = head.get("height") if isinstance(head, dict) else None
        return height if isinstance(height, int) else None

    @property
    def head_log_size(self) -> int | None:
        head = self.header.get("head")
        size = head.get("log_size") if isinstance(head, dict) else None
        return size if isinstance(size, int) else None

    def _read(self, n: int) -> bytes:
        try:
            data = self._file.read(n)
        except EOFError as exc:
            raise ArchiveTruncated(
                f"{self.path} is cut short (the compressed data ends mid-stream)"
            ) from exc
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise ArchiveError(f"{self.path} is corrupt: {exc}") from exc
        return data

    def _next(self) -> tuple[bytes, bytes] | None:
        head = self._read(_FRAME.size)
        if not head:
            return None
        if len(head) < _FRAME.size:
            raise ArchiveTruncated(f"{self.path} is cut short inside a frame header")
        kind, length = _FRAME.unpack(head)
        if length > MAX_FRAME:
            raise ArchiveError(f"{self.path} is corrupt: a frame of {length} bytes")
        payload = self._read(length)
        if len(payload) < length:
            raise ArchiveTruncated(f"{self.path} is cut short inside item {self.count + 1}")
        return kind, payload

    def items(self) -> Iterator[bytes]:
        """Each item's bytes in order; raises ArchiveTruncated where the data stops early."""
        try:
            while True:
                frame = self._next()
                if frame is None:
                    raise ArchiveTruncated(
                        f"{self.path} ends after {self.count} blocks without its trailer"
                    )
                kind, payload = frame
                if kind == KIND_ITEM:
                    self.count += 1
                    yield payload
                    continue
                if kind != KIND_END:
                    raise ArchiveError(f"{self.path} is corrupt: unknown frame kind {kind!r}")
                try:
                    trailer = decode(payload)
                except AlmonerError as exc:
                    raise ArchiveError(f"{self.path} has an unreadable trailer: {exc}") from exc
                if not isinstance(trailer, dict) or trailer.get("count") != self.count:
                    raise ArchiveTruncated(
                        f"{self.path} holds {self.count} blocks but its trailer says "
                        f"{trailer.get('count') if isinstance(trailer, dict) else '?'}"
                    )
                return
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a node as a source of items ---------------------------------------------------------


def node_items(
    url: str, start: int, end: int, *, batch: int = FETCH_BATCH, timeout: float = 60.0
) -> Iterator[bytes]:
    """Raw `{"block", "commit"}` items of heights start..end from a node's GET /v1/blocks,
    fetched `batch` blocks at a time so memory stays flat. Raises SourceError."""
    with Client(url, timeout=timeout) as client:
        height = start
        while height <= end:
            limit = min(batch, end - height + 1)
            try:
                raws = client.block_items(height, limit)
            except ClientError as exc:
                raise SourceError(f"cannot fetch blocks from {url}: {exc}") from exc
            if not raws:
                raise SourceError(f"{url} sent no block at height {height} (its head moved back?)")
            yield from raws[:limit]
            height += min(len(raws), limit)


__all__ = [
    "FORMAT",
    "VERSION",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveTruncated",
    "ArchiveWriter",
    "SourceError",
    "node_items",
]
