"""A response's head and body leave in one write (HeadHoldingTransport), and every kind of
answer still arrives whole and in order from a real uvicorn server with the node's
protocol: a body, a HEAD answer, a stream whose chunk comes later, pipelined requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from almoner.node.devnet.network import free_port
from almoner.node.server.http_server import (
    JOIN_BELOW,
    ConnectionSettings,
    HeadHoldingTransport,
    guarded_protocol,
)

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def holding() -> tuple[HeadHoldingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return HeadHoldingTransport(inner, asyncio.get_running_loop()), inner


def test_head_and_body_of_one_turn_are_one_write() -> None:
    async def run() -> list[bytes]:
        outer, inner = holding()
        outer.write(HEAD)
        assert inner.writes == []
        outer.write(b"hello")
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(run()) == [HEAD + b"hello"]


def test_a_lone_head_leaves_when_the_turn_ends() -> None:
    async def run() -> None:
        outer, inner = holding()
        outer.write(HEAD)
        assert inner.writes == [] and outer.get_write_buffer_size() == len(HEAD)
        await asyncio.sleep(0)
        assert inner.writes == [HEAD]
        outer.write(b"late chunk")  # a stream's chunk, turns later: straight through
        assert inner.writes == [HEAD, b"late chunk"]

    asyncio.run(run())


def test_a_large_body_is_not_copied_but_follows_its_head() -> None:
    async def run() -> None:
        outer, inner = holding()
        body = b"x" * (JOIN_BELOW + 1)
        outer.write(HEAD)
        outer.write(body)
        assert inner.writes == [HEAD, body]

    asyncio.run(run())


def test_close_sends_the_held_head_first_and_abort_drops_it() -> None:
    async def run() -> None:
        outer, inner = holding()
        outer.write(HEAD)
        outer.close()
        assert inner.writes == [HEAD] and inner.closed
        outer, inner = holding()
        outer.write(HEAD)
        outer.abort()
        await asyncio.sleep(0)
        assert inner.writes == [] and inner.closed

    asyncio.run(run())


def test_bytes_that_are_not_a_response_head_pass_at_once() -> None:
    async def run() -> None:
        outer, inner = holding()
        refusal = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}"
        outer.write(refusal)  # head and body already joined (the node's own refusals)
        outer.write(b"HTTP/1.0 200 OK\r\n\r\n")
        assert inner.writes == [refusal, b"HTTP/1.0 200 OK\r\n\r\n"]

    asyncio.run(run())


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = f"path {scope['path']}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def exchange(port: int, request: bytes, until: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    received = b""
    while not received.endswith(until):
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, received
        received += chunk
    writer.close()
    await writer.wait_closed()
    return received


def test_real_server_answers_whole_and_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    joined: list[bytes] = []  # bodies that left in one write with their head
    plain_write = HeadHoldingTransport.write

    def write(self: HeadHoldingTransport, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            joined.append(bytes(data))
        plain_write(self, data)

    monkeypatch.setattr(HeadHoldingTransport, "write", write)
    settings = ConnectionSettings(100, 100, header_timeout_s=5, idle_timeout_s=5)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=guarded_protocol(settings), log_level="error"
    )

    async def run() -> None:
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            pipelined = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n"
            both = await exchange(port, pipelined, b"path /b")
            assert both.count(b"HTTP/1.1 200 OK") == 2
            assert both.index(b"path /a") < both.index(b"HTTP/1.1 200 OK", 1)
            head = await exchange(port, b"HEAD /h HTTP/1.1\r\nhost: x\r\n\r\n", b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 7" in head
            stream = await exchange(port, b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n", b"0\r\n\r\n")
            assert stream.startswith(b"HTTP/1.1 200 OK") and b"5\r\nfirst\r\n0\r\n\r\n" in stream
            assert joined[:2] == [b"path /a", b"path /b"]  # the server's protocol holds heads
        finally:
            server.should_exit = True
            await serving

    asyncio.run(run())
