"""Canonical MessagePack: the only way protocol objects become bytes (docs/spec/01-encoding.md).

Signatures and hashes are only meaningful if every party derives the same bytes from the
same value, so there is exactly one encoder, and the decoder accepts an input only when
re-encoding it gives the input back byte for byte.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack

from almoner.node.errors import CodecError

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
DEFAULT_MAX_SIZE = 64 * 1024
# The HTTP media type of these bytes (Accept / Content-Type), for every client and server.
MSGPACK = "application/msgpack"
# Deepest container nesting a decoder accepts: a block holds txs whose evidence bodies
# hold votes (six levels); p2p payloads add two. Anything deeper is an attack.
MAX_DEPTH = 32
# Elements in one submitted batch: enough for any platform's burst, and bounded so one
# request's work (each element is decoded and checked) stays well under a second or two.
MAX_BATCH_ITEMS = 10_000

Value = None | bool | int | str | bytes | list[Any] | dict[str, Any]


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _canonical(value: Any) -> Any:
    """Return a copy with map keys sorted, rejecting disallowed types.

    Sorting str keys by code point equals sorting them by their UTF-8 bytes (UTF-8
    preserves code point order), so no per-key encoding is needed. Written with exact
    type checks and without a call per scalar, because every tx is encoded several times
    on the hot path.
    """
    kind = type(value)
    if kind is dict:
        out: dict[str, Any] = {}
        try:
            keys = sorted(value)
        except TypeError:
            keys = list(value)  # mixed key types: the check below names the bad key
        for key in keys:
            if type(key) is not str:
                raise CodecError("malformed", f"map key {key!r} is not a str")
            item = value[key]
            item_kind = type(item)
            if item_kind is str or item_kind is bytes or item is None or item_kind is bool:
                out[key] = item
            elif item_kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    raise CodecError("malformed", f"integer {item} outside the signed 64-bit range")
                out[key] = item
            else:
                out[key] = _canonical(item)
        return out
    if kind is list or kind is tuple:
        return [_canonical(item) for item in value]
    if kind is str or kind is bytes or value is None or kind is bool:
        return value
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError("malformed", f"integer {value} outside the signed 64-bit range")
        return value
    raise CodecError("malformed", f"type {kind.__name__} is not allowed in the protocol")


def encode(value: Any) -> bytes:
    """Canonical bytes of a protocol value."""
    packed: bytes = msgpack.packb(_canonical(value), use_bin_type=True)
    return packed


def _pairs_to_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            raise CodecError("malformed", f"map key {key!r} is not a str")
        if key in result:
            raise CodecError("malformed", f"map key {key!r} is repeated")
        result[key] = item
    return result


def _reject_ext(code: int, data: bytes) -> Any:
    raise CodecError("malformed", f"ext type {code} is not allowed")


_SCALARS = frozenset({str, bytes, bool, type(None)})


def _check_types(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Allowed types only, nested at most `max_depth` containers deep.

    Iterative on purpose: msgpack itself unpacks up to 1024 levels, and a recursive walk
    (or the canonical re-encoding) of such an object would hit Python's recursion limit
    outside any error handling. No protocol object nests more than a few levels. It walks
    one nesting level at a time with exact type checks (msgpack yields exact built-in
    types), because every p2p frame passes here: the depth is checked once per level,
    not once per item.
    """
    level: list[Any] = [value]
    depth = 0
    while level:
        deeper: list[Any] = []
        nested = False
        for item in level:
            kind = type(item)
            if kind in _SCALARS:
                continue
            if kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    raise CodecError("malformed", f"integer {item} outside the signed 64-bit range")
            elif kind is dict:
                nested = True
                deeper.extend(item.values())
            elif kind is list:
                nested = True
                deeper.extend(item)
            else:
                name = kind.__name__
                raise CodecError("malformed", f"type {name} is not allowed in the protocol")
        if nested and depth >= max_depth:
            raise CodecError(
                "malformed", f"containers nested over {max_depth} deep", {"limit": max_depth}
            )
        depth += 1
        level = deeper


def decode(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Strictly decode exactly one canonical object, or raise CodecError."""
    if len(data) > max_size:
        raise CodecError(
            "too_large",
            f"object is {len(data)} bytes, over the {max_size}-byte limit",
            {"size": len(data), "limit": max_size},
        )
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_pairs_to_map,
            ext_hook=_reject_ext,
        )
    except CodecError:
        raise
    except msgpack.ExtraData as exc:
        raise CodecError("malformed", "trailing bytes after the object") from exc
    except UnicodeDecodeError as exc:
        raise CodecError("malformed", "a str is not valid UTF-8") from exc
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise CodecError("malformed", f"not a msgpack object: {exc}") from exc
    _check_types(value)
    if encode(value) != data:
        raise CodecError("non_canonical", "the object is not in canonical form")
    return value


def array_header(n: int) -> bytes:
    """The msgpack header of an n-element array, to frame already-encoded elements."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _unpacker(data: bytes) -> Any:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data)
    return unpacker


def split_array(data: bytes, max_items: int = MAX_BATCH_ITEMS) -> list[bytes]:
    """The raw bytes of each element of one msgpack array, so each can be judged alone.

    The element count is checked from the header before any element is read: a batch of
    a million elements is refused as `too_large` in microseconds.
    """
    unpacker = _unpacker(data)
    try:
        count = unpacker.read_array_header()
        if count > max_items:
            raise CodecError(
                "too_large",
                f"array of {count} elements, over the {max_items}-element limit",
                {"items": count, "limit": max_items},
            )
        items = []
        for _ in range(count):
            start = unpacker.tell()
            unpacker.skip()
            items.append(data[start : unpacker.tell()])
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError("malformed", f"not a msgpack array: {exc}") from exc
    if unpacker.tell() != len(data):
        raise CodecError("malformed", "trailing bytes after the array")
    return items


def split_stream(data: bytes) -> list[bytes]:
    """The raw bytes of each object of a msgpack stream (objects back to back)."""
    unpacker = _unpacker(data)
    items = []
    try:
        while unpacker.tell() < len(data):
            start = unpacker.tell()
            unpacker.skip()
            items.append(data[start : unpacker.tell()])
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError("malformed", f"not a msgpack stream: {exc}") from exc
    return items


def decode_stored(data: bytes) -> Any:
    """Decode bytes this node wrote itself (state records, stored blocks).

    They were produced by `encode`, so the canonical re-encoding check is skipped (it
    doubles the cost on the contract's hot path). Bytes that do not decode mean the store
    is corrupt: that raises CodecError, which callers report as corruption.
    """
    try:
        return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CodecError("malformed", f"stored object does not decode: {exc}") from exc


def decode_payload(data: bytes) -> Any:
    """Decode a container whose parts are each checked by their consumer (p2p batches).

    msgpack's own framing and UTF-8 checks apply and ext types are refused; the canonical
    re-encoding check is not made, because the parts that matter (txs, blocks, votes) are
    re-encoded or strictly decoded where they are used.
    """
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=False, ext_hook=_reject_ext
        )
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CodecError("malformed", f"payload does not decode: {exc}") from exc
    _check_types(value)
    return value


def to_json_view(value: Any) -> Any:
    """The JSON view of a protocol value: bin fields become lowercase hex (docs/spec/01)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [to_json_view(item) for item in value]
    if isinstance(value, dict):
        return {k: to_json_view(v) for k, v in value.items()}
    return value
