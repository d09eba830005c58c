"""The explorer in a real headless Chromium (Debian's chromium + chromedriver, via selenium)
against a real node: search, the track timeline with proofs checked in the browser, a
tampering proxy, the charity page's Sankey, both languages, and screenshots."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.explorer.browser import chromium_available, headless_chromium
from tests.explorer.conftest import RunningNode
from tests.explorer.proxy import tampering_proxy

pytestmark = pytest.mark.skipif(
    not chromium_available() and not os.environ.get("CI"),
    reason="no chromium/chromedriver here (CI installs them: .ci/run, make test-deps)",
)


def attr(element: WebElement, name: str) -> str:
    value = element.get_attribute(name)
    assert value is not None, name
    return value


def by_testid(browser: webdriver.Chrome, name: str) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait_for_proofs(browser: webdriver.Chrome) -> list[str]:
    """Texts of every proof-status once none says 'checking' any more."""

    def settled(_: WebDriver) -> list[str] | Literal[False]:
        texts = [e.text for e in by_testid(browser, "proof-status")]
        return texts if texts and all(t in ("verified", "failed") for t in texts) else False

    result: list[str] = WebDriverWait(browser, 30).until(settled)
    return result


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("ALMONER_TEST_OUTPUT", tmp_path_factory.mktemp("screenshots")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium("en-US") as chrome:
        yield chrome


def test_search_then_track_every_step_verified(
    node: RunningNode, browser: webdriver.Chrome, screenshots: Path
) -> None:
    browser.get(node.url + "/?lang=en")
    box = by_testid(browser, "search")[0]
    box.send_keys("d-a", Keys.ENTER)
    WebDriverWait(browser, 20).until(lambda b: "/track/" in b.current_url)
    steps = by_testid(browser, "trace-step")
    kinds = [s.get_attribute("data-kind") for s in steps]
    # d-a: recorded, confirmed, moved to another charity by a transfer, spent, rest held.
    assert kinds[0] == "received" and "confirmed" in kinds and "moved" in kinds
    assert set(kinds) <= {"received", "confirmed", "moved", "spent", "refunded", "held"}
    statuses = wait_for_proofs(browser)
    assert statuses == ["verified"] * len([k for k in kinds if k != "held"])
    assert by_testid(browser, "proof-summary")[0].text == "verified"
    assert by_testid(browser, "amount")[0].text == "$100.00"
    assert browser.find_element(By.CSS_SELECTOR, ".qr svg") is not None
    browser.save_screenshot(str(screenshots / "track-en.png"))


def test_refund_and_spending_steps_with_evidence(
    node: RunningNode, browser: webdriver.Chrome
) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    browser.get(f"{node.url}/track/{platform}/d-c?lang=en")
    kinds = [s.get_attribute("data-kind") for s in by_testid(browser, "trace-step")]
    assert kinds == ["received", "refunded", "confirmed", "spent"]
    assert wait_for_proofs(browser) == ["verified"] * 4
    assert "井队 Drilling Co." in browser.page_source


def test_a_tampered_proof_fails_in_the_browser(
    node: RunningNode, browser: webdriver.Chrome
) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    browser.get(f"{node.url}/track/{platform}/d-c?lang=en")
    steps = by_testid(browser, "trace-step")
    refunded = next(s for s in steps if s.get_attribute("data-kind") == "refunded")
    victim = attr(refunded, "data-tx")
    with tampering_proxy(node.url, victim) as proxy:
        browser.get(f"{proxy}/track/{platform}/d-c?lang=en")
        statuses = wait_for_proofs(browser)
        by_kind = {
            s.get_attribute("data-kind"): s.find_element(
                By.CSS_SELECTOR, '[data-testid="proof-status"]'
            ).text
            for s in by_testid(browser, "trace-step")
        }
        assert by_kind["refunded"] == "failed"
        assert by_kind["received"] == "verified"  # only the altered hop fails
        assert statuses.count("failed") == 1
        assert by_testid(browser, "proof-summary")[0].text == "failed"


def test_charity_page_sankey_totals_and_languages(
    node: RunningNode, browser: webdriver.Chrome, screenshots: Path
) -> None:
    import httpx

    charity = node.chain.keys["charity-1"].public_key.hex()
    totals = httpx.get(f"{node.url}/v1/charities/{charity}/totals?period=all").json()["items"][0]
    browser.get(f"{node.url}/charity/{charity}?lang=en")
    svg = by_testid(browser, "fund-flow")[0]
    bands = svg.find_elements(By.CSS_SELECTOR, "path.band")
    amount = {
        (attr(b, "data-source"), attr(b, "data-target")): int(attr(b, "data-amount")) for b in bands
    }
    donated = sum(v for (s, _), v in amount.items() if s.startswith("platform:"))
    assert donated == totals["donated"]
    assert sum(v for (_, t), v in amount.items() if t == "refund") == totals["refunded"]
    for category in ("program", "admin", "fundraising"):
        spent = sum(v for (_, t), v in amount.items() if t == f"category:{category}")
        assert spent == totals["spent"][category]
    ratio = by_testid(browser, "overhead-ratio")[0]
    assert float(attr(ratio, "data-value")) == totals["overhead_ratio"]
    assert ratio.text.endswith("%")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Clean Water Foundation"
    assert "Income and spending per month" in browser.page_source
    browser.save_screenshot(str(screenshots / "charity-en.png"))
    by_testid(browser, "lang-switch")[0].click()
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    )
    assert "每月收支" in browser.page_source and "资金流向" in browser.page_source
    assert (
        "US$" in by_testid(browser, "overhead-ratio")[0].text
        or "%" in by_testid(browser, "overhead-ratio")[0].text
    )
    browser.save_screenshot(str(screenshots / "charity-zh-CN.png"))


def test_chinese_is_chosen_by_accept_language_and_the_switch_sticks(
    node: RunningNode, screenshots: Path
) -> None:
    platform = node.chain.keys["platform-1"].public_key.hex()
    with headless_chromium("zh-CN") as chinese:
        chinese.get(f"{node.url}/track/{platform}/d-c")
        assert chinese.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        assert "这笔捐款去了哪里" in chinese.page_source
        assert by_testid(chinese, "amount")[0].text == "US$50.00"
        assert wait_for_proofs(chinese) == ["verified"] * 4
        chinese.save_screenshot(str(screenshots / "track-zh-CN.png"))
        by_testid(chinese, "lang-switch")[0].click()
        WebDriverWait(chinese, 10).until(
            lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        )
        chinese.get(node.url + "/")  # the cookie keeps English without ?lang
        assert chinese.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert "Latest donations" in chinese.page_source


def test_regulator_signals_page_in_both_languages(
    node: RunningNode, browser: webdriver.Chrome, screenshots: Path
) -> None:
    import httpx

    for _ in range(300):  # the first look starts the analysis; it ends within seconds
        api = httpx.get(f"{node.url}/v1/supervision/signals", params={"limit": 500}).json()
        if api["computed_by"]["complete"]:
            break
        time.sleep(0.1)
    assert api["computed_by"]["height"] == node.chain.height
    browser.get(node.url + "/regulator?lang=en")
    browser.find_element(By.CSS_SELECTOR, 'nav a[href="/regulator/signals"]').click()
    WebDriverWait(browser, 10).until(lambda b: "/regulator/signals" in b.current_url)
    banner = by_testid(browser, "computed-by")[0]
    assert attr(banner, "data-height") == str(node.chain.height)
    assert attr(banner, "data-node") == api["computed_by"]["node"]
    assert "almoner supervise" in banner.text and str(node.chain.height) in banner.text
    rows = by_testid(browser, "signal-row")
    assert [attr(r, "data-rule") for r in rows] == [s["rule"] for s in api["items"][:50]]
    explanations = [e.text for e in by_testid(browser, "explanation")]
    assert explanations == [s["explanation"]["en"] for s in api["items"][:50]]
    first_tx = api["items"][0]["txs"][0]["tx_id"]
    assert rows[0].find_element(By.CSS_SELECTOR, f'a[href="/v1/txs/{first_tx}"]')
    assert by_testid(browser, "score-row")
    browser.save_screenshot(str(screenshots / "signals-en.png"))
    # Filter by rule with the form, then switch to Chinese: the filter stays.
    select = by_testid(browser, "rule-filter")[0]
    select.find_element(By.CSS_SELECTOR, 'option[value="overhead_above_limit"]').click()
    select.find_element(By.XPATH, "./ancestor::form").submit()
    WebDriverWait(browser, 10).until(lambda b: "rule=overhead_above_limit" in b.current_url)
    overhead = [s for s in api["items"] if s["rule"] == "overhead_above_limit"]
    assert len(by_testid(browser, "signal-row")) == len(overhead) == 3
    by_testid(browser, "lang-switch")[0].click()
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    )
    assert "almoner supervise" in by_testid(browser, "computed-by")[0].text
    assert "独立核查" in by_testid(browser, "computed-by")[0].text
    zh = [e.text for e in by_testid(browser, "explanation")]
    assert zh == [s["explanation"]["zh"] for s in overhead]
    assert "管理费用超限" in browser.page_source
    browser.save_screenshot(str(screenshots / "signals-zh-CN.png"))
