"""A man in the middle for the browser test: forwards every GET to the node, but alters
one hash of one inclusion proof in trace answers, as a lying or hacked node would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def tamper(trace: dict[str, object], tx_id: str) -> dict[str, object]:
    proofs = trace["proofs"]
    assert isinstance(proofs, dict)
    path = proofs[tx_id]["path"]
    assert path, "a proof with an empty path cannot be tampered with"
    first = path[0]
    path[0] = ("0" if first[0] != "0" else "1") + first[1:]
    return trace


@contextmanager
def tampering_proxy(upstream: str, tx_id: str) -> Iterator[str]:
    client = httpx.Client(base_url=upstream, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept",)}
            answer = client.get(self.path, headers=headers)
            body = answer.content
            if self.path.split("?")[0].endswith("/trace") and answer.status_code == 200:
                body = json.dumps(tamper(answer.json(), tx_id)).encode()
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "text/plain"))
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        client.close()
