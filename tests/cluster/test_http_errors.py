"""Bad input over HTTP gets the specified 4xx and changes nothing; the node keeps running."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from almoner.node.chain.codec import H, decode, encode
from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.tx import make_tx
from almoner.node.server.p2p import seal
from tests.cluster.harness import Cluster, running_cluster
from tests.p2p_peer import send_msgs

MSGPACK = {"content-type": "application/msgpack"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("net")) as c:
        with c.client("validator-0") as client:
            client.submit(c.donation("platform-1", "charity-1", 500), wait=True)
        yield c


def post(c: Cluster, body: bytes, path: str = "/v1/txs") -> httpx.Response:
    return httpx.post(c.url("validator-1") + path, content=body, headers=MSGPACK, timeout=10)


def expect(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def snapshot(c: Cluster) -> list[Any]:
    return [(c.status(n)["height"], c.status(n)["mempool"]) for n in c.names]


def signed(
    c: Cluster, signer: str, tx_type: str, body: dict[str, Any], chain: str | None = None
) -> bytes:
    return encode(make_tx(chain or c.chain_id, tx_type, c.key(signer), body, 7))


def test_bad_txs_are_refused_with_their_codes(cluster: Cluster) -> None:
    before = snapshot(cluster)
    expect(post(cluster, b"\xc1garbage"), 400, "malformed")
    expect(post(cluster, b"\xcc\x05"), 400, "non_canonical")
    good = signed(
        cluster,
        "platform-1",
        "donation.record",
        {
            "donation": "x-1",
            "donor": H(b"d"),
            "charity": cluster.key("charity-1").public_key,
            "campaign": None,
            "amount": 5,
            "currency": "USD",
            "received_at": 1_700_000_000_000,
        },
    )
    tampered = decode(good)
    tampered["sig"] = bytes([tampered["sig"][0] ^ 1]) + tampered["sig"][1:]
    expect(post(cluster, encode(tampered)), 400, "bad_signature")
    wrong_chain = signed(
        cluster,
        "platform-1",
        "donation.record",
        {
            "donation": "x-2",
            "donor": H(b"d"),
            "charity": cluster.key("charity-1").public_key,
            "campaign": None,
            "amount": 5,
            "currency": "USD",
            "received_at": 1_700_000_000_000,
        },
        chain="other-chain",
    )
    expect(post(cluster, wrong_chain), 400, "wrong_chain")
    error = expect(
        post(
            cluster,
            signed(
                cluster,
                "platform-1",
                "donation.record",
                {
                    "donation": "x-3",
                    "donor": H(b"d"),
                    "charity": cluster.key("charity-1").public_key,
                    "campaign": None,
                    "amount": 0,
                    "currency": "USD",
                    "received_at": 1_700_000_000_000,
                },
            ),
        ),
        400,
        "invalid_field",
    )
    assert error["details"]["field"] == "body.amount"
    overdraft = signed(
        cluster,
        "charity-1",
        "funds.disburse",
        {
            "disbursement": "big",
            "fund": "general",
            "amount": 10**12,
            "currency": "USD",
            "category": "program",
            "payee": "x",
            "purpose": "y",
            "evidence": [],
        },
    )
    expect(post(cluster, overdraft), 422, "insufficient_funds")
    stranger = KeyPair.generate()
    unknown = encode(
        make_tx(
            cluster.chain_id,
            "audit.attest",
            stranger,
            {
                "attestation": "a",
                "charity": cluster.key("charity-1").public_key,
                "period": "2026",
                "opinion": "clean",
                "report": H(b"r"),
                "note": "",
            },
            1,
        )
    )
    expect(post(cluster, unknown), 403, "unknown_signer")
    expect(post(cluster, b"\x00" * (64 * 1024 + 1)), 413, "too_large")
    huge_batch = b"\xdc\x00\x01" + b"\x00" * (17 * 1024 * 1024)
    expect(post(cluster, huge_batch, "/v1/txs/batch"), 413, "too_large")
    assert snapshot(cluster) == before


def test_reads_with_bad_ids(cluster: Cluster) -> None:
    base = cluster.url("validator-0")
    expect(httpx.get(f"{base}/v1/nowhere"), 404, "not_found")
    expect(httpx.get(f"{base}/v1/txs/{'ab' * 32}"), 404, "not_found")
    expect(httpx.get(f"{base}/v1/txs/xyz"), 400, "invalid_field")
    expect(httpx.get(f"{base}/v1/blocks/999999"), 404, "not_found")
    expect(httpx.get(f"{base}/v1/blocks/-1"), 400, "invalid_field")
    expect(httpx.get(f"{base}/v1/parties/{'cd' * 32}"), 404, "not_found")
    expect(
        httpx.get(f"{base}/v1/proofs/consistency", params={"first": 5, "second": 2}),
        400,
        "invalid_field",
    )
    expect(httpx.get(f"{base}/v1/donations/{'ab' * 32}/nope/trace"), 404, "not_found")
    expect(httpx.delete(f"{base}/v1/head"), 405, "method_not_allowed")


def test_p2p_channel_refuses_a_key_not_pinned_in_genesis(cluster: Cluster) -> None:
    before = snapshot(cluster)
    target = cluster.url("validator-0")
    stranger = KeyPair.generate()
    vote = {
        "type": "vote",
        "vote": {
            "kind": "prevote",
            "chain": cluster.chain_id,
            "height": 99,
            "round": 0,
            "block_hash": None,
            "validator": stranger.public_key,
            "sig": b"\x00" * 64,
        },
    }
    node = cluster.key("validator-0").public_key
    # The handshake completes (the stranger proves its own key), then the node hangs up
    # before reading a byte of the frame.
    assert send_msgs(target, node, stranger, cluster.chain_id, [vote]) == b""
    metrics = httpx.get(target + "/metrics").text
    assert 'almoner_p2p_refused_total{code="not_a_validator"} 1' in metrics
    # The v1 HTTP envelope route refuses the same key, before decoding its messages.
    envelope = seal(stranger, cluster.chain_id, [vote])
    refused = httpx.post(target + "/v1/p2p/messages", content=envelope, headers=MSGPACK)
    expect(refused, 403, "not_a_validator")
    assert (
        'almoner_p2p_refused_total{code="not_a_validator"} 2' in httpx.get(target + "/metrics").text
    )
    assert snapshot(cluster) == before
    assert httpx.get(target + "/healthz").status_code == 200


def test_resubmission_is_idempotent(cluster: Cluster) -> None:
    raw = cluster.donation("platform-2", "charity-2", 42)
    first = post(cluster, raw)
    assert first.status_code in (200, 202)
    again = post(cluster, raw)
    assert again.status_code in (200, 202)
    assert again.json()["tx_id"] == first.json()["tx_id"]
    committed = httpx.post(
        cluster.url("validator-1") + "/v1/txs",
        params={"wait": "commit"},
        content=raw,
        headers=MSGPACK,
        timeout=30,
    )
    assert committed.status_code == 200
    receipt = committed.json()
    assert receipt["status"] == "committed" and receipt["tx_id"] == first.json()["tx_id"]
    assert set(receipt) == {
        "tx_id",
        "status",
        "height",
        "block_hash",
        "index_in_block",
        "proof",
        "head",
    }
    after = post(cluster, raw)
    assert after.status_code == 200 and after.json()["height"] == receipt["height"]


def test_batch_reports_each_tx(cluster: Cluster) -> None:
    good = cluster.donation("platform-1", "charity-3", 7)
    bad = b"\xca\x00\x00\x00\x00"  # a float: framed, so judged alone
    body = b"\x93" + good + bad + good
    response = post(cluster, body, "/v1/txs/batch")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["pending", "rejected", "pending"]
    assert results[1]["error"]["code"] == "malformed"
    assert results[0]["tx_id"] == results[2]["tx_id"]


def test_unframeable_batch_is_refused_whole(cluster: Cluster) -> None:
    expect(post(cluster, b"\x92\xc1\xc1", "/v1/txs/batch"), 400, "malformed")
    expect(post(cluster, b"\x81\xa1a\x01", "/v1/txs/batch"), 400, "malformed")


def test_random_garbage_never_yields_a_server_error(cluster: Cluster) -> None:
    """Seeded junk at every write endpoint and odd paths: always a 4xx with an error body."""
    rng = random.Random(20261128)
    base = cluster.url("validator-2")
    before = snapshot(cluster)
    valid = cluster.donation("platform-1", "charity-2", 9)
    with httpx.Client(timeout=10) as http:
        for n in range(150):
            kind = n % 3
            if kind == 0:
                body = rng.randbytes(rng.randrange(0, 300))
            elif kind == 1:  # a valid tx with a few bytes flipped or cut
                mutated = bytearray(valid)
                for _ in range(rng.randrange(1, 4)):
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                body = bytes(mutated[: rng.randrange(1, len(mutated) + 1)])
            else:  # msgpack-looking prefixes: arrays, maps, huge declared lengths
                body = bytes([rng.choice([0x91, 0x81, 0xDC, 0xDE, 0xC6, 0xDB])]) + rng.randbytes(8)
            for path in ("/v1/txs", "/v1/txs/batch"):
                response = http.post(base + path, content=body, headers=MSGPACK)
                if response.status_code < 400:
                    continue  # a mutation may still be a valid, new tx: that is fine
                assert response.status_code < 500, (path, body.hex(), response.text)
                assert response.json()["error"]["code"]
        odd_paths = (
            "/v1/blocks/0", "/v1/blocks/x", "/v1/txs/" + "0" * 63, "/v1/parties/zz",
            "/v1/charities/00/funds", "/v1/proofs/consistency?first=a&second=2",
            "/v1/blocks?from=0&limit=-1", "/v1/txs/" + "ab" * 32 + "?proof_size=x",
        )  # fmt: skip
        for path in odd_paths:
            response = http.get(base + path)
            assert 400 <= response.status_code < 500, (path, response.text)
            assert response.json()["error"]["code"]
    assert httpx.get(base + "/healthz").status_code == 200
    after = snapshot(cluster)
    assert [h for h, _ in after] >= [h for h, _ in before]
