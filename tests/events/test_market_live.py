"""Market subscriptions end to end: `candles` and `tickers` over both websocket protocols,
from a `traders serve` with the engine embedded (the in-process market and bus) and from
one with the engine off, which hears the market from an engine's publisher through Redis.
Each of the two servers serves the module's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from gql import Client, GraphQLRequest

from app.core.redis_bus import RedisEventBus
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.market_publisher import MarketPublisher
from app.services.users import create_user
from tests.events.live import (
    PROTOCOLS,
    TIMEOUT,
    ApiServer,
    RedisServer,
    engine_server,
    first_event,
    next_result,
    subscribed,
    transport,
)

CANDLES = """subscription($symbol: String!, $interval: String!) {
  candles(symbol: $symbol, interval: $interval) { symbol interval time open high low close volume }
}"""
TICKERS = """subscription($symbols: [String!]!) {
  tickers(symbols: $symbols) { symbol time last changePercent quoteVolume }
}"""
KLINES = """query($symbol: String!) {
  klines(symbol: $symbol, interval: "1m", limit: 50) {
    candles { time open high low close volume }
  }
}"""
WANTED = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="module")
def embedded_server(
    database_url_for: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """One for the module: no test here has traders, and each makes its own user."""
    log = tmp_path_factory.mktemp("embedded") / "serve.log"
    with engine_server(database_url_for("sqlite"), log) as api:
        yield api


@pytest.fixture
def embedded(db: str, embedded_server: ApiServer) -> ApiServer:
    return embedded_server


@pytest.fixture(scope="module")
def api_only_server(
    database_url_for: Callable[[str], str],
    module_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("api-only") / "serve.log"
    server = ApiServer(database_url_for("sqlite"), module_redis.url, log)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_only(db: str, api_only_server: ApiServer) -> ApiServer:
    return api_only_server


@pytest.fixture
async def engine_elsewhere(module_redis: RedisServer) -> AsyncIterator[MarketData]:
    """An engine's market and its publisher in this process, publishing through Redis; the
    test closes candles by stepping the feed."""
    bus = RedisEventBus(module_redis.url)
    await bus.start()
    feed = SimulatedFeed(speed=None)
    market = MarketData(feed, KlineStore(depth=50))
    feed.backfill(market.store)
    publisher = MarketPublisher(market, bus, ticker_interval=0.05)
    await publisher.start()
    yield market
    await publisher.stop()
    await bus.stop()


def session_client(server: ApiServer, protocol: str, token: str) -> Client:
    return Client(
        transport=transport(server.ws_url, protocol, {"token": token}), execute_timeout=TIMEOUT
    )


async def tickers_until_all_seen(results: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(50):
        seen.append((await next_result(results))["tickers"])
        if {ticker["symbol"] for ticker in seen} == set(WANTED):
            return seen
    raise AssertionError(f"not every symbol in {seen}")


def assert_tickers(tickers: list[dict[str, Any]]) -> None:
    assert {ticker["symbol"] for ticker in tickers} == set(WANTED)
    for ticker in tickers:
        assert Decimal(ticker["last"]) > 0
        assert datetime.fromisoformat(ticker["time"]).tzinfo is not None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_candles_and_tickers_stream_from_the_embedded_engine(
    embedded: ApiServer, protocol: str
) -> None:
    _, token = await create_user("alice")

    async with (
        session_client(embedded, protocol, token) as session,
        subscribed(session, CANDLES, symbol="BTC/USDT", interval="1m") as candles,
        subscribed(session, TICKERS, symbols=WANTED) as tickers,
    ):
        first = (await next_result(candles))["candles"]
        second = (await next_result(candles))["candles"]
        seen_tickers = await tickers_until_all_seen(tickers)

    stored = (await embedded.graphql(token, KLINES, symbol="BTC/USDT"))["klines"]["candles"]
    by_time = {candle["time"]: candle for candle in stored}
    for candle in (first, second):
        assert (candle.pop("symbol"), candle.pop("interval")) == ("BTC/USDT", "1m")
        assert by_time[candle["time"]] == candle
    assert datetime.fromisoformat(second["time"]) > datetime.fromisoformat(first["time"])
    assert_tickers(seen_tickers)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_candles_and_tickers_reach_an_api_process_through_redis(
    api_only: ApiServer, engine_elsewhere: MarketData, protocol: str
) -> None:
    _, token = await create_user("alice")
    feed, store = engine_elsewhere.feed, engine_elsewhere.store
    assert isinstance(feed, SimulatedFeed)

    async def close_a_candle() -> None:
        feed.step(store)
        await asyncio.sleep(0)

    async with (
        session_client(api_only, protocol, token) as session,
        subscribed(session, CANDLES, symbol="ETH/USDT", interval="1m") as candles,
    ):
        first = (await first_event(candles, close_a_candle))["candles"]
        async with subscribed(session, TICKERS, symbols=WANTED) as tickers:
            pending = asyncio.ensure_future(tickers_until_all_seen(tickers))
            for _ in range(50):
                await close_a_candle()
                done, _ = await asyncio.wait({pending}, timeout=0.2)
                if done:
                    break
            seen_tickers = await asyncio.wait_for(pending, TIMEOUT)

    opened = int(datetime.fromisoformat(first["time"]).timestamp() * 1000)
    [row] = [row for row in store.candles("ETH/USDT", "1m").rows() if int(row[0]) == opened]
    assert (first["symbol"], first["interval"]) == ("ETH/USDT", "1m")
    assert [first[key] for key in ("open", "high", "low", "close", "volume")] == list(row[1:])
    assert_tickers(seen_tickers)


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    (CANDLES, {"symbol": "BTC/USDT", "interval": "7m"}, "interval: must be one of"),
    (CANDLES, {"symbol": "bitcoin", "interval": "1m"}, "symbol: invalid symbol"),
    (CANDLES, {"symbol": "NOPE/USDT", "interval": "1m"}, "symbol: not in the market: NOPE/USDT"),
    (TICKERS, {"symbols": []}, "symbols: must name between 1 and 200"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_market_subscription_with_bad_arguments_is_answered_with_the_reason(
    embedded: ApiServer, protocol: str
) -> None:
    _, token = await create_user("alice")

    async with session_client(embedded, protocol, token) as session:
        for query, variables, message in BAD_ARGUMENTS:
            results = session.subscribe(GraphQLRequest(query, variable_values=variables))
            with pytest.raises(Exception, match=message):
                await next_result(results)
