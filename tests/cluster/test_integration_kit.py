"""What a platform integrating over HTTP relies on, against a real one-node network:
commit events, the JSON-instead-of-msgpack answer, and responses that match /openapi.json."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from almoner.node.audit.client import ReceiptError
from almoner.node.chain.codec import H, decode
from almoner.node.chain.tx import make_tx
from almoner.node.errors import ProtocolError
from tests.cluster.harness import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("kit"), nodes=1) as c:
        yield c


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into its events (id, event, data as JSON)."""
    events = []
    for chunk in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in chunk.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(
                {"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])}
            )
    return events


def get_events(
    c: Cluster, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    url = c.url("validator-0") + "/v1/events"
    response = httpx.get(url, params=params, headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.text)


def test_json_body_is_refused_with_a_message_that_names_msgpack(cluster: Cluster) -> None:
    before = cluster.status("validator-0")["mempool"]
    url = cluster.url("validator-0")
    tx_json = {"chain": cluster.chain_id, "type": "donation.record", "nonce": 1, "body": {}}
    for path in ("/v1/txs", "/v1/txs/batch"):
        response = httpx.post(url + path, json=tx_json, timeout=10)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "malformed"
        assert "MessagePack" in error["message"]
        assert error["details"] == {"expected": "application/msgpack", "got": "json"}
    assert cluster.status("validator-0")["mempool"] == before


def test_events_replay_resume_and_filter(cluster: Cluster) -> None:
    platform = cluster.key("platform-1").public_key
    with cluster.client("validator-0") as client:
        first = client.submit(cluster.donation("platform-1", "charity-1", 700), wait=True)
        second = client.submit(cluster.donation("platform-2", "charity-2", 800), wait=True)
    top = second["height"]
    everything = get_events(cluster, **{"from": 1, "until": top})
    tx_ids = [tx["tx_id"] for event in everything for tx in event["txs"]]
    assert first["tx_id"].hex() in tx_ids and second["tx_id"].hex() in tx_ids
    assert [e["id"] for e in everything] == sorted({e["height"] for e in everything})
    for event in everything:
        for tx in event["txs"]:
            assert H(bytes.fromhex(tx["tx_id"])) != b""  # hex of 32 bytes
            assert len(tx["tx_id"]) == 64 and tx["tx"]["type"] == tx["type"]

    mine = get_events(
        cluster, party=platform.hex(), type="donation.record", **{"from": 1, "until": top}
    )
    mine_ids = [tx["tx_id"] for event in mine for tx in event["txs"]]
    assert first["tx_id"].hex() in mine_ids and second["tx_id"].hex() not in mine_ids

    resumed = get_events(cluster, headers={"last-event-id": str(first["height"])}, until=str(top))
    assert all(e["id"] > first["height"] for e in resumed)
    assert second["tx_id"].hex() in [tx["tx_id"] for e in resumed for tx in e["txs"]]


def test_events_bad_filters_are_400(cluster: Cluster) -> None:
    url = cluster.url("validator-0") + "/v1/events"
    for params in ({"party": "zz"}, {"type": "donation.steal"}, {"from": "-1"}, {"until": "x"}):
        response = httpx.get(url, params=params, timeout=10)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "invalid_field"


def test_a_live_stream_delivers_a_new_commit(cluster: Cluster) -> None:
    head = cluster.height("validator-0")
    received: list[str] = []

    def listen() -> None:
        params = {"from": str(head + 1), "until": str(head + 5), "type": "donation.record"}
        with httpx.stream(
            "GET", cluster.url("validator-0") + "/v1/events", params=params, timeout=30
        ) as response:
            buffer = ""
            for text in response.iter_text():
                buffer += text
                events = sse_events(buffer)
                if events:
                    received.extend(tx["tx_id"] for e in events for tx in e["txs"])
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    with cluster.client("validator-0") as client:
        done = client.submit(cluster.donation("platform-1", "charity-3", 900), wait=True)
    listener.join(timeout=30)
    assert done["tx_id"].hex() in received


# -- every answer matches /openapi.json (schemathesis, bounded) ---------------------------


@schemathesis.serializer("application/msgpack")
def _raw_msgpack(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """Generated 'binary' bodies are sent as they are: garbage the node must refuse cleanly."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def api_schema(cluster: Cluster) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(cluster.url("validator-0") + "/openapi.json")
    # The event stream is open-ended by design; it has its own tests above.
    return schema.exclude(path="/v1/events")


# A schema-valid body is not a valid signed tx (the schema can only say "binary"), so
# schemathesis' positive-data check does not apply; every other response check does.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def test_answers_match_the_openapi_document(api_schema: schemathesis.BaseSchema) -> None:
    """Generated requests to every operation (12 each, fixed seeds): no 5xx, every status
    and content type documented, every JSON body valid against its schema."""
    checked = 0
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None)
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=CHECKS, timeout=10)

        check()
        checked += 1
    assert checked >= 17


def test_python_client_receipts_batches_events_and_duplicates(cluster: Cluster) -> None:
    genesis = cluster.devnet.genesis
    with cluster.client("validator-0") as client:
        raws = [cluster.donation("platform-2", "charity-1", 300 + i) for i in range(3)]
        garbage = b"\xcc\x05"  # frames as one element, but is not canonical
        results = client.submit_and_wait([raws[0], garbage, raws[1], raws[2]])
        assert [r["status"] for r in results] == ["committed", "rejected", "committed", "committed"]
        assert results[1]["error"]["code"] == "non_canonical"
        for receipt in (results[0], results[2], results[3]):
            client.verify_receipt(receipt, genesis)
        forged = {**results[0], "tx_id": H(b"not a tx")}
        with pytest.raises(ReceiptError):
            client.verify_receipt(forged, genesis)

        first = decode(raws[0])
        again = make_tx(
            cluster.chain_id, "donation.record", cluster.key("platform-2"), first["body"], 99
        )
        with pytest.raises(ProtocolError) as refused:
            client.submit(again)
        assert refused.value.code == "duplicate_id"
        assert refused.value.details["tx_id"] == results[0]["tx_id"].hex()

        platform = cluster.key("platform-2").public_key
        found = client.lookup(platform, "donation.record", first["body"]["donation"])
        assert found["tx_id"] == results[0]["tx_id"]
        client.verify_receipt(found["receipt"], genesis)
        with pytest.raises(ProtocolError) as missing:
            client.lookup(platform, "donation.record", "never-used")
        assert missing.value.code == "not_found"
        events = list(client.events(start=1, until=results[3]["height"], party=platform))
        seen = {tx["tx_id"] for event in events for tx in event["txs"]}
        assert {r["tx_id"].hex() for r in (results[0], results[2], results[3])} <= seen
