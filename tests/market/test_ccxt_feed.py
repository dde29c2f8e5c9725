"""The ccxt feed with the real `ccxt.async_support.binance` client against a loopback server
that speaks Binance's public market API: back-fill, new closes, 429 back-off, outage gaps."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import numpy as np
import pytest

from app.engine.feeds.base import Backoff
from app.engine.feeds.ccxt_feed import CcxtFeed, is_leveraged_token, select_universe
from app.engine.klines import KlineStore
from tests.market.conftest import read_csv
from tests.market.fake_binance import FakeBinance, Pair

FIVE_MINUTES = 300_000
FAST = Backoff(initial=0.01, maximum=0.05)


@pytest.fixture
async def fake(candles_dir: Path) -> AsyncIterator[FakeBinance]:
    eth = read_csv(candles_dir / "ETH_BTC-5m.csv")
    ltc = read_csv(candles_dir / "LTC_BTC-5m.csv")
    pairs = [
        Pair("ETH", "BTC", 5e3, eth),
        Pair("LTC", "BTC", 2e3, ltc),
        Pair("BTC", "USDT", 9e8),
        Pair("BTCUP", "USDT", 8e8),
        Pair("ETH", "USDT", 5e8),
        Pair("JUP", "USDT", 3e7),
        Pair("ETHBEAR", "USDT", 2e7),
        Pair("DUST", "USDT", 5e5),
        Pair("OLD", "USDT", 9e9, status="BREAK"),
    ]
    server = FakeBinance(pairs, now=int(eth[600, 0]) + 120_000)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeBinance) -> AsyncIterator[Any]:
    exchange = fake.point(ccxt_async.binance({"enableRateLimit": True}))
    yield exchange
    await exchange.close()


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not met within {seconds}s")


def both_at(store: KlineStore, time: float) -> bool:
    return all(store.last_time(symbol, "5m") == time for symbol in ("ETH/BTC", "LTC/BTC"))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_backfill_new_candles_rate_limit_and_outage(
    fake: FakeBinance, client: Any, candles_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    eth = read_csv(candles_dir / "ETH_BTC-5m.csv")
    ltc = read_csv(candles_dir / "LTC_BTC-5m.csv")
    feed = CcxtFeed(
        client, ["ETH/BTC", "LTC/BTC"], ["5m"], backoff=FAST, poll_seconds=0.02, ticker_seconds=0.3
    )
    assert feed.source == "ccxt:binance" and feed.is_live_market
    store = KlineStore(depth=200)
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(feed.run(store))

    await wait_for(lambda: both_at(store, eth[599, 0]))
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth[400:600])
    np.testing.assert_array_equal(store.candles("LTC/BTC", "5m").rows(), ltc[400:600])

    fake.fail_next(3, 429)
    fake.now += 3 * FIVE_MINUTES
    await wait_for(lambda: both_at(store, eth[602, 0]))
    assert fake.statuses[429] == 3
    retries = [r.getMessage() for r in caplog.records if "429 Too Many Requests" in r.getMessage()]
    assert len(retries) == 3 and "retry 1" in retries[0]
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth[403:603])

    fake.down = True
    fake.now += 20 * FIVE_MINUTES
    await wait_for(lambda: fake.statuses[503] >= 5)
    assert store.last_time("ETH/BTC", "5m") == eth[602, 0]
    fake.down = False
    await wait_for(lambda: both_at(store, eth[622, 0]))
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth[423:623])
    np.testing.assert_array_equal(store.candles("LTC/BTC", "5m").rows(), ltc[423:623])
    assert not [r for r in caplog.records if r.name == "app.engine.klines"]

    await wait_for(lambda: "ETH/BTC" in feed.tickers())
    ticker = feed.tickers()["ETH/BTC"]
    assert ticker.last == Decimal(f"{eth[623, 4]:.8f}") and isinstance(ticker.last, Decimal)
    assert feed.ticker("ETH/BTC") == ticker and feed.ticker("NOPE/BTC") is None
    await stop(task)


async def test_a_close_published_late_is_asked_again_before_the_next_poll(
    fake: FakeBinance, client: Any, candles_dir: Path
) -> None:
    eth = read_csv(candles_dir / "ETH_BTC-5m.csv")
    feed = CcxtFeed(client, ["ETH/BTC"], ["5m"], backoff=FAST, poll_seconds=0.5, poll_delay=0.05)
    store = KlineStore(depth=50)
    task = asyncio.create_task(feed.run(store))
    try:
        await wait_for(lambda: store.last_time("ETH/BTC", "5m") == eth[599, 0])
        fake.withhold_newest = 1
        fake.now += FIVE_MINUTES
        await wait_for(lambda: store.last_time("ETH/BTC", "5m") == eth[600, 0])
    finally:
        await stop(task)
    asked = [moment for path, moment in fake.request_times if path.endswith("/klines")][-2:]
    assert fake.withhold_newest == 0
    assert 0.04 <= asked[1] - asked[0] < 0.3


async def test_universe_is_top_quote_volume_without_leveraged_tokens(
    fake: FakeBinance, client: Any
) -> None:
    feed = CcxtFeed(client, None, ["1h"], quote="USDT", top=3, min_quote_volume=1e6, backoff=FAST)
    store = KlineStore(depth=50)
    task = asyncio.create_task(feed.run(store))
    await wait_for(lambda: len(store.keys()) == 3)
    assert feed.symbols == ["BTC/USDT", "ETH/USDT", "JUP/USDT"]
    assert all(len(store.candles(symbol, "1h")) == 50 for symbol in feed.symbols)
    assert set(feed.tickers()) == set(feed.symbols)
    await stop(task)


async def test_an_exchange_error_on_tickers_skips_the_round_not_the_feed() -> None:
    class Client:
        id = "stub"
        options: dict[str, Any] = {}
        has: dict[str, Any] = {}
        calls = 0

        async def fetch_tickers(self, symbols: list[str]) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise ccxt_async.BadSymbol("stub does not have market symbol OLD/USDT")
            return {"ETH/BTC": {"last": 0.05, "timestamp": 1}}

    feed = CcxtFeed(Client(), ["ETH/BTC"], ["5m"], backoff=FAST, ticker_seconds=0.01)
    task = asyncio.create_task(feed._ticker_loop())
    await wait_for(lambda: "ETH/BTC" in feed.tickers())
    await stop(task)


def test_leveraged_token_rule() -> None:
    bases = {"BTC", "ETH", "J", "SYR", "XRP"}
    assert is_leveraged_token("BTCUP", bases) and is_leveraged_token("ETHBEAR", bases)
    assert is_leveraged_token("XRPDOWN", bases) and is_leveraged_token("ETHBULL", bases)
    assert not is_leveraged_token("JUP", bases) and not is_leveraged_token("BTC", bases)
    assert not is_leveraged_token("SETUP", bases)


def test_select_universe_rules() -> None:
    def market(base: str, quote: str = "USDT", **extra: Any) -> dict[str, Any]:
        return {"base": base, "quote": quote, "spot": True, "active": True, **extra}

    markets = {
        "AA/USDT": market("AA"),
        "B/USDT": market("B"),
        "AAUP/USDT": market("AAUP"),
        "C/BTC": market("C", "BTC"),
        "D/USDT": market("D", active=False),
        "E/USDT:USDT": market("E", spot=False),
    }
    volumes = {symbol: {"quoteVolume": 10.0} for symbol in markets} | {
        "B/USDT": {"quoteVolume": 20}
    }
    assert select_universe(markets, volumes, "USDT", 10, 5) == ["B/USDT", "AA/USDT"]
    assert select_universe(markets, volumes, "USDT", 1, 5) == ["B/USDT"]
    assert select_universe(markets, volumes, "USDT", 10, 15) == ["B/USDT"]


async def test_websocket_closes_and_reconnect_gap(
    fake: FakeBinance, candles_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ccxt.pro's real binance client on the loopback stream: one subscription for all
    symbols, closes arrive by websocket, a dropped stream reconnects and the candles missed
    meanwhile come through REST."""
    eth = read_csv(candles_dir / "ETH_BTC-5m.csv")
    ltc = read_csv(candles_dir / "LTC_BTC-5m.csv")
    client = fake.point(ccxt_pro.binance({"enableRateLimit": True}))
    feed = CcxtFeed(client, ["ETH/BTC", "LTC/BTC"], ["5m"], backoff=FAST, ticker_seconds=60)
    store = KlineStore(depth=100)
    task = asyncio.create_task(feed.run(store))
    try:
        await wait_for(lambda: any(fake.sockets.values()))
        assert fake.subscriptions == [["ethbtc@kline_5m", "ltcbtc@kline_5m"]]
        assert both_at(store, eth[599, 0])
        klines_via_rest = fake.requests["/api/v3/klines"]
        for _ in range(3):
            fake.now += FIVE_MINUTES
            await fake.push_candles()
        await wait_for(lambda: both_at(store, eth[602, 0]))
        assert fake.requests["/api/v3/klines"] == klines_via_rest
        np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth[503:603])
        np.testing.assert_array_equal(store.candles("LTC/BTC", "5m").rows(), ltc[503:603])

        await fake.drop_streams()
        fake.now += 4 * FIVE_MINUTES
        await wait_for(lambda: len(fake.subscriptions) == 2)
        await wait_for(lambda: both_at(store, eth[606, 0]))
        np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth[507:607])
        assert fake.requests["/api/v3/klines"] > klines_via_rest
        assert any("stream lost" in record.getMessage() for record in caplog.records)

        klines_via_rest = fake.requests["/api/v3/klines"]
        fake.now += FIVE_MINUTES
        await fake.push_candles()
        await wait_for(lambda: both_at(store, eth[607, 0]))
        assert fake.requests["/api/v3/klines"] == klines_via_rest
    finally:
        await stop(task)
        await client.close()


async def test_requests_respect_the_rate_limit(fake: FakeBinance) -> None:
    """ccxt's throttle stays on: ccxt weighs a spot klines request 0.4 units (Binance weight 2
    of 6000 a minute), so at 250 ms a unit the back-fill requests are 100 ms apart, not a burst."""
    client = fake.point(ccxt_async.binance({"enableRateLimit": True, "rateLimit": 250}))
    feed = CcxtFeed(client, ["ETH/BTC", "LTC/BTC"], ["5m", "15m"], backoff=FAST)
    store = KlineStore(depth=150)
    task = asyncio.create_task(feed.run(store))
    try:
        await wait_for(lambda: len(store.keys()) == 4)
    finally:
        await stop(task)
        await client.close()
    klines = [moment for path, moment in fake.request_times if path.endswith("/klines")]
    assert len(klines) == 4
    assert all(later - earlier >= 0.095 for earlier, later in itertools.pairwise(klines))
    assert {query["limit"] for query in fake.kline_queries} == {"151"}
