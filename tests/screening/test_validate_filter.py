"""validateFilter: located errors for bad code, the symbols a good filter matches now."""

from __future__ import annotations

import talib

from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.services.filter_check import FilterChecker, validate_filter
from tests.screening.conftest import SYMBOLS


def _checker(store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed) -> FilterChecker:
    return FilterChecker(MarketData(feed, store), sandbox)


async def test_a_syntax_error_is_reported_with_its_line_and_column() -> None:
    check = await validate_filter("r = rsi(candles)\nreturn (r[-1] < 30", interval="1h")

    assert not check.valid
    [error] = check.errors
    assert (error.line, error.column) == (2, 8)
    assert "syntax error" in error.message
    assert not check.ran


async def test_every_whitelist_error_is_reported_at_its_place() -> None:
    check = await validate_filter("x = 1\nimport os\nreturn x.__class__")

    assert [(e.line, e.column) for e in check.errors] == [(2, 1), (3, 8)]
    assert "imports are not allowed" in check.errors[0].message


async def test_a_valid_filter_returns_the_symbols_it_matches_now(
    store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed
) -> None:
    code = "return rsi(candles, 14)[-1] > 50"
    expected = sorted(
        s for s in SYMBOLS if talib.RSI(store.candles(s, "1h").close, timeperiod=14)[-1] > 50
    )

    check = await validate_filter(code, checker=_checker(store, sandbox, feed))

    assert check.valid and check.ran
    assert list(check.matches) == expected
    assert 0 < len(expected) < len(SYMBOLS)
    assert check.evaluated == len(SYMBOLS)
    assert check.elapsed_ms > 0


async def test_the_dry_run_is_limited_to_the_symbols_asked_for(
    store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed
) -> None:
    check = await validate_filter(
        "return True",
        ["ETH/USDT", "NOPE/USDT"],
        checker=_checker(store, sandbox, feed),
    )

    assert check.matches == ("ETH/USDT",)
    assert check.missing == ("NOPE/USDT",)


async def test_a_run_time_failure_is_an_error_at_the_line_that_raised(
    store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed
) -> None:
    check = await validate_filter(
        "x = 0\nif x == 0:\n    return len(candles.close) // x\nreturn False",
        checker=_checker(store, sandbox, feed),
    )

    [error] = check.errors
    assert (error.line, error.column) == (3, 12)
    assert error.message.startswith("ZeroDivisionError")
    assert check.matches == ()
