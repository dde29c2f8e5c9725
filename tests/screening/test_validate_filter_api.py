"""The `validateFilter` GraphQL field, on a schema holding only the filter query mixin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
import talib

from app.api.filter_check import FilterQuery
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from tests.screening.conftest import SYMBOLS

QUERY = """
query ($code: String!, $symbols: [String!]) {
  validateFilter(code: $code, symbols: $symbols) {
    valid dryRun matches elapsedMs errors { line column message }
  }
}
"""


@strawberry.type
class Query(FilterQuery):
    pass


@dataclass
class _Engine:
    market: MarketData
    screener: ScreenerEngine


@dataclass
class _Runtime:
    engine: _Engine | None


@dataclass
class _Context:
    runtime: _Runtime

    def require_user(self) -> object:
        return object()


async def _validate(engine: _Engine | None, **variables: Any) -> dict[str, Any]:
    result = await strawberry.Schema(query=Query).execute(
        QUERY, variable_values=variables, context_value=_Context(_Runtime(engine))
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    return dict(result.data["validateFilter"])


async def test_validate_filter_reports_a_syntax_error_with_line_and_column() -> None:
    answer = await _validate(None, code="x = 1\nreturn x +")

    assert answer["valid"] is False
    assert answer["errors"] == [
        {"line": 2, "column": 11, "message": "syntax error: invalid syntax"}
    ]


async def test_validate_filter_returns_the_matching_symbols(
    store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed
) -> None:
    engine = _Engine(MarketData(feed, store), ScreenerEngine(sandbox))
    below = sorted(
        s for s in SYMBOLS if talib.RSI(store.candles(s, "1h").close, timeperiod=14)[-1] < 50
    )

    answer = await _validate(engine, code="return rsi(candles)[-1] < 50", symbols=SYMBOLS)

    assert answer["valid"] is True and answer["dryRun"] is True
    assert answer["errors"] == []
    assert answer["matches"] == below
    assert answer["elapsedMs"] > 0
