"""A validator's side of the p2p channel for tests: dial a node, send frames, hang up."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import httpx

from almoner.node.chain.codec import encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.server.channel import dial, frame, tls_context


async def send_frames_async(
    host: str, port: int, node: bytes, sender: KeyPair, chain: str, frames: list[bytes]
) -> bytes:
    """Send raw frames (channel.frame output) as `sender`; what the node sent back before
    it closed (b"" for a clean close) once it closes or 2 s pass."""
    reader, writer = await dial(host, port, tls_context(sender, chain, server=False), node)
    try:
        for data in frames:
            writer.write(data)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), 2.0)
        except TimeoutError:
            return b"(still open)"
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2.0)


def send_msgs(url: str, node: bytes, sender: KeyPair, chain: str, msgs: list[Any]) -> bytes:
    """One frame of messages to the node serving the API at `url`."""
    port = httpx.get(f"{url}/v1/status", timeout=10).json()["p2p_port"]
    data = frame([encode(m) for m in msgs])
    return asyncio.run(send_frames_async("127.0.0.1", port, node, sender, chain, [data]))
