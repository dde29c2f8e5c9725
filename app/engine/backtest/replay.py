"""Recorded candles as a market that a backtest reveals one close at a time.

Each series is cleaned once by the rules the live kline store applies to every append (so
gaps are filled the same way), then held whole in memory. `view(at)` shows what a live store
would hold at the moment `at`: for each series, its last `depth` candles that had closed by
then, and tickers rolled over the candles closed by then exactly as the replay feed rolls
them (their sums are computed for every candle at once, bit for bit the feed's, and read at
the last candle closed by a moment). A candle that closes later is not in any view before
its close: no look-ahead.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.domain.backtest import DataSpan
from app.domain.candles import clean_candles
from app.domain.intervals import interval_ms
from app.engine.feeds.base import figures_of, rolled_sums
from app.engine.feeds.replay import candle_files, read_candles
from app.engine.klines import DEFAULT_DEPTH, Candles
from app.engine.sandbox import TickerValues


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True)
class _Series:
    time: np.ndarray
    values: np.ndarray  # (5, n): open, high, low, close, volume
    times: list[int]  # the open times again, as the replay loop steps through them

    def closed_by(self, interval: str, at: int, start: int = 0) -> int:
        """How many of the candles had closed by `at`, counting on from `start` (the count
        at an earlier moment: a replay only goes forward, a step of a candle or two)."""
        times, end, opened_by = self.times, start, at - interval_ms(interval)
        while end < len(times) and times[end] <= opened_by:
            end += 1
        return end

    def candles(self, symbol: str, interval: str, end: int, depth: int) -> Candles:
        start = max(0, end - depth)
        return Candles(
            symbol,
            interval,
            self.time[start:end],
            *(row[start:end] for row in self.values),
        )


class _Tickers:
    """Every symbol's ticker after each candle of its smallest interval, as the feed rolls
    it: the rounded figures of symbol `i` after its candle `k` at `[i, k]` of one matrix per
    figure (padded with NaN where a symbol has fewer candles)."""

    def __init__(self, series: Mapping[str, tuple[str, _Series]]) -> None:
        self.symbols = tuple(series)
        self.index = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.series = [each for _, each in series.values()]
        self.intervals = [interval for interval, _ in series.values()]
        longest = max((len(each.times) for each in self.series), default=0)
        self.figures = np.full((3, len(self.symbols), longest), np.nan)
        for i, each in enumerate(self.series):
            values = each.values
            sums = rolled_sums(each.time, values[0], values[3], values[4])
            self.figures[:, i, : len(each.times)] = figures_of(*sums)


class MomentTickers(Mapping[str, TickerValues]):
    """The tickers of one moment: each symbol's after the last candle closed by then (`ends`:
    how many had closed, by symbol index), made when read, and as rows for a run's tasks."""

    def __init__(self, tickers: _Tickers, ends: np.ndarray) -> None:
        self._tickers = tickers
        self._ends = ends

    def __getitem__(self, symbol: str) -> TickerValues:
        i = self._tickers.index[symbol]
        end = int(self._ends[i])
        if not end:
            raise KeyError(symbol)
        last, change, quote = self._tickers.figures[:, i, end - 1].tolist()
        return TickerValues(last, change, quote)

    def __iter__(self) -> Iterator[str]:
        symbols = self._tickers.symbols
        return (symbols[i] for i in np.flatnonzero(self._ends).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._ends))

    def rows(self, symbols: Sequence[str]) -> np.ndarray | None:
        index = self._tickers.index
        if any(symbol not in index for symbol in symbols):
            return None
        found = np.fromiter((index[symbol] for symbol in symbols), np.int64, len(symbols))
        ends = self._ends[found]
        if not ends.all():
            return None
        rows: np.ndarray = self._tickers.figures[:, found, ends - 1].T
        return rows


class ReplayMarket:
    def __init__(
        self,
        series: Mapping[tuple[str, str], np.ndarray],
        depth: int = DEFAULT_DEPTH,
        source_id: str | None = None,
    ) -> None:
        """`series` maps (symbol, interval) to candle rows in ccxt's shape."""
        self.depth = depth
        self.source_id = source_id or f"backtest:{uuid.uuid4().hex}"
        self._series: dict[tuple[str, str], _Series] = {}
        for (symbol, interval), rows in sorted(series.items()):
            cleaned = clean_candles(rows, interval_ms(interval), max_fill=depth)
            if len(cleaned):
                self._series[(symbol, interval)] = _Series(
                    _readonly(cleaned.time),
                    _readonly(np.ascontiguousarray(cleaned.values.T)),
                    cleaned.time.tolist(),
                )
        symbols = sorted({symbol for symbol, _ in self._series})
        self._tickers = _Tickers(
            {
                symbol: (interval, self._series[(symbol, interval)])
                for symbol in symbols
                for interval in [min((i for s, i in self._series if s == symbol), key=interval_ms)]
            }
        )
        self.at: int | None = None
        self._ends: dict[tuple[str, str], int] = {}
        self._symbols: dict[str, tuple[str, ...]] = {}
        self._figures: dict[int, MomentTickers] = {}
        self._shown: dict[tuple[str, str], Candles] = {}  # at the moment revealed last

    @classmethod
    def from_directory(cls, directory: str | Path, depth: int = DEFAULT_DEPTH) -> ReplayMarket:
        """The candle files of a replay directory (the names `traders data download` writes)."""
        files = candle_files(Path(directory))
        return cls({key: read_candles(path) for key, path in files.items()}, depth)

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(self._series)

    def spans(self) -> dict[tuple[str, str], DataSpan]:
        """The open times of each series' first and last candle."""
        return {
            key: DataSpan(int(series.time[0]), int(series.time[-1]))
            for key, series in self._series.items()
        }

    def closes(
        self, intervals: Iterable[str], start: int, end: int
    ) -> Iterator[tuple[int, list[str]]]:
        """(moment, intervals whose candles close then) for every moment in [start, end]
        at which a candle of one of `intervals` closes, oldest first."""
        closing: dict[str, np.ndarray] = {}
        for interval in sorted(set(intervals)):
            times = [s.time for (_, each), s in self._series.items() if each == interval]
            if times:
                moments = np.unique(np.concatenate(times)) + interval_ms(interval)
                closing[interval] = moments[(moments >= start) & (moments <= end)]
        if not closing:
            return
        every = np.unique(np.concatenate(list(closing.values())))
        masks = {
            interval: np.isin(every, moments).tolist() for interval, moments in closing.items()
        }
        for index, moment in enumerate(every.tolist()):
            yield moment, [interval for interval, mask in masks.items() if mask[index]]

    def reveal(self, at: int) -> None:
        """Move the market to the moment `at` (never back)."""
        if self.at is not None and at < self.at:
            raise ValueError("a replayed market does not go back in time")
        self.at = at
        self._ends = {
            key: series.closed_by(key[1], at, self._ends.get(key, 0))
            for key, series in self._series.items()
        }
        self._symbols = {}
        self._shown = {}
        for moment in [m for m in self._figures if m < at]:
            del self._figures[moment]

    def tickers_at(self, at: int) -> Mapping[str, TickerValues]:
        """The tickers as they were at the moment `at`, rolled over the candles of each
        symbol's smallest interval that closed by then (what a screen at `at` reads): kept
        from the moment revealed last on, for a screen of the closes to come reads theirs
        before the market reaches them, and the replay then reads them back from here."""
        found = self._figures.get(at)
        if found is None:
            tickers = self._tickers
            if at == self.at:
                keys = zip(tickers.symbols, tickers.intervals, strict=True)
                ends = [self._ends[key] for key in keys]
            else:
                ends = [
                    bisect.bisect_right(each.times, at - interval_ms(interval))
                    for each, interval in zip(tickers.series, tickers.intervals, strict=True)
                ]
            found = self._figures[at] = MomentTickers(tickers, np.array(ends, dtype=np.int64))
        return found

    def view(self) -> ReplayView:
        """The market at the moment last revealed."""
        if self.at is None:
            raise ValueError("reveal a moment before viewing the market")
        return ReplayView(self, self.at, self.tickers_at(self.at))

    @property
    def base_interval(self) -> str:
        """The smallest interval of the recorded series: what quotes and fills read."""
        return min((interval for _, interval in self._series), key=interval_ms)

    def candles(
        self, symbol: str, interval: str, closed_by: int | None = None, depth: int | None = None
    ) -> Candles:
        """The symbol's last `depth` candles (the market's depth when None) closed by
        `closed_by` (by the moment revealed last when None; nothing before the first
        `reveal`). What the moment revealed last shows at the market's depth is made once:
        the stages read it many times at each close."""
        at = self._moment(closed_by)
        key = (symbol, interval)
        shown = at == self.at and depth in (None, self.depth)
        if shown and (found := self._shown.get(key)) is not None:
            return found
        series = self._series.get(key)
        if series is None:
            empty = _readonly(np.empty(0))
            return Candles(symbol, interval, _readonly(np.empty(0, dtype=np.int64)), *[empty] * 5)
        end = self._ends[key] if at == self.at else self._end(series, interval, at)
        found = series.candles(symbol, interval, end, depth or self.depth)
        if shown:
            self._shown[key] = found
        return found

    def symbols(self, interval: str, at: int | None = None) -> tuple[str, ...]:
        """Every symbol with candles at `interval` closed by `at` (by the moment revealed
        last when None)."""
        if at is not None and at != self.at:
            return self._symbols_at(interval, at)
        found = self._symbols.get(interval)
        if found is None:
            found = self._symbols[interval] = self._symbols_at(interval, self._moment(None))
        return found

    def _symbols_at(self, interval: str, at: int) -> tuple[str, ...]:
        """The symbols whose first candle at `interval` had closed by `at`."""
        opened_by = at - interval_ms(interval)
        return tuple(
            sorted(
                symbol
                for (symbol, each), series in self._series.items()
                if each == interval and series.time[0] <= opened_by
            )
        )

    def _moment(self, closed_by: int | None) -> int:
        at = self.at if closed_by is None else closed_by
        return -(2**62) if at is None else at

    @staticmethod
    def _end(series: _Series, interval: str, at: int) -> int:
        """How many of the series' candles had closed by `at`."""
        return int(series.time.searchsorted(at - interval_ms(interval), side="right"))


@dataclass(frozen=True, slots=True)
class ReplayView:
    """A `MarketView` of a replayed market at one moment."""

    market: ReplayMarket
    at: int
    ticker_values: Mapping[str, TickerValues]

    @property
    def source_id(self) -> str:
        return self.market.source_id

    def candles(self, symbol: str, interval: str) -> Candles:
        return self.market.candles(symbol, interval, self.at)

    def symbols(self, interval: str) -> tuple[str, ...]:
        return self.market.symbols(interval)

    def tickers(self) -> Mapping[str, TickerValues]:
        return self.ticker_values
