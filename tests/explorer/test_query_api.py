"""The query API over HTTP, against a real node process serving a real LevelDB chain."""

from __future__ import annotations

import httpx
import msgpack
import pytest

from tests.explorer.conftest import RunningNode


def get(node: RunningNode, path: str, **params: str | int | None) -> httpx.Response:
    return httpx.get(node.url + path, params={k: v for k, v in params.items() if v is not None})


def test_donations_filters_and_cursor_over_http(node: RunningNode) -> None:
    keys = node.chain.keys
    c1, p1 = keys["charity-1"].public_key.hex(), keys["platform-1"].public_key.hex()
    everything = get(node, "/v1/donations", limit=500).json()
    assert everything["next_cursor"] is None and len(everything["items"]) > 40
    collected = []
    cursor = None
    while True:
        page = get(node, "/v1/donations", limit=7, cursor=cursor).json()
        collected.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert collected == everything["items"]
    wells = get(node, "/v1/donations", charity=c1, campaign="wells").json()["items"]
    assert [d["donation"] for d in wells] == ["d-late", "d-c"]
    pending = get(node, "/v1/donations", charity=c1, platform=p1, confirmed="false").json()
    assert pending["items"] and all(
        not d["confirmed"] and d["platform"] == p1 and d["charity"] == c1 for d in pending["items"]
    )
    late = get(node, "/v1/donations", from_time=node.chain.times[-1]).json()["items"]
    assert [d["donation"] for d in late] == ["d-late"]
    one = get(node, f"/v1/donations/{p1}/d-c").json()
    assert one["fund"] == "wells" and one["confirmed"] is True and one["time"] > 0


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/donations", {"charity": "zz"}, 400, "charity"),
        ("/v1/donations", {"cursor": "garbage!"}, 400, "cursor"),
        ("/v1/donations", {"limit": 0}, 400, "limit"),
        ("/v1/donations", {"limit": 100000}, 400, "limit"),
        ("/v1/donations", {"confirmed": "perhaps"}, 400, "confirmed"),
        ("/v1/donations", {"campaign": "wells"}, 400, "campaign"),
        ("/v1/donations", {"from_time": -5}, 400, "from_time"),
        ("/v1/parties", {"role": "validator"}, 400, "role"),
        ("/v1/charities/" + "00" * 32 + "/totals", {"period": "week"}, 400, "period"),
        ("/v1/charities/" + "00" * 32 + "/summary", {}, 404, None),
        ("/v1/charities/" + "00" * 32 + "/flow", {"currency": "USD"}, 404, None),
        ("/v1/donations/" + "00" * 32 + "/nothing", {}, 404, None),
    ],
)
def test_bad_queries_are_clear_4xx(
    node: RunningNode, path: str, params: dict[str, str | int], status: int, field: str | None
) -> None:
    response = get(node, path, **params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("not_found" if status == 404 else "invalid_field")
    if field is not None:
        assert field in error["details"].get("field", "")


def test_parties_campaigns_disbursements_totals_flow(node: RunningNode) -> None:
    c1 = node.chain.keys["charity-1"].public_key.hex()
    charities = get(node, "/v1/parties", role="charity").json()["items"]
    assert len(charities) == 3 and {p["role"] for p in charities} == {"charity"}
    campaigns = get(node, "/v1/campaigns", charity=c1).json()["items"]
    assert [(c["campaign"], c["raised"], c["spent"], c["held"]) for c in campaigns] == [
        ("wells", 15_000, 6_000, 8_000)
    ]
    program = get(node, f"/v1/charities/{c1}/disbursements", category="program").json()
    assert program["items"][0]["disbursement"] == "dis-wells"
    assert all(d["category"] == "program" for d in program["items"])
    totals = get(node, f"/v1/charities/{c1}/totals", period="all").json()["items"][0]
    assert totals["refunded"] == 1_000 and 0 < totals["overhead_ratio"] < 1
    flow = get(node, f"/v1/charities/{c1}/flow", currency="USD").json()
    assert any(e["target"] == "refund" and e["amount"] == 1_000 for e in flow["edges"])
    summary = get(node, f"/v1/charities/{c1}/summary").json()
    assert summary["currencies"] == ["USD"] and summary["charity"]["name"]


def test_lists_answer_msgpack_too(node: RunningNode) -> None:
    response = httpx.get(
        node.url + "/v1/donations", params={"limit": 2}, headers={"accept": "application/msgpack"}
    )
    assert response.headers["content-type"] == "application/msgpack"
    page = msgpack.unpackb(response.content)
    assert len(page["items"]) == 2 and isinstance(page["items"][0]["tx_id"], bytes)


def test_openapi_documents_the_query_routes_and_docs_are_local(node: RunningNode) -> None:
    spec = get(node, "/openapi.json").json()
    for path in (
        "/v1/donations",
        "/v1/parties",
        "/v1/campaigns",
        "/v1/charities/{charity}/totals",
        "/v1/donations/{platform}/{donation_id}",
    ):
        assert path in spec["paths"], path
    schema = spec["paths"]["/v1/donations"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("DonationPage")
    for page in ("/docs", "/redoc"):
        html = get(node, page).text
        assert "cdn" not in html.lower() and "/docs-static/" in html
    assert get(node, "/docs-static/swagger-ui-bundle.js").status_code == 200
    assert get(node, "/docs-static/redoc.standalone.js").status_code == 200
