"""Signed txs in files: msgpack (a stream of tx maps, or one array) or JSON lines.

JSON views carry bin fields as hex; because every protocol map has a fixed key set,
the names below say exactly which fields go back to bytes, so a JSON line maps back to
the tx's exact signed bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from almoner.node.chain.codec import encode, split_array, split_stream
from almoner.node.errors import AlmonerError

BIN_FIELDS = frozenset(
    {
        "signer",
        "sig",
        "party",
        "donor",
        "charity",
        "platform",
        "to",
        "report",
        "block_hash",
        "validator",
        "evidence",
    }
)


class TxFileError(AlmonerError):
    """A tx file that cannot be read."""


def from_json_view(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: from_json_view(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_view(v, key) for v in value]
    if key in BIN_FIELDS and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise TxFileError(f"field {key!r} is not hex") from exc
    return value


def read_tx_file(path: Path) -> list[bytes]:
    """Raw tx bytes, one per tx, in file order (msgpack items are kept byte for byte)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TxFileError(f"cannot read {path}: {exc.strerror}") from exc
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        raws = []
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                raws.append(encode(from_json_view(json.loads(line))))
            except (json.JSONDecodeError, AlmonerError) as exc:
                raise TxFileError(f"{path}:{number}: not a JSON tx ({exc})") from exc
        return raws
    try:
        items = split_stream(data)
        if (
            len(items) == 1
            and items[0][:1]
            and (items[0][0] & 0xF0 == 0x90 or items[0][0] in (0xDC, 0xDD))
        ):
            items = split_array(items[0], max_items=len(items[0]))  # a local file: no cap
    except AlmonerError as exc:
        raise TxFileError(f"{path}: {exc}") from exc
    return items
