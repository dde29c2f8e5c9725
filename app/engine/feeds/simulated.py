"""A seeded, offline market: plausible candles for many symbols, labelled "simulated".

It makes the project usable without network, and reproducible: the same seed gives the same
market. Prices follow a geometric random walk whose volatility and drift switch between
regimes (calm / normal / turbulent; down / flat / up) as a Markov chain, so screens meet
trends, ranges and breakouts. Volume follows the size of the move, with occasional spikes.

History: each interval's back-fill is its own walk, scaled to end at the symbol's current
price. From the start on, one walk of the smallest interval drives all: larger candles are
aggregated from it as they close (the first one of each is partial, covering only the part
of its window after the start). `speed` is simulated seconds per wall second: 1 paces like
a real exchange, 288 passes a day in five minutes, None runs as fast as the loop allows.

Like a real market it has prices between candle closes and a spread. While `run` paces a
candle of the smallest interval, it publishes ticks along the candle's path (`on_tick`):
open, its two extremes and points between, so a stop inside a candle is touched live as it
would be on an exchange; the low comes first in a rising candle, the high in a falling one.
Each symbol's spread grows as its volume shrinks, from 0.01% for the most traded (BTC-like,
2 billion a day) to about 0.3% for the least (2 million).
"""

from __future__ import annotations

import time as wall_clock
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from app.domain.intervals import interval_ms
from app.engine.clock import ReplayClock
from app.engine.feeds.base import DAY_MS, RollingTickers, Ticker, TickHandler, pace
from app.engine.klines import KlineStore

DEFAULT_BASES = [
    "BTC",
    "ETH",
    "BNB",
    "SOL",
    "XRP",
    "ADA",
    "DOGE",
    "TRX",
    "AVAX",
    "DOT",
    "LINK",
    "POL",
    "LTC",
    "BCH",
    "ATOM",
    "UNI",
    "XLM",
    "ETC",
    "FIL",
    "APT",
    "ARB",
    "OP",
    "NEAR",
    "ICP",
    "HBAR",
    "VET",
    "ALGO",
    "AAVE",
    "SAND",
    "MANA",
    "AXS",
    "EGLD",
    "THETA",
    "INJ",
    "XTZ",
    "EOS",
    "FLOW",
    "CHZ",
    "KAVA",
    "GRT",
    "CRV",
    "MKR",
    "SNX",
    "COMP",
    "ZEC",
    "DASH",
    "NEO",
    "IOTA",
    "ENJ",
    "ZIL",
]
DEFAULT_INTERVALS = ("1m", "5m", "15m", "1h", "4h")
DAILY_VOLATILITY = (0.015, 0.035, 0.08)
DAILY_DRIFT = (-0.03, 0.0, 0.03)
VOLATILITY_REGIME_DAYS = 1.0
TREND_REGIME_DAYS = 3.0
SPIKE_PROBABILITY = 0.01
TOP_VOLUME = 2e9
TOP_SPREAD_PCT = 0.01


def spread_pct(daily_quote_volume: float) -> float:
    """The bid-ask spread, in percent, of a market trading `daily_quote_volume` a day."""
    return TOP_SPREAD_PCT * max(1.0, (TOP_VOLUME / daily_quote_volume) ** 0.5)


def tick_path(row: np.ndarray) -> list[float]:
    """Prices inside one candle `(open, high, low, close, ...)` between its open and close:
    the extreme on the far side of the close first, then the other, and midpoints."""
    open_, high, low, close = row[:4]
    first, second = (low, high) if close >= open_ else (high, low)
    return [
        (open_ + first) / 2,
        first,
        (first + second) / 2,
        second,
        (second + close) / 2,
    ]


@dataclass(slots=True)
class _Walk:
    """The state of one symbol's price process."""

    price: float
    daily_quote_volume: float
    volatility: int = 1
    trend: int = 1

    def candles(self, rng: np.random.Generator, count: int, seconds: int) -> np.ndarray:
        """`count` candles of `seconds` each as `(count, 5)` open, high, low, close, volume."""
        fraction = seconds / (DAY_MS / 1000)
        volatility = _regimes(rng, count, fraction / VOLATILITY_REGIME_DAYS, self.volatility)
        trend = _regimes(rng, count, fraction / TREND_REGIME_DAYS, self.trend)
        sigma = np.take(DAILY_VOLATILITY, volatility) * np.sqrt(fraction)
        shock = rng.standard_normal(count)
        steps = np.take(DAILY_DRIFT, trend) * fraction + sigma * shock
        close = self.price * np.exp(np.cumsum(steps))
        open_ = np.concatenate(([self.price], close[:-1]))
        wick_up, wick_down = np.abs(rng.standard_normal((2, count))) * sigma * 0.5
        spikes = np.where(rng.random(count) < SPIKE_PROBABILITY, rng.uniform(3, 10, count), 1.0)
        quote = self.daily_quote_volume * fraction * rng.lognormal(0, 0.3, count) * spikes
        self.price, self.volatility, self.trend = (
            float(close[-1]),
            int(volatility[-1]),
            int(trend[-1]),
        )
        return np.column_stack(
            (
                open_,
                np.maximum(open_, close) * np.exp(wick_up),
                np.minimum(open_, close) * np.exp(-wick_down),
                close,
                quote * (1 + np.abs(shock)) / close,
            )
        )


def _regimes(rng: np.random.Generator, count: int, rate: float, current: int) -> np.ndarray:
    """A three-state Markov chain that redraws its state with probability `1 - exp(-rate)`."""
    switches = rng.random(count) < 1 - np.exp(-rate)
    draws = rng.integers(0, 3, count)
    last_switch = np.maximum.accumulate(np.where(switches, np.arange(count), -1))
    return np.where(last_switch >= 0, draws[np.maximum(last_switch, 0)], current)


def aggregate(rows: np.ndarray) -> np.ndarray:
    """One candle from consecutive `(n, 5)` candles."""
    return np.array([rows[0, 0], rows[:, 1].max(), rows[:, 2].min(), rows[-1, 3], rows[:, 4].sum()])


class SimulatedFeed:
    source = "simulated"
    is_live_market = False

    def __init__(
        self,
        symbols: list[str] | None = None,
        intervals: tuple[str, ...] | list[str] = DEFAULT_INTERVALS,
        seed: int = 42,
        speed: float | None = 1.0,
        start_ms: int | None = None,
    ) -> None:
        self.symbols = list(symbols or [f"{base}/USDT" for base in DEFAULT_BASES])
        self.intervals = sorted(intervals, key=interval_ms)
        self.seed = seed
        self.speed = speed
        self._base = self.intervals[0]
        base_ms = interval_ms(self._base)
        now = start_ms if start_ms is not None else int(wall_clock.time() * 1000)
        self.now_ms = now - now % base_ms
        self.clock = ReplayClock(self.now_ms)
        rng = np.random.default_rng([seed, 0])
        prices = np.exp(rng.uniform(np.log(0.05), np.log(60_000), len(self.symbols)))
        volumes = np.exp(rng.uniform(np.log(2e6), np.log(2e9), len(self.symbols)))
        self._walks = [
            _Walk(float(price), float(volume))
            for price, volume in zip(prices, volumes, strict=True)
        ]
        self._tickers = RollingTickers(
            spread_pct={
                symbol: spread_pct(walk.daily_quote_volume)
                for symbol, walk in zip(self.symbols, self._walks, strict=True)
            }
        )
        self.on_tick: TickHandler | None = None
        self._rng = np.random.default_rng([seed, 1])
        self._pending: dict[tuple[str, str], list[np.ndarray]] = {}

    def tickers(self) -> dict[str, Ticker]:
        return self._tickers.snapshot()

    def ticker(self, symbol: str) -> Ticker | None:
        return self._tickers.ticker(symbol)

    def backfill(self, store: KlineStore) -> None:
        for index, (symbol, walk) in enumerate(zip(self.symbols, self._walks, strict=True)):
            for number, interval in enumerate(self.intervals):
                step = interval_ms(interval)
                history = _Walk(walk.price, walk.daily_quote_volume, walk.volatility, walk.trend)
                rng = np.random.default_rng([self.seed, 2, index, number])
                rows = history.candles(rng, store.depth, step // 1000)
                rows[:, :4] *= walk.price / rows[-1, 3]
                end = self.now_ms - self.now_ms % step
                times = np.arange(end - store.depth * step, end, step)
                store.append(symbol, interval, np.column_stack((times, rows)))
                if interval == self._base:
                    for time, row in zip(times, rows, strict=True):
                        self._tickers.update(symbol, int(time), row[0], row[3], row[4])

    def _next_candles(self) -> list[np.ndarray]:
        """Each symbol's candle of the smallest interval that opens now (not yet closed)."""
        seconds = interval_ms(self._base) // 1000
        return [walk.candles(self._rng, 1, seconds)[0] for walk in self._walks]

    def step(self, store: KlineStore) -> None:
        """Close one candle of the smallest interval, and every larger one that closes with it."""
        self._close(store, self._next_candles())

    def _close(self, store: KlineStore, candles: list[np.ndarray]) -> None:
        base_ms = interval_ms(self._base)
        time = self.now_ms
        self.now_ms += base_ms
        self.clock.advance(self.now_ms)
        for symbol, row in zip(self.symbols, candles, strict=True):
            store.append(symbol, self._base, [[time, *row]])
            self._tickers.update(symbol, time, row[0], row[3], row[4])
            for interval in self.intervals[1:]:
                self._pending.setdefault((symbol, interval), []).append(row)
                step = interval_ms(interval)
                if self.now_ms % step == 0:
                    rows = np.array(self._pending.pop((symbol, interval)))
                    store.append(symbol, interval, [[self.now_ms - step, *aggregate(rows)]])

    def _tick(self, candles: list[np.ndarray], index: int, time: int) -> None:
        self.clock.advance(time)
        if self.on_tick is None:
            return
        for symbol, row in zip(self.symbols, candles, strict=True):
            self.on_tick(symbol, time, float(tick_path(row)[index]))

    async def run(self, store: KlineStore) -> None:
        self.backfill(store)
        while True:
            await self.advance(store, lambda ms: pace(ms, self.speed))

    async def advance(self, store: KlineStore, wait: Callable[[int], Awaitable[object]]) -> None:
        """One candle of the smallest interval as a live market makes it: its ticks along
        the candle's path, `wait(ms)` before each (the simulated time since the previous
        price), then the close (and every larger candle that closes with it). `run` waits
        at its speed; a benchmark waits for the engine to handle each price instead, as a
        live engine would within the minutes between them."""
        base_ms = interval_ms(self._base)
        candles = self._next_candles()
        ticks = len(tick_path(candles[0])) if candles else 0
        part = base_ms // (ticks + 1)
        for index in range(ticks):
            await wait(part)
            self._tick(candles, index, self.now_ms + (index + 1) * part)
        await wait(base_ms - ticks * part)
        self._close(store, candles)
