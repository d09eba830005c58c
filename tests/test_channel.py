"""The p2p channel in-process over real loopback TLS: who may talk, and what a frame may
hold. Each refusal happens before the sender's bytes are decoded (issue 14, item 5)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import pytest

from almoner.node.chain.codec import encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.server import channel as channel_module
from almoner.node.server.channel import ChannelError, ChannelServer, dial, frame, tls_context
from almoner.node.server.metrics import Metrics
from almoner.node.server.p2p import MAX_FRAME_MSGS, P2PError, parse_frame
from tests.p2p_peer import send_frames_async

CHAIN = "almoner-channel-test"
MAX_FRAME = 64 * 1024


class Node:
    """A listener whose deliveries are recorded; `backlog` stands for the driver inbox."""

    def __init__(self, validators: list[KeyPair]) -> None:
        self.key = validators[0]
        self.got: list[tuple[bytes, dict[str, Any]]] = []
        self.backlog = 0
        self.metrics = Metrics()
        self.server = ChannelServer(
            self.key,
            CHAIN,
            lambda: frozenset(v.public_key for v in validators),
            self._deliver,
            lambda: self.backlog,
            self.metrics,
            MAX_FRAME,
        )

    def _deliver(self, sender: bytes, msgs: list[dict[str, Any]]) -> int:
        self.got.extend((sender, m) for m in msgs)
        return len(msgs)

    def refused(self, code: str) -> float:
        return self.metrics.counters.get(("almoner_p2p_refused_total", (("code", code),)), 0)


def vote(n: int) -> dict[str, Any]:
    return {"type": "vote", "vote": {"n": n}}


def run(test: Any) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 20))


async def serving(validators: list[KeyPair]) -> tuple[Node, int]:
    node = Node(validators)
    return node, await node.server.start("127.0.0.1", 0)


async def until(check: Any, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_pinned_validator_streams_frames_over_one_connection() -> None:
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        sender = keys[1]
        _, writer = await dial(
            "127.0.0.1", port, tls_context(sender, CHAIN, False), node.key.public_key
        )
        for start in (0, 3):
            writer.write(frame([encode(vote(n)) for n in range(start, start + 3)]))
        await writer.drain()
        await until(lambda: len(node.got) == 6)
        assert node.got == [(sender.public_key, vote(n)) for n in range(6)]
        await hang_up(writer)
        await node.server.stop()

    run(body)


def test_a_validator_whose_key_is_not_pinned_in_genesis_cannot_open_a_channel() -> None:
    keys = [KeyPair.generate() for _ in range(3)]
    stranger = KeyPair.generate()

    async def body() -> None:
        node, port = await serving(keys)
        data = frame([encode(vote(1))])
        answer = await send_frames_async(
            "127.0.0.1", port, node.key.public_key, stranger, CHAIN, [data]
        )
        assert answer == b""  # hung up at once
        assert node.got == [] and node.refused("not_a_validator") == 1
        await node.server.stop()

    run(body)


def test_a_node_of_another_chain_fails_the_handshake() -> None:
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        # A genesis validator key, but a certificate from another chain's CA.
        with pytest.raises(ssl.SSLError):
            _, writer = await dial(
                "127.0.0.1", port, tls_context(keys[1], "other", False), node.key.public_key
            )
            writer.write(frame([encode(vote(1))]))
            await writer.drain()
            await writer.wait_closed()
        await asyncio.sleep(0.1)
        assert node.got == []
        await node.server.stop()

    run(body)


def test_a_client_without_a_certificate_fails_the_handshake() -> None:
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.check_hostname = False
        bare.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=bare)
            writer.write(frame([encode(vote(1))]))
            await writer.drain()
            assert await reader.read() == b""
            raise ConnectionError("closed without a certificate")
        assert node.got == []
        await node.server.stop()

    run(body)


def test_the_dialer_refuses_a_listener_with_another_key() -> None:
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        with pytest.raises(ChannelError) as refused:
            await dial("127.0.0.1", port, tls_context(keys[1], CHAIN, False), keys[2].public_key)
        assert refused.value.code == "wrong_peer"
        await node.server.stop()

    run(body)


def test_an_oversized_frame_ends_the_connection_unread() -> None:
    keys = [KeyPair.generate() for _ in range(2)]

    async def body() -> None:
        node, port = await serving(keys)
        # Only the length header: the payload is never sent, the node must not wait for it.
        header = (MAX_FRAME + 1).to_bytes(4, "big")
        answer = await send_frames_async(
            "127.0.0.1", port, node.key.public_key, keys[1], CHAIN, [header]
        )
        assert answer == b""
        assert node.refused("too_large") == 1 and node.got == []
        await node.server.stop()

    run(body)


def test_too_many_messages_in_a_frame_are_refused_before_decoding() -> None:
    over = MAX_FRAME_MSGS + 1
    # The header claims 513 elements; the rest is junk that decoding would choke on.
    payload = b"\xdc" + over.to_bytes(2, "big") + b"\xc1" * 10
    with pytest.raises(P2PError) as refused:
        parse_frame(payload)
    assert refused.value.code == "too_many_messages"
    million_nils = b"\xdd\x00\x0f\x42\x40" + b"\xc0" * 1_000_000
    with pytest.raises(P2PError):
        parse_frame(million_nils)
    with pytest.raises(P2PError) as deep:
        parse_frame(b"\x91" * 5000 + b"\xc0")
    assert deep.value.code in ("malformed", "invalid_field")


def test_a_bad_frame_is_dropped_and_the_stream_goes_on() -> None:
    keys = [KeyPair.generate() for _ in range(2)]

    async def body() -> None:
        node, port = await serving(keys)
        frames = [
            len(b"\x93junk").to_bytes(4, "big") + b"\x93junk",
            frame([encode({"type": "nope"})]),
            frame([encode(vote(7))]),
        ]
        answer = await send_frames_async(
            "127.0.0.1", port, node.key.public_key, keys[1], CHAIN, frames
        )
        assert answer == b"(still open)"
        assert node.got == [(keys[1].public_key, vote(7))]
        assert node.refused("malformed") == 1 and node.refused("invalid_field") == 1
        await node.server.stop()

    run(body)


def test_a_flooding_validator_cannot_crowd_out_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """The p2p flood of issue 14: one validator streams junk votes as fast as it can while
    the inbox is backlogged; another validator's vote still gets in within one frame of the
    flooder's, because readers stop reading while the backlog is over the soft limit."""
    monkeypatch.setattr(channel_module, "INBOX_SOFT_LIMIT", 0)
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        node.backlog = 1  # the driver is behind
        flooder, honest = keys[1], keys[2]
        _, flood = await dial(
            "127.0.0.1", port, tls_context(flooder, CHAIN, False), node.key.public_key
        )
        junk = frame([encode(vote(n)) for n in range(MAX_FRAME_MSGS)])
        for _ in range(50):
            flood.write(junk)
        await asyncio.sleep(0.2)
        assert len(node.got) == MAX_FRAME_MSGS  # one frame in, then the reader waits
        _, mine = await dial(
            "127.0.0.1", port, tls_context(honest, CHAIN, False), node.key.public_key
        )
        mine.write(frame([encode(vote(-1))]))
        await mine.drain()
        await until(lambda: (honest.public_key, vote(-1)) in node.got)
        assert len(node.got) == MAX_FRAME_MSGS + 1  # the flood did not get further ahead
        node.backlog = 0  # the driver caught up: the flood drains in order
        await until(lambda: len(node.got) == 50 * MAX_FRAME_MSGS + 1)
        await hang_up(flood)
        await hang_up(mine)
        await node.server.stop()

    run(body)


def test_a_reconnect_replaces_the_old_stream() -> None:
    keys = [KeyPair.generate() for _ in range(2)]

    async def body() -> None:
        node, port = await serving(keys)
        context = tls_context(keys[1], CHAIN, False)
        old_reader, old = await dial("127.0.0.1", port, context, node.key.public_key)
        old.write(frame([encode(vote(1))]))
        await old.drain()
        await until(lambda: len(node.got) == 1)
        _, new = await dial("127.0.0.1", port, context, node.key.public_key)
        assert await asyncio.wait_for(old_reader.read(), 5) == b""  # the old one is closed
        new.write(frame([encode(vote(2))]))
        await new.drain()
        await until(lambda: len(node.got) == 2)
        await hang_up(old)
        await hang_up(new)
        await node.server.stop()

    run(body)


def test_recorded_channel_bytes_cannot_be_replayed() -> None:
    """A network attacker records a validator's whole connection (handshake and frames)
    and plays it back on a new connection: TLS 1.3's fresh keys make the replay fail in
    the handshake, and no message is delivered twice."""
    keys = [KeyPair.generate() for _ in range(2)]

    async def body() -> None:
        node, port = await serving(keys)
        recorded = bytearray()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
            while data := await src.read(65536):
                if keep:
                    recorded.extend(data)
                dst.write(data)
                await dst.drain()
            await hang_up(dst)

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(
                pump(reader, upstream, True),
                pump(upstream_reader, writer, False),
                return_exceptions=True,
            )

        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        data = frame([encode(vote(1))])
        await send_frames_async(
            "127.0.0.1", proxy_port, node.key.public_key, keys[1], CHAIN, [data]
        )
        await until(lambda: len(node.got) == 1)
        assert len(recorded) > len(data)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes(recorded))
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), 5)
        await hang_up(writer)
        await asyncio.sleep(0.2)
        assert node.got == [(keys[1].public_key, vote(1))]
        proxy.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proxy.wait_closed(), 5)
        await node.server.stop()

    run(body)


def test_a_stranger_s_16_mib_frame_is_never_read() -> None:
    """Issue 14's 16 MiB envelope from a non-validator, which the HTTP path decoded before
    checking the sender: the channel hangs up after the handshake, unread."""
    keys = [KeyPair.generate() for _ in range(2)]
    stranger = KeyPair.generate()

    async def body() -> None:
        node = Node(keys)
        node.server.max_frame_bytes = 32 * 1024 * 1024
        port = await node.server.start("127.0.0.1", 0)
        size = 16 * 1024 * 1024
        big = size.to_bytes(4, "big") + b"\xdd" + b"\xc0" * (size - 1)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await send_frames_async("127.0.0.1", port, node.key.public_key, stranger, CHAIN, [big])
        assert node.got == [] and node.refused("not_a_validator") == 1
        await node.server.stop()

    run(body)


async def hang_up(writer: asyncio.StreamWriter) -> None:
    """Close and wait, so no transport outlives its test's event loop."""
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5)


def test_stopping_with_open_streams_and_replacing_one_log_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A clean shutdown and a peer's reconnect end stream handlers by cancelling them:
    that must not reach asyncio's error log as a traceback (operators read those)."""
    keys = [KeyPair.generate() for _ in range(3)]

    async def body() -> None:
        node, port = await serving(keys)
        writers: list[asyncio.StreamWriter] = []
        for sender in (keys[1], keys[2], keys[1]):  # keys[1] reconnects: one replacement
            _, writer = await dial(
                "127.0.0.1", port, tls_context(sender, CHAIN, False), node.key.public_key
            )
            writer.write(frame([encode(vote(len(writers)))]))
            await writer.drain()
            writers.append(writer)
            await until(lambda: len(node.got) == len(writers))
        await node.server.stop()
        for writer in writers:
            await hang_up(writer)
        await asyncio.sleep(0.05)  # the stream server's completion callbacks run here

    with caplog.at_level("ERROR", logger="asyncio"):
        run(body)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
