"""Where the trading stages get prices: live ticks between candle closes, and candles.

Stops, targets and trailing stops must be checked on every price update live, and on the
candles a backtest replays; the position monitor takes its updates from a `PriceUpdates`
port and runs the same code on either:

- `PriceBoard` receives the live market's ticks (the simulated feed's prices between
  candle closes, and every feed's closes) and hands each subscriber (`TickUpdates`) the
  ticks since it last looked, waking it when there are new ones;
- `CandleUpdates` hands out the candles of one interval that closed since it last looked,
  as the engine clock reveals them (no look-ahead).

`MarketQuotes` is the `Quotes` port of executors and the risk manager: a symbol's latest
price (the newest tick, else the last close), the feed's relative spread when it has one,
and the last candle's volume, which market impact is measured against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterator, Mapping
from decimal import Decimal

from app.domain.fill_model import Bar, Quote
from app.domain.intervals import interval_ms
from app.domain.signal import price_of
from app.engine.clock import Clock
from app.engine.feeds.base import Ticker
from app.engine.klines import CandleHistory, Candles

MAX_TICKS_KEPT = 1000


class TickUpdates:
    """One subscriber's ticks since its last `take`; `wait` returns once there are some."""

    def __init__(self) -> None:
        self._ticks: dict[str, list[Bar]] = {}
        self._changed = asyncio.Event()

    def add(self, symbol: str, tick: Bar) -> None:
        ticks = self._ticks.setdefault(symbol, [])
        if len(ticks) >= MAX_TICKS_KEPT:
            ticks[-1] = ticks[-1].merged(tick)
        else:
            ticks.append(tick)
        self._changed.set()

    def take(self) -> dict[str, list[Bar]]:
        ticks, self._ticks = self._ticks, {}
        self._changed.clear()
        return ticks

    async def wait(self) -> None:
        await self._changed.wait()


class PriceBoard:
    """The latest tick of every symbol, and the subscribers that want every tick."""

    def __init__(self) -> None:
        self._last: dict[str, Bar] = {}
        self._subscribers: list[TickUpdates] = []

    def update(self, symbol: str, time: int, price: Decimal) -> None:
        self.update_bar(symbol, Bar.tick(time, price))

    def update_bar(self, symbol: str, bar: Bar) -> None:
        """A price move: a tick, or a whole candle of a feed that has no ticks."""
        previous = self._last.get(symbol)
        if previous is not None and previous.time > bar.time:
            return
        self._last[symbol] = bar
        for subscriber in self._subscribers:
            subscriber.add(symbol, bar)

    def last(self, symbol: str) -> Bar | None:
        return self._last.get(symbol)

    def subscribe(self) -> TickUpdates:
        subscriber = TickUpdates()
        self._subscribers.append(subscriber)
        return subscriber


def candle_bar(candles: Candles, index: int) -> Bar:
    return Bar(
        int(candles.time[index]),
        price_of(float(candles.open[index])),
        price_of(float(candles.high[index])),
        price_of(float(candles.low[index])),
        price_of(float(candles.close[index])),
        price_of(float(candles.volume[index])),
    )


class NewCandles(Mapping[str, list[Bar]]):
    """The candles of `interval` that closed in (`after`, `upto`], looked up and made bars
    only for the symbols read: the position monitor reads the few symbols it holds, not
    every symbol of the market. Empty when `after` is None (the first look) or not earlier."""

    def __init__(self, store: CandleHistory, interval: str, after: int | None, upto: int) -> None:
        self.store = store
        self.interval = interval
        self.after = after
        self.upto = upto
        self._bars: dict[str, list[Bar]] = {}

    def _of(self, symbol: str) -> list[Bar]:
        bars = self._bars.get(symbol)
        if bars is None:
            bars = []
            if self:
                assert self.after is not None
                candles = self.store.candles(symbol, self.interval, self.upto)
                opened_after = self.after - interval_ms(self.interval)
                first = int(candles.time.searchsorted(opened_after, side="right"))
                bars = [candle_bar(candles, i) for i in range(first, len(candles))]
            self._bars[symbol] = bars
        return bars

    def __bool__(self) -> bool:
        """Whether anything can have closed: the clock moved since the last look."""
        return self.after is not None and self.upto > self.after

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and bool(self._of(symbol))

    def __getitem__(self, symbol: str) -> list[Bar]:
        bars = self._of(symbol)
        if not bars:
            raise KeyError(symbol)
        return bars

    def __iter__(self) -> Iterator[str]:
        return (symbol for symbol in self.store.symbols(self.interval) if symbol in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CandleUpdates:
    """The candles of `interval` closed since the last `take`: in a replay candles close in
    time order, so what closed since is what closed between the two looks' moments."""

    def __init__(self, store: CandleHistory, interval: str, clock: Clock) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self._taken_at: int | None = None

    async def wait(self) -> None:
        """A backtest drains the stages after each close; nothing here wakes a waiter."""
        await asyncio.Event().wait()

    def take(self) -> NewCandles:
        now = self.clock.now()
        after, self._taken_at = self._taken_at, now
        return NewCandles(self.store, self.interval, after, now)


class MarketQuotes:
    """Quotes from a kline store (candles of `interval` closed by the clock's now), the
    newest tick of a `PriceBoard` when there is one, and the spread of the symbol's ticker
    in the feed (`ticker`)."""

    def __init__(
        self,
        store: CandleHistory,
        interval: str,
        clock: Clock,
        board: PriceBoard | None = None,
        ticker: Callable[[str], Ticker | None] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self.board = board
        self.ticker = ticker
        self._of_candle: dict[str, tuple[int, Quote]] = {}

    def quote(self, symbol: str) -> Quote | None:
        candles = self.store.candles(symbol, self.interval, self.clock.now())
        tick = self.board.last(symbol) if self.board is not None else None
        if not len(candles) and tick is None:
            return None
        if tick is None and self.ticker is None:
            # nothing but the last candle makes the quote: made once per candle (a backtest
            # asks for each symbol's quote many times at each close)
            last = int(candles.time[-1])
            kept = self._of_candle.get(symbol)
            if kept is None or kept[0] != last:
                kept = self._of_candle[symbol] = (last, self._quote(symbol, candles, None))
            return kept[1]
        return self._quote(symbol, candles, tick)

    def _quote(self, symbol: str, candles: Candles, tick: Bar | None) -> Quote:
        volume = price_of(float(candles.volume[-1])) if len(candles) else None
        if tick is not None:
            time, last = tick.time, tick.close
        else:
            time, last = int(candles.time[-1]), price_of(float(candles.close[-1]))
        bid = ask = None
        ticker = self.ticker(symbol) if self.ticker is not None else None
        if ticker is not None and ticker.bid is not None and ticker.ask is not None:
            half = (ticker.ask - ticker.bid) / (ticker.ask + ticker.bid)
            bid, ask = last * (1 - half), last * (1 + half)
        return Quote(time, last, bid, ask, volume)

    def bars_since(self, symbol: str, since: int) -> list[Bar]:
        candles = self.store.candles(symbol, self.interval, self.clock.now())
        return [candle_bar(candles, i) for i in range(len(candles)) if candles.time[i] >= since]

    def marks(self, symbols: Collection[str]) -> dict[str, Decimal]:
        """The latest price of each symbol that has one: a quote's `last`, without the rest
        of the quote (its spread reads every ticker of the feed; the trade stage and the
        equity snapshots value every position of fifty traders at a close)."""
        found = {}
        now = self.clock.now()
        for symbol in symbols:
            tick = self.board.last(symbol) if self.board is not None else None
            if tick is not None:
                found[symbol] = tick.close
                continue
            candles = self.store.candles(symbol, self.interval, now)
            if len(candles):
                found[symbol] = price_of(float(candles.close[-1]))
        return found
