"""`market`, `klines` and `indicatorCatalog` through a Strawberry schema, as a client sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import strawberry
import talib

from app.api.context import Context
from app.api.errors import ApiErrors
from app.api.market import MarketQuery
from app.core.events import InProcessEventBus
from app.core.settings import Settings
from app.engine.feeds.replay import ReplayFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.services.market import EmbeddedMarket, RemoteMarket
from app.services.runtime import Runtime
from tests.market.conftest import read_csv

SCHEMA = strawberry.Schema(query=MarketQuery, extensions=[ApiErrors])


@pytest.fixture
async def market(candles_dir: Path) -> MarketData:
    data = MarketData(ReplayFeed(candles_dir, speed=None, warmup=10**6), KlineStore(depth=300))
    await data.feed.run(data.store)
    return data


async def run(
    market: MarketData | None,
    query: str,
    user: Any = True,
    settings: Settings | None = None,
    **variables: Any,
) -> Any:
    context = Context(
        request=None,  # type: ignore[arg-type]
        runtime=Runtime(
            settings=settings or Settings(),
            bus=InProcessEventBus(),
            market=RemoteMarket() if market is None else EmbeddedMarket(market),
        ),
        user=SimpleNamespace(id=1) if user else None,  # type: ignore[arg-type]
    )
    return await SCHEMA.execute(query, variable_values=variables, context_value=context)


async def test_market_describes_the_feed(market: MarketData, candles_dir: Path) -> None:
    result = await run(market, "{ market { source isLiveMarket symbols intervals lastCandleAt } }")
    assert result.errors is None
    data = result.data["market"]
    assert data["source"] == f"replay:{candles_dir}" and data["isLiveMarket"] is False
    assert "XRP/USDT:USDT" in data["symbols"] and data["intervals"] == ["1m", "5m", "1h"]
    newest = max(read_csv(path)[-1, 0] for path in market.feed.files.values())  # type: ignore[attr-defined]
    assert data["lastCandleAt"] == datetime.fromtimestamp(newest / 1000, UTC).isoformat()


KLINES = """
query ($symbol: String!, $interval: String!, $limit: Int!, $indicators: [IndicatorInput!]) {
  klines(symbol: $symbol, interval: $interval, limit: $limit, indicators: $indicators) {
    symbol interval
    candles { time open high low close volume }
    indicators { name params { name value } perCandle outputs { name values } }
  }
}
"""


async def test_klines_with_indicators(market: MarketData, candles_dir: Path) -> None:
    rows = read_csv(candles_dir / "ETH_BTC-5m.csv")[-300:]
    indicators = [
        {"name": "rsi", "params": [{"name": "period", "value": 14}]},
        {"name": "macd"},
        {"name": "volume_nodes", "params": [{"name": "count", "value": 2}]},
    ]
    result = await run(
        market, KLINES, symbol="ETH/BTC", interval="5m", limit=50, indicators=indicators
    )
    assert result.errors is None
    klines = result.data["klines"]
    assert [c["close"] for c in klines["candles"]] == rows[-50:, 4].tolist()
    assert (
        klines["candles"][-1]["time"] == datetime.fromtimestamp(rows[-1, 0] / 1000, UTC).isoformat()
    )
    rsi, macd, nodes = klines["indicators"]
    assert rsi["params"] == [{"name": "period", "value": 14.0}]
    np.testing.assert_allclose(rsi["outputs"][0]["values"], talib.RSI(rows[:, 4], 14)[-50:])
    assert [output["name"] for output in macd["outputs"]] == ["macd", "signal", "hist"]
    assert nodes["perCandle"] is False and len(nodes["outputs"][0]["values"]) == 2


async def test_undefined_values_are_null(market: MarketData) -> None:
    result = await run(
        market,
        KLINES,
        symbol="XRP/USDT:USDT",
        interval="1h",
        limit=100,
        indicators=[{"name": "sma", "params": [{"name": "period", "value": 30}]}],
    )
    values = result.data["klines"]["indicators"][0]["outputs"][0]["values"]
    assert values[:29] == [None] * 29 and None not in values[29:]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"symbol": "NOPE/USDT", "interval": "5m", "limit": 5}, "symbol"),
        ({"symbol": "ETH/BTC", "interval": "7m", "limit": 5}, "interval"),
        ({"symbol": "ETH/BTC", "interval": "5m", "limit": 0}, "limit"),
        (
            {"symbol": "ETH/BTC", "interval": "5m", "limit": 5, "indicators": [{"name": "magic"}]},
            "indicators[0].name",
        ),
        (
            {
                "symbol": "ETH/BTC",
                "interval": "5m",
                "limit": 5,
                "indicators": [{"name": "rsi", "params": [{"name": "period", "value": 0.5}]}],
            },
            "indicators[0].params",
        ),
    ],
)
async def test_bad_input_is_a_clear_error(
    market: MarketData, variables: dict[str, Any], field: str
) -> None:
    result = await run(market, KLINES, **variables)
    error = result.errors[0]
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert [f["field"] for f in error.extensions["fields"]] == [field]


async def test_indicator_work_per_request_is_bounded(market: MarketData) -> None:
    """Indicators x stored candles: 300 candles here, so a budget of 1,000 allows 3."""
    settings = Settings(max_indicator_candles=1_000)
    three = [{"name": "sma", "params": [{"name": "period", "value": p}]} for p in (5, 6, 7)]
    window = {"symbol": "ETH/BTC", "interval": "5m", "limit": 5}
    ok = await run(market, KLINES, settings=settings, **window, indicators=three)
    assert ok.errors is None and len(ok.data["klines"]["indicators"]) == 3

    four = [*three, {"name": "rsi"}]
    refused = await run(market, KLINES, settings=settings, **window, indicators=four)
    error = refused.errors[0]
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["fields"] == [
        {
            "field": "indicators",
            "message": "4 indicators over the 300 stored candles are 1,200 candle computations, "
            "over the limit of 1,000 per request: ask for at most 3",
        }
    ]


async def test_every_bad_indicator_is_named(market: MarketData) -> None:
    indicators = [
        {"name": "magic"},
        {"name": "rsi"},
        {"name": "rsi", "params": [{"name": "x", "value": 1}]},
    ]
    result = await run(
        market, KLINES, symbol="ETH/BTC", interval="5m", limit=5, indicators=indicators
    )
    fields = [f["field"] for f in result.errors[0].extensions["fields"]]
    assert fields == ["indicators[0].name", "indicators[2].params"]


async def test_results_computed_for_a_request_are_cached(market: MarketData) -> None:
    request: dict[str, Any] = {
        "symbol": "ETH/BTC",
        "interval": "5m",
        "limit": 5,
        "indicators": [{"name": "ema"}],
    }
    first = await run(market, KLINES, **request)
    computations = market.indicators.computations
    second = await run(market, KLINES, **request)
    assert market.indicators.computations == computations
    assert first.data == second.data


async def test_authentication_is_required(market: MarketData) -> None:
    result = await run(market, "{ market { source } }", user=False)
    assert "authentication required" in result.errors[0].message


async def test_without_the_engine_in_the_process_klines_say_where_they_are() -> None:
    result = await run(None, '{ klines(symbol: "ETH/BTC", interval: "5m") { symbol } }')
    assert result.errors[0].extensions["code"] == "ENGINE_UNAVAILABLE"
    assert "TRADERS_ENGINE=off" in result.errors[0].message


async def test_indicator_catalog(market: MarketData) -> None:
    result = await run(market, "{ indicatorCatalog { name params { name value } outputs } }")
    catalog = {item["name"]: item for item in result.data["indicatorCatalog"]}
    assert catalog["bbands"]["params"] == [
        {"name": "period", "value": 20.0},
        {"name": "stddev", "value": 2.0},
    ]
    assert len(catalog) >= 24
