"""Issue 14's findings 1, 3 and 8 replayed against a live node process, each attack from
127.0.0.2 while the checks come from 127.0.0.1: the node answers /healthz within a second
during the attack, commits continue, and every refusal is a JSON error body."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from almoner.node.chain.codec import H, encode
from almoner.node.chain.tx import make_tx
from tests.attack.live import assert_commits, assert_healthy_fast, attacked_cluster
from tests.cluster.harness import Cluster

ATTACKER = "127.0.0.2"
FLOODER = "127.0.0.4"  # its own address: its rate window must not limit the other tests
MSGPACK = {"content-type": "application/msgpack"}
LIMITS = {
    "rate_limit": "40/minute",
    "max_connections_per_client": 30,
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with attacked_cluster(tmp_path_factory.mktemp("attack"), LIMITS) as c:
        yield c


@pytest.fixture
def attacker() -> Iterator[httpx.Client]:
    """The attacks of each test come from 127.0.0.2 and make fewer than 40 requests."""
    transport = httpx.HTTPTransport(local_address=ATTACKER)
    with httpx.Client(transport=transport, timeout=10) as client:
        yield client


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def node_log(cluster: Cluster) -> str:
    return (cluster.devnet.home("validator-0") / "node.log").read_text(errors="replace")


def test_deep_nesting_and_huge_batches_are_4xx(cluster: Cluster, attacker: httpx.Client) -> None:
    url = cluster.url("validator-0")
    deep = b"\x91" * 1000 + b"\xc0"
    refusal(attacker.post(f"{url}/v1/txs", content=deep, headers=MSGPACK), 400, "malformed")
    good = cluster.donation("platform-1", "charity-1", 5)
    batch = b"\x93" + deep + good + b"\xc0"
    response = attacker.post(f"{url}/v1/txs/batch", content=batch, headers=MSGPACK)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "pending", "rejected"]
    assert results[0]["error"]["code"] == "malformed"
    million = b"\xdd\x00\x0f\x42\x40" + b"\xc0" * 1_000_000
    response = attacker.post(f"{url}/v1/txs/batch", content=million, headers=MSGPACK)
    assert refusal(response, 413, "too_large")["details"]["limit"] == 10_000
    assert_healthy_fast(url)
    assert_commits(cluster)
    assert "Traceback" not in node_log(cluster)


def test_bad_domain_values_and_odd_trace_ids(cluster: Cluster, attacker: httpx.Client) -> None:
    url = cluster.url("validator-0")
    body = {
        "donation": "zzz-1",
        "donor": H(b"d"),
        "charity": cluster.key("charity-1").public_key,
        "campaign": None,
        "amount": 100,
        "currency": "ZZZ",
        "received_at": 1_700_000_000_000,
    }
    raw = encode(make_tx(cluster.chain_id, "donation.record", cluster.key("platform-1"), body, 1))
    error = refusal(
        attacker.post(f"{url}/v1/txs", content=raw, headers=MSGPACK), 400, "invalid_field"
    )
    assert error["details"]["field"] == "body.currency"
    platform = cluster.key("platform-1").public_key.hex()
    response = attacker.get(f"{url}/v1/donations/{platform}/{'x' * 300}/trace")
    refusal(response, 404, "not_found")


def test_a_request_flood_is_rate_limited_per_client(cluster: Cluster) -> None:
    url = cluster.url("validator-0")
    transport = httpx.HTTPTransport(local_address=FLOODER)
    with httpx.Client(transport=transport, timeout=10) as flooder:
        statuses = [flooder.get(f"{url}/v1/head").status_code for _ in range(100)]
        limited = flooder.get(f"{url}/v1/head")
    # 40 a minute (a sliding window: a minute boundary mid-burst may admit a few more)
    assert 40 <= statuses.count(200) <= 45 and statuses.count(429) >= 55, statuses
    error = refusal(limited, 429, "busy")
    assert int(limited.headers["retry-after"]) >= 1
    assert error["details"]["retry_after_s"] >= 1
    assert_healthy_fast(url)  # another client (127.0.0.1) is not limited
    assert_commits(cluster)


def _connect(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((ATTACKER, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    return b"".join(chunks)


def test_idle_and_slowloris_connections_are_capped_and_timed_out(cluster: Cluster) -> None:
    url = cluster.url("validator-0")
    port = int(url.rsplit(":", 1)[1])
    log_before = len(node_log(cluster))
    sockets = [_connect(port) for _ in range(200)]
    try:
        for sock in sockets[:50:5]:
            sock.sendall(b"GET /v1/head HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert_healthy_fast(url)
        answers = [_read_all(sock) for sock in sockets]  # each is closed by the node
    finally:
        for sock in sockets:
            sock.close()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(refused) >= 150, "connections over the per-client cap are refused"
    assert len(timed_out) >= 25, "idle and slow connections are closed after the deadline"
    assert all(b'"code": "busy"' in a for a in refused)
    assert all(b'"code": "timeout"' in a for a in timed_out)
    assert_healthy_fast(url)
    assert_commits(cluster)
    assert len(node_log(cluster)) - log_before < 20_000, "the attack does not flood the log"


def test_a_stalled_or_vanished_body_is_not_an_internal_error(cluster: Cluster) -> None:
    url = cluster.url("validator-0")
    port = int(url.rsplit(":", 1)[1])
    head = b"POST /v1/txs HTTP/1.1\r\nHost: x\r\ncontent-type: application/msgpack\r\n"
    with _connect(port) as sock:
        sock.sendall(head + b"content-length: 1000\r\n\r\n" + b"\x00" * 10)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b'"code":"timeout"' in answer.replace(b" ", b"")
    for _ in range(5):
        with _connect(port) as sock:
            sock.sendall(head + b"content-length: 1000\r\n\r\n" + b"\x00" * 10)
    time.sleep(0.5)
    assert_healthy_fast(url)
    log = node_log(cluster)
    assert "internal error" not in log and "Traceback" not in log


def test_bytes_that_are_not_http_get_a_json_400(cluster: Cluster) -> None:
    url = cluster.url("validator-0")
    port = int(url.rsplit(":", 1)[1])
    for junk in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 64_000 + b"\r\n\r\n",  # headers over 16 KiB
    ):
        with _connect(port) as sock:
            sock.sendall(junk)
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
        assert b'"code": "malformed"' in answer
    assert_healthy_fast(url)
