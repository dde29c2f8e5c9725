"""Dashboard load benchmark: how soon the page at `/` is usable, against GraphiQL's page.

    python -m benchmarks.dashboard [--loads 10]

Starts a fresh `traders serve --demo` (a throwaway SQLite database, the simulated feed,
three demo traders) and opens the sign-in link in headless Chromium (Debian's, under
playwright) `--loads` times, each in a new browser context, so nothing is cached between
loads. For each it reads the browser's navigation timing: DOMContentLoaded and the load
event (every script and style fetched and run; the chart library loads later, with the
first chart), then the page's own `traders-drawn` mark: the trader list drawn from the
first GraphQL answer, the page usable. The
baseline, measured in the same run against the same server, is GraphiQL at `/graphql`
(the page the API served before the dashboard), to its load event; its scripts come from
a CDN, out of reach here, so it measures little more than one page served by this process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from tests.dashboard.browser import CHROMIUM, DemoServer

DRAWN = "performance.getEntriesByName('traders-drawn')[0].startTime"
NAVIGATION = """() => {
  const [entry] = performance.getEntriesByType('navigation');
  return { ready: entry.domContentLoadedEventEnd, load: entry.loadEventEnd };
}"""


def measure(
    browser: Browser, url: str, loads: int, ready: Callable[[Page], float]
) -> list[dict[str, float]]:
    figures = []
    for _ in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url, wait_until="load")
        shown = ready(page)
        timing = page.evaluate(NAVIGATION)
        figures.append({**timing, "shown": shown})
        context.close()
    return figures


def traders_shown(page: Page) -> float:
    """When the page drew its first GraphQL answer: its own `traders-drawn` timing mark."""
    page.wait_for_selector("#trader-list .trader", timeout=30_000)
    return float(page.evaluate(DRAWN))


def report(name: str, figures: list[dict[str, float]], keys: tuple[str, ...]) -> str:
    parts = []
    for key in keys:
        values = sorted(figure[key] for figure in figures)
        parts.append(f"{key} median {statistics.median(values):.0f} ms, max {values[-1]:.0f} ms")
    return f"{name:<28} " + "; ".join(parts)


def main(loads: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        server = DemoServer(Path(directory))
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                dashboard = measure(browser, server.link, loads, traders_shown)
                graphiql = measure(browser, f"{server.base}/graphql", loads, lambda page: 0.0)
                browser.close()
        finally:
            server.stop()
    print(f"{loads} cold loads each, from a local traders serve --demo")
    print(report("dashboard /", dashboard, ("ready", "load", "shown")))
    print(report("baseline: GraphiQL /graphql", graphiql, ("ready", "load")))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args().loads)
