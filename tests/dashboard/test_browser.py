"""The dashboard as a person uses it, in headless Chromium against a real `traders serve
--demo`: the first-run link, the demo traders at work, a trader created from a sentence in
under 30 s, a live signal and its decision, a toggle; bad filter code refused at its line;
a phone-sized screen. No test leaves a console error behind.

One server serves the module (a fresh SQLite database, so the first run happens once);
each test opens its own browser context, so each signs in through the link again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.dashboard.browser import ConsoleErrors, DemoServer, require_chromium, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
expect = playwright_api.expect

LIVE_WAIT_MS = 120_000  # a signal on the sped-up feed, on a loaded 2-core machine
UI_WAIT_MS = 20_000
CREATE_FLOW_SECONDS = 30  # the seed's first success metric
expect.set_options(timeout=UI_WAIT_MS)
TRADERS = "{ traders { nodes { id name enabled status } } }"
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((control) => control.offsetParent !== null)
  .filter((control) => !(control.labels?.length || control.getAttribute('aria-label')
    || control.textContent.trim()))
  .map((control) => control.outerHTML)"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    require_chromium()
    demo = DemoServer(tmp_path_factory.mktemp("dashboard"))
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def browser(server: DemoServer) -> Iterator[Browser]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Browser, width: int, height: int) -> tuple[Page, ConsoleErrors]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(UI_WAIT_MS)
    return page, ConsoleErrors(page)


def test_demo_sign_in_create_a_trader_watch_a_live_signal_and_toggle(
    server: DemoServer, browser: Browser
) -> None:
    page, console = open_page(browser, 1280, 900)
    started = time.monotonic()
    page.goto(server.link)
    expect(page).to_have_url(f"{server.base}/")  # the token left the address bar...
    assert page.evaluate("sessionStorage.getItem('traders.token')") == server.token
    page.evaluate("window.notReloaded = true")  # ...and lives on until the tab closes

    demo_items = page.locator("#trader-list .trader[data-status=RUNNING]")
    expect(demo_items).to_have_count(3)
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#market")).to_have_text("simulated prices")  # --demo's feed

    page.get_by_role("button", name="New trader").click()
    page.get_by_label("Describe your trader in one sentence").fill(
        "Buy SOL when RSI drops under 35 on the 1m, stop 2%"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("template · rsi_mean_reversion")
    expect(page.locator("#preview-filter")).to_contain_text("RSI(14) under 35")
    page.get_by_label("Name").fill("SOL dip buyer")
    page.get_by_role("button", name="Create trader").click()
    created = page.locator("#trader-list .trader", has_text="SOL dip buyer")
    expect(created).to_have_attribute("data-status", "RUNNING")
    create_seconds = time.monotonic() - started
    assert create_seconds < CREATE_FLOW_SECONDS, f"created after {create_seconds:.1f} s"
    expect(page.locator("#trader-view h2")).to_have_text("SOL dip buyer")
    saved = [t for t in server.graphql(TRADERS)["traders"]["nodes"] if t["name"] == "SOL dip buyer"]
    assert [(t["enabled"], t["status"]) for t in saved] == [(True, "RUNNING")]

    page.get_by_role("button", name="All traders").click()
    live_row = page.locator("#signals-table tbody tr[data-live=new]").first
    expect(live_row).to_be_visible(timeout=LIVE_WAIT_MS)
    analyzed = page.locator(
        "#signals-table tbody tr[data-live]:not([data-status=NEW])"
    ).first  # a row the subscription added or changed in place, once decided
    expect(analyzed).to_be_visible(timeout=LIVE_WAIT_MS)
    analyzed.focus()  # rows are reachable by keyboard
    page.keyboard.press("Enter")
    dialog = page.locator("#signal-dialog")
    expect(dialog.locator("#decision")).to_contain_text("Reasoning")
    expect(dialog.locator(".reasoning")).not_to_be_empty()
    screenshot(page, "demo-decision")
    dialog.get_by_role("button", name="Close").click()

    rsi = page.locator("#trader-list .trader", has_text="RSI mean reversion").first
    rsi.get_by_role("switch").click()
    expect(rsi).to_have_attribute("data-enabled", "false")
    expect(rsi).to_have_attribute("data-status", "PAUSED")
    paused = [
        t for t in server.graphql(TRADERS)["traders"]["nodes"] if t["name"] == "RSI mean reversion"
    ]
    assert [(t["enabled"], t["status"]) for t in paused] == [(False, "PAUSED")]
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "demo-dashboard")
    assert console.messages == []


def test_bad_filter_code_is_shown_at_its_line_and_nothing_is_saved(
    server: DemoServer, browser: Browser
) -> None:
    before = server.graphql(TRADERS)["traders"]["nodes"]
    page, console = open_page(browser, 1280, 900)
    page.goto(server.link)
    page.get_by_role("button", name="New trader").click()
    page.get_by_label("Start from a template").select_option("rsi_mean_reversion")
    page.get_by_text("Advanced: edit the filter code").click()
    page.get_by_label("Filter code").fill("r = rsi(candles, 14)\nreturn r[-1] < < 30\n")

    error = page.locator("#preview .code-error")
    expect(error).to_have_count(1)
    expect(error).to_have_attribute("data-line", "2")
    expect(error).to_contain_text("line 2:")
    expect(page.locator("#preview .code-gutter .has-error")).to_have_text("2")
    page.get_by_role("button", name="Create trader").click()
    expect(page.locator("#preview-error")).to_contain_text("nothing was saved")
    expect(page.locator("#create-dialog")).to_be_visible()
    screenshot(page, "filter-error-inline")
    assert server.graphql(TRADERS)["traders"]["nodes"] == before
    assert console.messages == []


def test_a_quick_backtest_of_the_preview_draws_its_equity_and_saves_nothing(
    server: DemoServer, browser: Browser
) -> None:
    before = server.graphql(TRADERS)["traders"]["nodes"]
    page, console = open_page(browser, 1280, 900)
    page.goto(server.link)
    page.get_by_role("button", name="New trader").click()
    page.get_by_label("Describe your trader in one sentence").fill(
        "Buy BTC and ETH when RSI drops under 45 on the 15m"
    )
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Quick backtest").click()
    result = page.locator("#preview-backtest")
    expect(result.locator("#backtest-chart canvas").first).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(result).to_contain_text(re.compile(r"\([1-9]\d* closes\)"))
    screenshot(page, "preview-backtest")
    assert server.graphql(TRADERS)["traders"]["nodes"] == before
    assert console.messages == []


def test_at_phone_width_the_trader_list_and_signal_table_are_usable(
    server: DemoServer, browser: Browser
) -> None:
    width = 390
    page, console = open_page(browser, width, 844)
    page.goto(server.link)
    traders = page.locator("#trader-list .trader")
    expect(traders.first).to_be_visible()
    # Each list read in one evaluation: the page redraws as signals move, so an element
    # located in one round trip may be gone by the next.
    boxes = page.evaluate(
        "[...document.querySelectorAll('#trader-list .trader')]"
        ".map(el => [el.getBoundingClientRect().left, el.getBoundingClientRect().right])"
    )
    assert boxes and all(left >= 0 and right <= width for left, right in boxes)
    rows = page.locator("#signals-table tbody tr")
    expect(rows.first).to_be_visible(timeout=LIVE_WAIT_MS)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    edges = page.evaluate(
        "[...document.querySelectorAll('#signals-table tbody td.status')]"
        ".map(td => td.getBoundingClientRect().right)"
    )
    assert edges and max(edges) <= width  # no sideways scroll
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    page.get_by_label("Filter signals by trader or symbol").fill("rsi mean")
    expect(page.locator("#signals-table tbody tr").first).to_be_visible(timeout=LIVE_WAIT_MS)
    names = page.locator("#signals-table tbody tr td:nth-child(2)").all_inner_texts()
    assert names and all(name == "RSI mean reversion" for name in names)

    page.locator("#trader-list .trader-select", has_text="Volume spike").click()
    expect(page.locator("#trader-view h2")).to_have_text("Volume spike momentum")
    screenshot(page, "phone")
    assert console.messages == []


def test_a_bad_token_gets_a_clear_message(server: DemoServer, browser: Browser) -> None:
    page, console = open_page(browser, 1280, 900)
    page.goto(f"{server.base}/#token=trd_not-a-token")
    expect(page.locator("#sign-in-error")).to_contain_text("That token was not accepted")
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('traders.token')") is None
    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#trader-list .trader").first).to_be_visible()
    # The refused request itself is the only error the browser reports.
    assert [m for m in console.messages if "401" not in m] == []


def test_the_trader_view_edits_settings_stops_and_deletes_a_trader(
    server: DemoServer, browser: Browser
) -> None:
    trader_id = server.graphql(
        """mutation { createTrader(input: {name: "view test", interval: "1m", enabled: true,
            symbols: ["BTC/USDT"], strategy: {riskManagement: {stopLoss: "2"}}}) { id } }"""
    )["createTrader"]["id"]
    stop_loss = (
        "query($id: ID!) { trader(id: $id) { enabled strategy { riskManagement { stopLoss } } } }"
    )
    page, console = open_page(browser, 1280, 900)
    page.goto(server.link)
    page.locator("#trader-list .trader-select", has_text="view test").click()
    view = page.locator("#trader-view")
    expect(view.locator("h2")).to_have_text("view test")
    expect(view.locator(".chart canvas").first).to_be_visible()  # the equity curve

    view.get_by_text("Settings", exact=True).click()
    expect(view.get_by_label("Filter code")).to_be_hidden()  # advanced settings stay folded
    view.get_by_label("Stop loss %").fill("150")
    view.get_by_role("button", name="Save settings").click()
    expect(page.locator("#setting-strategy-riskManagement-stopLoss-error")).not_to_be_empty()
    assert (
        server.graphql(stop_loss, id=trader_id)["trader"]["strategy"]["riskManagement"]["stopLoss"]
        == "2"
    )
    view.get_by_label("Stop loss %").fill("4")
    view.get_by_role("button", name="Save settings").click()
    expect(view.locator("#trader-settings")).not_to_have_attribute("open", "")
    assert (
        server.graphql(stop_loss, id=trader_id)["trader"]["strategy"]["riskManagement"]["stopLoss"]
        == "4"
    )

    confirm = page.locator("#confirm-dialog")
    view.get_by_role("button", name="Stop trader").click()
    confirm.get_by_role("button", name="Stop trader").click()
    item = page.locator(f"#trader-list .trader[data-id='{trader_id}']")
    expect(item).to_have_attribute("data-enabled", "false")
    assert server.graphql(stop_loss, id=trader_id)["trader"]["enabled"] is False

    view.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Cancel").click()
    expect(item).to_have_count(1)
    view.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(item).to_have_count(0)
    expect(view).to_be_hidden()
    ids = [t["id"] for t in server.graphql(TRADERS)["traders"]["nodes"]]
    assert trader_id not in ids
    assert console.messages == []


def test_a_token_revoked_mid_session_leads_back_to_sign_in(
    server: DemoServer, browser: Browser
) -> None:
    token = server.issue_token()
    page, console = open_page(browser, 1280, 900)
    page.goto(f"{server.base}/#token={token}")
    expect(page.locator("#trader-list .trader").first).to_be_visible()
    server.revoke(token)
    # Any next request is refused: this click's, or a live update's re-read that may come
    # first and already show the sign-in form over the list (so the event is dispatched).
    page.locator("#trader-list .trader-select").first.dispatch_event("click")
    expect(page.locator("#sign-in-error")).to_contain_text("That token was not accepted")
    expect(page.locator("#dashboard")).to_be_hidden()
    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#trader-list .trader").first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('traders.token')") == server.token
    assert [m for m in console.messages if "401" not in m] == []
