"""The simulated market: seeded, plausible, consistent across intervals, fast when asked."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from app.engine.feeds.base import MarketFeed, RollingTickers
from app.engine.feeds.simulated import DEFAULT_BASES, SimulatedFeed
from app.engine.klines import KlineStore

START = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000


def build(seed: int = 7, symbols: int = 30) -> tuple[SimulatedFeed, KlineStore]:
    names = [f"{base}/USDT" for base in DEFAULT_BASES[:symbols]]
    return SimulatedFeed(names, seed=seed, speed=None, start_ms=START), KlineStore(depth=300)


def test_labelled_simulated_and_not_live() -> None:
    feed = SimulatedFeed()
    assert isinstance(feed, MarketFeed)
    assert feed.source == "simulated" and feed.is_live_market is False
    assert len(feed.symbols) >= 50


def test_same_seed_same_market_other_seed_other_market() -> None:
    feeds = [build(seed) for seed in (7, 7, 8)]
    for feed, store in feeds:
        feed.backfill(store)
        for _ in range(20):
            feed.step(store)
    rows = [store.candles("ETH/USDT", "5m").rows() for _, store in feeds]
    np.testing.assert_array_equal(rows[0], rows[1])
    assert not np.array_equal(rows[0], rows[2])


def test_candles_are_plausible(caplog: pytest.LogCaptureFixture) -> None:
    feed, store = build()
    with caplog.at_level(logging.WARNING):
        feed.backfill(store)
        for _ in range(300):
            feed.step(store)
    assert not caplog.records
    for symbol in feed.symbols:
        for interval in feed.intervals:
            c = store.candles(symbol, interval)
            assert len(c) == 300
            assert np.all(np.diff(c.time) == c.time[1] - c.time[0])
            assert np.all(c.high >= np.maximum(c.open, c.close))
            assert np.all(c.low <= np.minimum(c.open, c.close))
            assert np.all(c.volume > 0)
            np.testing.assert_allclose(c.open[1:], c.close[:-1], rtol=1e-12)
    returns = np.diff(np.log(store.candles("BTC/USDT", "1m").close))
    assert 0.0002 < returns.std() < 0.01
    volumes = store.candles("BTC/USDT", "1m").volume
    assert volumes.max() > 3 * np.median(volumes)


def test_larger_intervals_aggregate_the_base_walk() -> None:
    feed, store = build(symbols=2)
    feed.backfill(store)
    for _ in range(60):
        feed.step(store)
    minutes = store.candles("BTC/USDT", "1m")
    hour = store.candles("BTC/USDT", "1h")
    assert hour.time[-1] == START
    inside = minutes.time >= START
    assert inside.sum() == 60
    assert hour.open[-1] == minutes.open[inside][0] and hour.close[-1] == minutes.close[-1]
    assert hour.high[-1] == minutes.high[inside].max()
    assert hour.low[-1] == minutes.low[inside].min()
    assert np.isclose(hour.volume[-1], minutes.volume[inside].sum())


async def test_speed_factor_passes_a_day_quickly() -> None:
    feed = SimulatedFeed(symbols=["BTC/USDT", "ETH/USDT"], intervals=["5m", "1h"], speed=288_000)
    store = KlineStore(depth=500)
    task = asyncio.create_task(feed.run(store))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = store.last_time("BTC/USDT", "5m")
    assert last is not None and last > feed.now_ms - 600_000
    assert feed.tickers()["BTC/USDT"].last > 0


def test_rolling_tickers_follow_every_update() -> None:
    tickers = RollingTickers()
    tickers.update("BTC/USDT", 0, 100.0, 110.0, 2.0)
    first = tickers.snapshot()["BTC/USDT"]
    assert tickers.snapshot()["BTC/USDT"] is first
    tickers.update("BTC/USDT", 60_000, 110.0, 121.0, 1.0)
    second = tickers.snapshot()["BTC/USDT"]
    assert (second.last, second.change_pct, second.base_volume) == (121, 21, 3)
