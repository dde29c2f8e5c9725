"""The `validateFilter` GraphQL field, on a schema holding only the filter query mixin."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import strawberry
import talib
from strawberry.types import ExecutionResult

from app.api.errors import ApiErrors
from app.api.filter_check import FilterQuery
from app.core.settings import Settings
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.services.filter_check import FilterChecker
from tests.events.live import until
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
class _Runtime:
    filter_checker: FilterChecker | None


@dataclass
class _User:
    id: int


@dataclass
class _Context:
    runtime: _Runtime

    def require_user(self) -> _User:
        return _User(1)


SCHEMA = strawberry.Schema(query=Query, extensions=[ApiErrors])


async def _execute(checker: FilterChecker | None, **variables: Any) -> ExecutionResult:
    return await SCHEMA.execute(
        QUERY, variable_values=variables, context_value=_Context(_Runtime(checker))
    )


async def _validate(checker: FilterChecker | None, **variables: Any) -> dict[str, Any]:
    result = await _execute(checker, **variables)
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
    checker = FilterChecker(MarketData(feed, store), sandbox)
    below = sorted(
        s for s in SYMBOLS if talib.RSI(store.candles(s, "1h").close, timeperiod=14)[-1] < 50
    )

    answer = await _validate(checker, code="return rsi(candles)[-1] < 50", symbols=SYMBOLS)

    assert answer["valid"] is True and answer["dryRun"] is True
    assert answer["errors"] == []
    assert answer["matches"] == below
    assert answer["elapsedMs"] > 0


async def test_a_second_concurrent_check_of_a_user_is_a_clear_graphql_error(
    store: KlineStore, sandbox: FilterSandbox, feed: SimulatedFeed
) -> None:
    checker = FilterChecker.from_settings(
        MarketData(feed, store), Settings(dry_run_eval_seconds=1.0)
    )
    loop = "for i in range(10**10):\n    pass\nreturn True"
    async with checker.sandbox:
        first = asyncio.create_task(_execute(checker, code=loop))
        await until(lambda: 1 in checker._in_flight)

        second = await _execute(checker, code="return True")

        assert second.errors is not None
        [error] = second.errors
        assert error.extensions == {"code": "TOO_MANY_REQUESTS"}
        assert "still running" in error.message
        assert (await first).errors is None
