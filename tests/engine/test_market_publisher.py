"""The engine's market publisher on the real in-process bus: every close as a candle event,
tickers only when they changed, each at the bus's listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.core.events import Event, EventType, InProcessEventBus
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.market_publisher import MarketPublisher
from tests.events.live import until

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


@pytest.fixture
async def published() -> AsyncIterator[tuple[MarketData, MarketPublisher, list[Event]]]:
    bus = InProcessEventBus()
    feed = SimulatedFeed(symbols=SYMBOLS, intervals=["1m", "5m"], speed=None)
    market = MarketData(feed, KlineStore(depth=50))
    feed.backfill(market.store)
    publisher = MarketPublisher(market, bus, ticker_interval=3600)
    heard: list[Event] = []

    async def listen() -> None:
        async for event in bus.listen(None, [EventType.CANDLE, EventType.TICKER]):
            heard.append(event)

    listening = asyncio.create_task(listen())
    await until(lambda: bus.broadcaster.listener_count == 1)
    await publisher.start()
    yield market, publisher, heard
    await publisher.stop()
    listening.cancel()


async def test_each_close_is_published_as_its_candle(
    published: tuple[MarketData, MarketPublisher, list[Event]],
) -> None:
    market, _, heard = published
    await until(lambda: any(event.type == EventType.TICKER for event in heard))
    heard.clear()
    assert isinstance(market.feed, SimulatedFeed)

    market.feed.step(market.store)
    await until(lambda: len([e for e in heard if e.type == EventType.CANDLE]) >= len(SYMBOLS))

    candles = [event for event in heard if event.type == EventType.CANDLE]
    assert {(e.payload["symbol"], e.payload["interval"]) for e in candles} >= {
        (symbol, "1m") for symbol in SYMBOLS
    }
    for event in candles:
        stored = market.store.candles(event.payload["symbol"], event.payload["interval"])
        row = stored.rows()[-1]
        assert (event.owner_id, event.trader_id) == (None, None)
        assert [event.payload[key] for key in ("time", "open", "high", "low", "close")] == list(
            row[:5]
        )
        assert event.payload["volume"] == row[5]


async def test_a_ticker_is_published_again_only_once_it_changed(
    published: tuple[MarketData, MarketPublisher, list[Event]],
) -> None:
    market, publisher, heard = published
    await until(lambda: len([e for e in heard if e.type == EventType.TICKER]) == len(SYMBOLS))
    first = {e.payload["symbol"]: e.payload for e in heard if e.type == EventType.TICKER}
    assert set(first) == set(SYMBOLS)
    assert publisher.changed_tickers() == []

    assert isinstance(market.feed, SimulatedFeed)
    market.feed.step(market.store)
    changed = publisher.changed_tickers()

    assert {event.payload["symbol"] for event in changed} == set(SYMBOLS)
    for event in changed:
        ticker = market.tickers()[event.payload["symbol"]]
        assert (event.payload["time"], event.payload["last"]) == (ticker.time, ticker.last)
        assert event.payload["time"] > first[event.payload["symbol"]]["time"]
