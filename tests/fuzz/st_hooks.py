"""Schemathesis hooks for the fuzz run (SCHEMATHESIS_HOOKS=tests.fuzz.st_hooks).

The write routes take MessagePack (the OpenAPI says so); schemathesis ships no serializer
for it, so generated bodies are packed here: raw bytes go as they are (garbage is the
point), anything else is packed as MessagePack, the way a careless client would send it.
"""

from __future__ import annotations

from typing import Any

import msgpack
import schemathesis
from schemathesis.transport.serialization import serialize_binary


@schemathesis.serializer("application/msgpack")
def msgpack_body(_ctx: Any, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)) or type(value).__name__ == "Binary":
        return serialize_binary(value)
    return bytes(msgpack.packb(value, use_bin_type=True))
