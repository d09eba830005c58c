"""Lying peers for catch-up attacks: tiny HTTP servers on 127.0.0.3 that claim a huge
height and then send nothing, garbage, or nothing at all for a long time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIAR_HOST = "127.0.0.3"
CLAIMED_HEIGHT = 10**12


def _handler(mode: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads the node's log, not the fake's."""

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/v1/status"):
                body = b'{"height": %d, "chain_id": "x"}' % CLAIMED_HEIGHT
                self._send(200, body, "application/json")
            elif mode == "empty":
                self._send(200, b"", "application/msgpack")
            elif mode == "garbage":
                self._send(200, b"\x82\xa5block\xc0\xa6commit" + b"\xff" * 4096, "x")
            elif mode == "stall":
                self.send_response(200)
                self.send_header("content-length", "1000000")
                self.end_headers()
                for _ in range(600):  # a byte a second: passes per-read timeouts
                    try:
                        self.wfile.write(b"\x00")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(1)
            else:
                self._send(404, b"{}", "application/json")

    return Handler


@contextmanager
def lying_peers(*modes: str) -> Iterator[list[str]]:
    servers = [ThreadingHTTPServer((LIAR_HOST, 0), _handler(mode)) for mode in modes]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [f"http://{LIAR_HOST}:{server.server_address[1]}" for server in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
