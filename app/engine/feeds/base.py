"""What every market feed offers, whatever its source.

A feed fills a `KlineStore`: `run(store)` back-fills history, then appends each candle as it
closes until the task is cancelled (a replay returns when its files are exhausted).
`source` names where the data comes from and `is_live_market` says whether the prices are a
real market's: a live-mode trader must refuse a feed for which it is False. `clock` is the
market's time, the engine's workflow clock: the wall clock for a real exchange, and for a
simulated or replayed market its own time, moved as the feed releases each close (at
`TRADERS_FEED_SPEED` times real time, or stepped by the engine), so that a signal, a
decision or an expiry is timed in the market it belongs to.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

import numpy as np

from app.engine.clock import Clock
from app.engine.klines import KlineStore

DAY_MS = 86_400_000


@runtime_checkable
class MarketFeed(Protocol):
    @property
    def source(self) -> str: ...

    @property
    def is_live_market(self) -> bool: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def symbols(self) -> list[str]: ...

    @property
    def intervals(self) -> list[str]: ...

    async def run(self, store: KlineStore) -> None: ...

    def tickers(self) -> dict[str, Ticker]: ...

    def ticker(self, symbol: str) -> Ticker | None:
        """One symbol's ticker of `tickers`, without building the others."""
        ...


Waiter = Callable[[], Awaitable[None]]


@runtime_checkable
class SteppedFeed(Protocol):
    """A feed of recorded data that can wait for its consumer before each step: a replay
    never runs ahead of the engine it feeds, so no close is skipped for being late."""

    def pace_with(self, waiter: Waiter) -> None: ...


TickHandler = Callable[[str, int, float], None]


@runtime_checkable
class TickingFeed(Protocol):
    """A feed with prices between candle closes: it calls `on_tick(symbol, time, price)`."""

    on_tick: TickHandler | None


def to_decimal(value: float | str | None) -> Decimal | None:
    """Exact decimal of a price as the exchange printed it (`str` avoids binary noise)."""
    if value is None:
        return None
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Ticker:
    """The last price and 24-hour statistics of one symbol; prices are Decimal for display."""

    symbol: str
    time: int
    last: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    base_volume: Decimal | None = None
    quote_volume: Decimal | None = None
    change_pct: Decimal | None = None


class RollingTickers:
    """Tickers derived from closed candles, for feeds that have no ticker endpoint.

    A symbol's ticker is summed over its day of candles when first asked for after a new
    candle, not at every snapshot: screens and API requests ask far more often than a
    symbol's candles close. `spread_pct` is the bid-ask spread in percent of the price, one
    for all symbols or one per symbol."""

    def __init__(self, spread_pct: float | dict[str, float] = 0.0) -> None:
        self._spreads = spread_pct if isinstance(spread_pct, dict) else {}
        self._spread = 0.0 if isinstance(spread_pct, dict) else spread_pct
        self._windows: dict[str, deque[tuple[int, float, float, float]]] = {}
        self._computed: dict[str, Ticker] = {}
        self._figures: dict[str, tuple[float, float, float]] = {}

    def update(self, symbol: str, time: int, open_: float, close: float, volume: float) -> None:
        window = self._windows.setdefault(symbol, deque())
        window.append((time, open_, close, volume))
        while window[0][0] <= time - DAY_MS:
            window.popleft()
        self._computed.pop(symbol, None)
        self._figures.pop(symbol, None)

    def snapshot(self) -> dict[str, Ticker]:
        return {symbol: self._kept(symbol, window) for symbol, window in self._windows.items()}

    def ticker(self, symbol: str) -> Ticker | None:
        window = self._windows.get(symbol)
        return None if window is None else self._kept(symbol, window)

    def _kept(self, symbol: str, window: deque[tuple[int, float, float, float]]) -> Ticker:
        ticker = self._computed.get(symbol)
        if ticker is None:
            ticker = self._computed[symbol] = self._ticker(symbol, window)
        return ticker

    def figures(self) -> dict[str, tuple[float, float, float]]:
        """Each symbol's last price, 24 h change in percent and quote volume, as floats and
        exactly as the snapshot's tickers round them, without building the tickers: what a
        replay shows filters at every close."""
        figures = {}
        for symbol, window in self._windows.items():
            found = self._figures.get(symbol)
            if found is None:
                last, change, _, quote = _sums(window)
                found = self._figures[symbol] = figure(last, change, quote)
            figures[symbol] = found
        return figures

    def _ticker(self, symbol: str, window: deque[tuple[int, float, float, float]]) -> Ticker:
        time = window[-1][0]
        last, change, base, quote = _sums(window)
        half_spread = last * self._spreads.get(symbol, self._spread) / 100.0 / 2
        return Ticker(
            symbol=symbol,
            time=time,
            last=_rounded(last),
            bid=_rounded(last - half_spread) if half_spread else None,
            ask=_rounded(last + half_spread) if half_spread else None,
            base_volume=_rounded(base),
            quote_volume=_rounded(quote),
            change_pct=_rounded(change, 6),
        )


def _sums(window: deque[tuple[int, float, float, float]]) -> tuple[float, float, float, float]:
    """A day of candles as (last, change in percent, base volume, quote volume)."""
    last = window[-1][2]
    base = quote = 0.0
    for _, _, close, volume in window:  # one pass, in order: the sums of `sum()`, bit for bit
        base += volume
        quote += close * volume
    return last, (last / window[0][1] - 1) * 100, base, quote


FIGURE_DIGITS = (12, 6, 12)  # significant digits of a ticker's last, change and quote volume


def figure(last: float, change: float, quote: float) -> tuple[float, float, float]:
    """A ticker's last price, 24 h change and quote volume as the snapshot's tickers round
    them (`FIGURE_DIGITS` significant digits), as floats."""
    digits_last, digits_change, digits_quote = FIGURE_DIGITS
    return (
        float(f"{last:.{digits_last}g}"),
        float(f"{change:.{digits_change}g}"),
        float(f"{quote:.{digits_quote}g}"),
    )


def figures_of(
    last: np.ndarray, change: np.ndarray, quote: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`figure` of every element at once: each column formatted in one go, each number
    parsed back by `float`, so the very same floats."""

    def rounded(values: np.ndarray, digits: int) -> np.ndarray:
        text = (f"%.{digits}g," * len(values)) % tuple(values.tolist())
        return np.array(list(map(float, text.split(",")[:-1])), dtype=np.float64)

    columns = (last, change, quote)
    last, change, quote = (rounded(c, d) for c, d in zip(columns, FIGURE_DIGITS, strict=True))
    return last, change, quote


def rolled_sums(
    time: np.ndarray, open_: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(last, change in percent, quote volume) of one symbol's ticker after each of its
    candles in turn, as `RollingTickers` rolls them (a day of candles up to each), for all
    the candles at once (a replay knows them all): the same products summed in the same
    order, so the same floats to the last bit."""
    first = np.searchsorted(time, time - DAY_MS, side="right")
    lengths = np.arange(len(time)) - first + 1
    products = close * volume
    quote = products[first] if len(time) else np.empty(0)
    for k in range(1, int(lengths.max(initial=0))):
        more = lengths > k
        quote[more] += products[first[more] + k]
    return close, (close / open_[first] - 1) * 100, quote


def _rounded(value: float, significant: int = 12) -> Decimal:
    """A float as a Decimal of `significant` digits: float noise stays out of what users see."""
    return Decimal(f"{value:.{significant}g}")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with full jitter, so reconnecting clients do not stampede."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * self.factor**attempt))

    async def sleep(self, attempt: int) -> None:
        await asyncio.sleep(self.delay(attempt))


async def pace(interval_ms: int, speed: float | None) -> None:
    """Wait one interval of simulated time; `speed` is simulated seconds per wall second,
    None runs as fast as possible (still yielding to the event loop)."""
    await asyncio.sleep(0 if speed is None else interval_ms / 1000 / speed)
