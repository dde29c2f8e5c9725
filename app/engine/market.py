"""The running market of one process: a feed filling a kline store, the indicator cache, and
the board of live prices.

The live engine screens `view(close)`, the store as it was when that candle closed, with the
feed's tickers; the API reads the store and cache for `market` and `klines`. `start()` runs
the feed as a task; a feed that fails unexpectedly is logged and restarted with back-off
(network trouble is already retried inside the feed), a replay that reaches the end of its
files simply stops. `prices` gets every close of the smallest interval, and the ticks
between closes of a feed that has them, for the position monitor and the executors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.settings import Settings
from app.domain.intervals import interval_ms
from app.domain.market_info import MarketInfo
from app.domain.signal import price_of
from app.engine.feeds.base import Backoff, MarketFeed, Ticker, TickingFeed
from app.engine.feeds.factory import create_feed
from app.engine.indicators import IndicatorCache
from app.engine.klines import CandleClosed, Candles, KlineStore
from app.engine.prices import PriceBoard, candle_bar
from app.engine.sandbox import TickerValues
from app.engine.screening import ticker_values

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreView:
    """The kline store as a screen sees it: candles closed by `at` (all when None)."""

    store: KlineStore
    at: int | None
    ticker_values: Mapping[str, TickerValues]

    @property
    def source_id(self) -> str:
        return self.store.source_id

    def candles(self, symbol: str, interval: str) -> Candles:
        return self.store.candles(symbol, interval, self.at)

    def symbols(self, interval: str) -> tuple[str, ...]:
        return self.store.symbols(interval)

    def tickers(self) -> Mapping[str, TickerValues]:
        return self.ticker_values


class MarketData:
    def __init__(
        self, feed: MarketFeed, store: KlineStore, restart_backoff: Backoff | None = None
    ) -> None:
        self.feed = feed
        self.store = store
        self.indicators = IndicatorCache(store)
        self.prices = PriceBoard()
        self._backoff = restart_backoff or Backoff(initial=1.0, maximum=60.0)
        self._task: asyncio.Task[None] | None = None
        self._ticking = isinstance(feed, TickingFeed)
        if isinstance(feed, TickingFeed):
            feed.on_tick = self._tick
        store.listen(self._closed)

    @property
    def base_interval(self) -> str:
        """The feed's smallest interval: the candles prices and volumes are read from."""
        return min(self.feed.intervals, key=interval_ms)

    def _tick(self, symbol: str, time: int, price: float) -> None:
        self.prices.update(symbol, time, price_of(price))

    def _closed(self, closed: CandleClosed) -> None:
        """Every close of the smallest interval is a price update too, on the board before
        the close is handled: a tick at the close for a feed whose ticks went through the
        candle already, the whole candle (its high and low included, as a backtest sees it)
        for a feed without ticks."""
        if closed.interval != self.base_interval:
            return
        if self._ticking:
            self._tick(closed.symbol, closed.time + interval_ms(closed.interval), closed.close)
            return
        candles = self.store.candles(closed.symbol, closed.interval)
        if len(candles) and int(candles.time[-1]) == closed.time:
            self.prices.update_bar(closed.symbol, candle_bar(candles, len(candles) - 1))

    @classmethod
    async def create(cls, settings: Settings) -> MarketData:
        return cls(await create_feed(settings), KlineStore(depth=settings.kline_depth))

    @property
    def source(self) -> str:
        return self.feed.source

    @property
    def is_live_market(self) -> bool:
        return self.feed.is_live_market

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def tickers(self) -> dict[str, Ticker]:
        return self.feed.tickers()

    def ticker(self, symbol: str) -> Ticker | None:
        return self.feed.ticker(symbol)

    def info(self) -> MarketInfo:
        return MarketInfo(
            source=self.source,
            is_live_market=self.is_live_market,
            symbols=tuple(self.feed.symbols),
            intervals=tuple(self.feed.intervals),
            last_candle_at=self.last_candle_at(),
        )

    def view(self, at: int | None = None) -> StoreView:
        """The market as of the moment `at` (epoch ms; None: now), with the feed's tickers."""
        values = {symbol: ticker_values(ticker) for symbol, ticker in self.tickers().items()}
        return StoreView(self.store, at, values)

    def last_candle_at(self) -> datetime | None:
        """Open time of the newest candle in the store, over all symbols and intervals."""
        newest = self.store.newest_time()
        return None if newest is None else datetime.fromtimestamp(newest / 1000, UTC)

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"market feed {self.source}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self.feed.run(self.store)
                log.info("market feed %s finished", self.source)
                return
            except Exception:
                delay = self._backoff.delay(attempt)
                log.exception("market feed %s failed; restart in %.1fs", self.source, delay)
                await asyncio.sleep(delay)
                attempt += 1
