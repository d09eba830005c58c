"""Pages over HTTP (no browser): languages, money formatting, search, and odd input."""

from __future__ import annotations

import httpx
import pytest

from almoner.node.server.explorer.i18n import MESSAGES, Translator, negotiate
from almoner.node.server.explorer.sankey import render_sankey
from tests.explorer.conftest import RunningNode


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        (None, None, None, "zh-CN"),
        (None, None, "en-GB,en;q=0.9", "en"),
        (None, None, "fr-FR, en;q=0.5, zh;q=0.8", "zh-CN"),
        (None, None, "zh-TW", "zh-CN"),
        (None, None, "de, *;q=0.1", "zh-CN"),
        (None, None, "en;q=garbage, zh-CN;q=0.2", "zh-CN"),
        (None, "en", "zh-CN", "en"),
        ("zh-CN", "en", "en", "zh-CN"),
        ("klingon", None, "en", "en"),
    ],
)
def test_language_negotiation(
    query: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(query, cookie, header) == expected


def test_money_is_formatted_by_babel_per_locale_and_currency() -> None:
    en, zh = Translator("en"), Translator("zh-CN")
    assert en.money(123_456, "USD") == "$1,234.56"
    assert zh.money(123_456, "USD") == "US$1,234.56"
    assert zh.money(100_000, "CNY") == "¥1,000.00"
    assert en.money(500, "JPY") == "¥500"  # no minor unit: the integer is yen
    assert en.percent(0.4964) == "49.6%" and en.percent(None) == "—"
    assert en.when(1_790_000_000_000).endswith("UTC")


def test_every_message_has_both_languages() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == {"en", "zh-CN"}, key
        # The proof words are shown next to the literal "verified"/"failed": English needs none.
        assert texts["zh-CN"] and (texts["en"] or key in ("verified", "failed")), key


def test_sankey_bands_carry_their_amounts() -> None:
    edges = [
        {"source": "platform:aa", "target": "fund:general", "amount": 900},
        {"source": "fund:general", "target": "fund:wells", "amount": 300},
        {"source": "fund:general", "target": "category:program", "amount": 500},
        {"source": "fund:wells", "target": "held", "amount": 300},
        {"source": "fund:general", "target": "held", "amount": 100},
        {"source": "charity:bb", "target": "fund:general", "amount": 0},
    ]
    svg = str(render_sankey(edges, lambda name: f"<{name}>", str))
    assert svg.startswith('<svg data-testid="fund-flow"')
    assert svg.count('class="band') == 5  # the zero edge is not drawn
    assert 'data-node="fund:general" data-in="900" data-out="900"' in svg
    assert "&lt;fund:wells&gt;" in svg and "<fund:wells>" not in svg  # labels are escaped
    assert str(render_sankey([], str, str)) == ""


def test_pages_answer_in_both_languages_with_the_right_header(node: RunningNode) -> None:
    zh = httpx.get(node.url + "/", headers={"accept-language": "zh-CN"})
    en = httpx.get(node.url + "/", headers={"accept-language": "en"})
    assert zh.headers["content-language"] == "zh-CN" and "最新捐赠" in zh.text
    assert en.headers["content-language"] == "en" and "Latest donations" in en.text
    chosen = httpx.get(node.url + "/?lang=en")
    assert "almoner_lang=en" in chosen.headers["set-cookie"]


@pytest.mark.parametrize(
    "path",
    [
        "/track/zz/d-a",
        "/track/" + "00" * 32 + "/d-a",
        "/track/" + "AB" * 32 + "/d-a",
        "/charity/" + "00" * 32,
        "/charity/not-hex",
        "/t/00/d-a",
        "/t/00000000/d-a",
    ],
)
def test_unknown_things_are_404_pages(node: RunningNode, path: str) -> None:
    response = httpx.get(node.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_a_platform_key_is_not_a_charity_page(node: RunningNode) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    assert httpx.get(f"{node.url}/charity/{platform}").status_code == 404


@pytest.mark.parametrize("q", ["d-a", "{p}/d-a", "http://x/track/{p}/d-a", "{short}/d-a"])
def test_search_finds_by_id_link_or_short_link(node: RunningNode, q: str) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    q = q.format(p=platform, short=platform[:8])
    response = httpx.get(node.url + "/", params={"q": q})
    assert response.status_code == 303
    assert response.headers["location"] == f"/track/{platform}/d-a"


@pytest.mark.parametrize("q", ["nothing-like-this", "x" * 300, "'; drop table --", "捐款"])
def test_search_without_a_match_says_so(node: RunningNode, q: str) -> None:
    response = httpx.get(node.url + "/", params={"q": q, "lang": "en"})
    assert response.status_code == 200 and "No donation with that id." in response.text


def test_the_short_link_redirects_to_the_track_page(node: RunningNode) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    response = httpx.get(f"{node.url}/t/{platform[:8]}/d-c")
    assert response.status_code == 307
    assert response.headers["location"] == f"/track/{platform}/d-c"


def test_regulator_overview_lists_parties_and_suspensions(node: RunningNode) -> None:
    page = httpx.get(node.url + "/regulator?lang=en").text
    assert page.count('data-testid="party-row"') == 6
    assert "licence revoked" in page and "Food Bank Network" in page
    charity = node.chain.keys["charity-1"].public_key.hex()
    assert f'href="/charity/{charity}"' in page and "2026 · Clean" in page
