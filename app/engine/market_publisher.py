"""The engine's market on the event bus: every closed candle, and tickers at a bounded rate.

The `candles` and `tickers` subscriptions of every API process read these events, whether
the engine runs in that process or elsewhere. A close is published as its candle once the
kline store holds it (the store's listener, called as the candle is stored); tickers are
read from the feed every `ticker_interval` seconds and a symbol's is published when it
changed since its last, so a client never gets more than one per symbol per interval.

Publishing is the bus's business (it never raises); a bus slower than the market loses the
oldest candles beyond `backlog` (counted in `dropped`) rather than holding memory without
bound: market events only notify, the store and `klines` are the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from decimal import Decimal

from app.core.events import Event, EventBus, candle_event, ticker_event
from app.core.tasks import cancel_and_wait
from app.engine.klines import CandleClosed
from app.engine.market import MarketData

log = logging.getLogger(__name__)


class MarketPublisher:
    def __init__(
        self, market: MarketData, bus: EventBus, ticker_interval: float, backlog: int = 10_000
    ) -> None:
        self.market = market
        self.bus = bus
        self.ticker_interval = ticker_interval
        self.dropped = 0
        self._pending: deque[Event] = deque(maxlen=backlog)
        self._ready = asyncio.Event()
        self._published_tickers: dict[str, tuple[int, Decimal]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        market.store.listen(self._closed)

    def _closed(self, closed: CandleClosed) -> None:
        candles = self.market.store.candles(closed.symbol, closed.interval)
        if not len(candles) or int(candles.time[-1]) != closed.time:
            return
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        row = (candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume)
        newest = [float(column[-1]) for column in row]
        self._pending.append(candle_event(closed.symbol, closed.interval, newest))
        self._ready.set()

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._publish_candles(), name="market candles"),
                asyncio.create_task(self._publish_tickers(), name="market tickers"),
            ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def _publish_candles(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                await self.bus.publish(self._pending.popleft())

    async def _publish_tickers(self) -> None:
        while True:
            for event in self.changed_tickers():
                await self.bus.publish(event)
            await asyncio.sleep(self.ticker_interval)

    def changed_tickers(self) -> list[Event]:
        """Ticker events of the symbols whose ticker changed since it was last taken."""
        events = []
        for symbol, ticker in self.market.tickers().items():
            seen = (ticker.time, ticker.last)
            if self._published_tickers.get(symbol) == seen:
                continue
            self._published_tickers[symbol] = seen
            events.append(
                ticker_event(
                    symbol,
                    ticker.time,
                    ticker.last,
                    ticker.change_pct,
                    ticker.bid,
                    ticker.ask,
                    ticker.base_volume,
                    ticker.quote_volume,
                )
            )
        return events
