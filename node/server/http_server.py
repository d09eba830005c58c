"""How the node's HTTP server meets the network: TLS, connection limits, timeouts, logs.

uvicorn gives TLS (stdlib `ssl`), keep-alive timeouts and graceful shutdown; what it lacks
is a cap on open connections and a deadline for a request's headers (a slowloris client
sending one byte a minute is otherwise held forever). `GuardedHttpProtocol` adds both: a
connection over the cap gets a 503 JSON body and is closed at once, and a connection
that has not sent complete headers in time gets a 408 and is closed. Logs go through a
rate limit, so no client can fill the disk with repeated lines.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from almoner.node.server.config import NodeConfig
from almoner.node.server.http_guard import ASGIApp, GuardSettings, RequestGuard, error_body

log = logging.getLogger("almoner.http")


@dataclass(frozen=True)
class ConnectionSettings:
    max_connections: int
    max_connections_per_client: int
    header_timeout_s: float
    idle_timeout_s: float
    trusted_clients: frozenset[str] = frozenset()


def raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = error_body(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 1\r\n"
    return (head + "\r\n").encode("ascii") + body


MAX_HEADER_BYTES = 16 * 1024  # request line and headers
# A held response head is joined to a body up to this size (larger: written apart).
JOIN_BELOW = 64 * 1024


def guarded_protocol(settings: ConnectionSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol (a C parser: the h11 one cost a tenth of a busy
    validator's time) bound to these limits; uvicorn takes a class as `http`."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        limits = settings
        refused_connections = 0
        header_timeouts = 0
        per_client: ClassVar[dict[str, int]] = {}

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.transport = HeadHoldingTransport(transport, self.loop)
            self._header_timer: asyncio.TimerHandle | None = None
            self._awaiting_headers = True  # a request's headers are due (or idle)
            self._header_bytes = 0  # read while headers were due
            self._parsed_header_bytes = 0  # request line and headers the parser reported
            self._address = self.client[0] if self.client else ""
            held = self.per_client.get(self._address, 0) + 1
            self.per_client[self._address] = held
            if len(self.connections) > self.limits.max_connections or (
                held > self.limits.max_connections_per_client
                and self._address not in self.limits.trusted_clients
            ):
                type(self).refused_connections += 1
                self.transport.write(
                    raw_response(503, "Service Unavailable", "busy", "too many connections")
                )
                self.transport.close()
                return
            self._arm_header_timer()

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self.limits.header_timeout_s, self._headers_too_slow
                )

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._awaiting_headers and not self.transport.is_closing():
                type(self).header_timeouts += 1
                self.transport.write(
                    raw_response(408, "Request Timeout", "timeout", "request headers too slow")
                )
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                self._arm_header_timer()  # a new request's bytes: its headers are now due
                self._header_bytes += len(data)
            super().data_received(data)
            if (
                self._awaiting_headers
                and self._header_bytes > MAX_HEADER_BYTES
                and not self.transport.is_closing()
            ):
                self.send_400_response("request line and headers over 16 KiB")

        def on_url(self, url: bytes) -> None:
            self._count_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header_bytes(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count_header_bytes(self, size: int) -> None:
            """Headers that arrive whole in one read are parsed in one go: count them as
            the parser reports them (raising here makes the parser refuse the request)."""
            self._parsed_header_bytes += size
            if self._parsed_header_bytes > MAX_HEADER_BYTES:
                raise ValueError("request line and headers over 16 KiB")

        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._disarm_header_timer()  # headers complete: the app's limits apply
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers, self._header_bytes, self._parsed_header_bytes = True, 0, 0

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm_header_timer()  # idle between requests: keep-alive timeout applies

        def send_400_response(self, msg: str) -> None:
            """Bytes that are not HTTP (or headers over 16 KiB) get a JSON body too."""
            if self._parsed_header_bytes > MAX_HEADER_BYTES:
                msg = "request line and headers over 16 KiB"
            self.transport.write(raw_response(400, "Bad Request", "malformed", msg))
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            left = self.per_client.get(self._address, 1) - 1
            if left > 0:
                self.per_client[self._address] = left
            else:
                self.per_client.pop(self._address, None)
            super().connection_lost(exc)

    return GuardedHttpProtocol


class HeadHoldingTransport(asyncio.Transport):
    """The connection's transport, but a response's head waits for its body.

    uvicorn writes a response's status line and headers, then its body, as two writes:
    two sends, and the client woken twice, for every answer. On the validator that takes
    the clients' submissions the socket writes were a third of the HTTP server's time;
    one send per answer cut its CPU per tx by 4 to 6% (docs/performance.md). The head is
    held until the next write joins it, which for a whole response comes in the same turn
    of the loop; anything else (a HEAD answer, a stream that waits for its first chunk) is
    sent when that turn ends. Order is kept, and closing sends what is held first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            held, self._held = self._held, b""
            if len(data) <= JOIN_BELOW:
                data = held + bytes(data)
            else:
                self._transport.write(held)
        elif bytes(data[:9]) == b"HTTP/1.1 " and bytes(data[-4:]) == b"\r\n\r\n":
            self._held = bytes(data)
            self._loop.call_soon(self._send_held)
            return
        self._transport.write(data)

    def _send_held(self) -> None:
        held, self._held = self._held, b""
        if held and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._send_held()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()


def raise_open_file_limit() -> int:
    """Raise the soft fd limit to the hard one: connections are capped well below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def tls_options(cert: Path | None, key: Path | None, client_ca: Path | None) -> dict[str, Any]:
    """uvicorn's ssl_* options: HTTPS when a certificate is given, mTLS with a client CA."""
    if cert is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key or cert)}
    if client_ca is not None:
        options["ssl_ca_certs"] = str(client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


class RateLimitedLog(logging.Filter):
    """At most `burst` records per (logger, message template) per `window_s`; the rest
    are counted and reported once the window ends, so a flood costs one line per minute."""

    def __init__(self, burst: int = 20, window_s: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [window start, count]

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.name, str(record.msg))
        window = self._seen.get(key)
        if window is None or now - window[0] >= self.window_s:
            suppressed = int(window[1]) - self.burst if window else 0
            if suppressed > 0:
                record.msg = f"{record.msg} [{suppressed} similar lines suppressed]"
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[key] = [now, 1]
            return True
        window[1] += 1
        return window[1] <= self.burst


LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


def install_log_rate_limit(burst: int = 20, window_s: float = 60.0) -> None:
    """On every handler of the root and uvicorn loggers (call after uvicorn set them up)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RateLimitedLog) for f in handler.filters):
                handler.addFilter(RateLimitedLog(burst, window_s))


def guarded_app(app: ASGIApp, config: NodeConfig) -> RequestGuard:
    return RequestGuard(
        app,
        GuardSettings(
            rate_limit=config.rate_limit,
            max_body_bytes=config.max_body_bytes,
            body_timeout_s=config.body_timeout_s,
            request_timeout_s=config.request_timeout_s,
            trusted_clients=frozenset(config.trusted_clients),
        ),
    )


def server_config(app: ASGIApp, config: NodeConfig) -> uvicorn.Config:
    limits = ConnectionSettings(
        max_connections=config.max_connections,
        max_connections_per_client=config.max_connections_per_client,
        trusted_clients=frozenset(config.trusted_clients),
        header_timeout_s=config.header_timeout_s,
        idle_timeout_s=config.idle_timeout_s,
    )
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=guarded_protocol(limits),
        log_level=config.log_level.lower(),
        access_log=False,
        timeout_keep_alive=max(1, round(config.idle_timeout_s)),
        timeout_graceful_shutdown=10,
        **tls_options(config.tls_cert, config.tls_key, config.tls_client_ca),
    )


def peer_tls_context(
    peer_ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """How this node calls its peers' https:// URLs: their certificates checked against
    the system CAs or `peer_ca`; this node's own certificate presented as a client
    certificate, so validators that require mTLS (tls_client_ca) accept each other."""
    context = ssl.create_default_context(cafile=str(peer_ca) if peer_ca else None)
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context
