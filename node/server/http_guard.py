"""A pure ASGI layer in front of the API: per-client rate limits, bounded body reads and a
per-request time limit, each refusal a JSON error body like every other answer.

It sits outside FastAPI so that its refusals cost no routing, no handler and no body
parsing: a flooding client is turned away after its headers. The body of a write is read
here, under a size cap and a read timeout, and replayed to the app; so a slow or vanished
client is dealt with before any handler runs (a vanished one is not an internal error, and
is not logged as one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger("almoner.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths a monitor or a peer must always reach: liveness, readiness, metrics, and the
# validators' own traffic (authenticated by signature, throttled by the transport).
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/v1/p2p/")


@dataclass(frozen=True)
class GuardSettings:
    rate_limit: str  # `limits` notation per client address, e.g. "200/second;5000/minute"
    max_body_bytes: int
    body_timeout_s: float
    request_timeout_s: float
    trusted_clients: frozenset[str] = frozenset()


def error_body(code: str, message: str, **details: Any) -> bytes:
    body = {"error": {"code": code, "message": message, "details": details}}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    retry_after: int | None = None,
    close: bool = False,
    **details: Any,
) -> None:
    """`close` ends the connection after the answer: after a body that was not read whole
    the stream is out of step, so keeping it alive would only hold the socket open."""
    body = error_body(code, message, **details)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


class BodyTooLarge(Exception):
    pass


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings
        self.limits: list[RateLimitItem] = parse_many(settings.rate_limit)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.refused = {"rate_limited": 0, "body_timeout": 0, "request_timeout": 0, "gone": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if not path.startswith(EXEMPT_PREFIXES):
            retry = self._over_limit(scope)
            if retry is not None:
                self.refused["rate_limited"] += 1
                await send_error(
                    send,
                    429,
                    "busy",
                    "too many requests from this client; slow down",
                    retry_after=retry,
                    retry_after_s=retry,
                )
                return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            try:
                receive = await self._buffered(scope, receive)
            except ClientGone:
                self.refused["gone"] += 1
                log.debug("client left before its request body was read: %s", path)
                return
            except TimeoutError:
                self.refused["body_timeout"] += 1
                await send_error(
                    send, 408, "timeout", "the request body was not sent in time", close=True
                )
                return
            except BodyTooLarge:
                limit = self.settings.max_body_bytes
                await send_error(
                    send,
                    413,
                    "too_large",
                    f"body is over the {limit}-byte limit",
                    close=True,
                    limit=limit,
                )
                return
        await self._run(scope, receive, send)

    def _over_limit(self, scope: Scope) -> int | None:
        """Seconds until this client may ask again, or None when it is within its limits."""
        client = scope.get("client")
        key = client[0] if client else "unknown"
        if key in self.settings.trusted_clients:
            return None
        for item in self.limits:
            if not self.limiter.hit(item, key):
                stats = self.limiter.get_window_stats(item, key)  # reset_time is wall-clock
                return max(1, int(stats.reset_time - time.time()) + 1)
        return None

    async def _buffered(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole body (size-capped, each chunk within the timeout), then replay it."""
        limit = self.settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.settings.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        return replay

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            self.refused["request_timeout"] += 1
            log.warning("request %s %s ran out of time", scope.get("method"), scope.get("path"))
            if started:
                raise  # the answer is half sent: the server closes the connection
            await send_error(
                send,
                503,
                "busy",
                f"the request took over {self.settings.request_timeout_s:g} s; retry later",
                retry_after=1,
                retry_after_s=1,
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
