"""The kline store: the last N closed candles of every symbol and interval, in numpy arrays.

Every trader's filter and every indicator reads from here, so reads are zero-copy: each
series lives in a buffer twice the depth, written forward, and `candles()` returns read-only
views of the last `depth` rows. When a buffer is full the newest rows move into a freshly
allocated one instead of being shifted in place, so a view handed out earlier is never
mutated underneath its reader: a `Candles` object is an immutable snapshot.

Incoming rows pass `app.domain.candles.clean_candles`; every rejection or repair is logged
with its reason.

Candle-closed events: `subscribe()` returns an `asyncio.Queue[CandleClosed]`. Each `append`
that stores rows publishes one event, for the newest candle it stored (a back-fill of 500
candles is one event, not 500: subscribers act on the latest close, not on history).
`append` itself returns an event for every stored candle, gap fills included. A slow
subscriber whose queue is full loses its oldest event, never blocks the feed; events only
notify, the store is the truth. `unsubscribe(queue)` stops delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from app.domain.candles import clean_candles
from app.domain.intervals import interval_ms

log = logging.getLogger(__name__)

DEFAULT_DEPTH = 500
COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class CandleClosed:
    symbol: str
    interval: str
    time: int
    close: float


@dataclass(frozen=True, slots=True)
class Candles:
    """A read-only snapshot of one series, oldest first; `time` is the open time in ms."""

    symbol: str
    interval: str
    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @property
    def last_time(self) -> int | None:
        return int(self.time[-1]) if len(self.time) else None

    def rows(self) -> np.ndarray:
        """An `(n, 6)` copy in ccxt's row order, for export and tests."""
        return np.column_stack((self.time, self.open, self.high, self.low, self.close, self.volume))


class CandleHistory(Protocol):
    """What reads candles as of a moment: the live kline store, or a backtest's replay."""

    def candles(self, symbol: str, interval: str, closed_by: int | None = None) -> Candles: ...

    def symbols(self, interval: str) -> tuple[str, ...]: ...


class _Series:
    """One series' buffer, and the last snapshot taken of it: a close's screen, its
    analyses and its monitors read the same rows of a series many times over."""

    time: np.ndarray
    values: np.ndarray
    end: int

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._last: tuple[int, int, Candles] | None = None
        self._allocate(0)

    def _allocate(self, keep: int) -> None:
        capacity = 2 * self.depth
        time = np.empty(capacity, dtype=np.int64)
        values = np.empty((len(COLUMNS), capacity), dtype=np.float64)
        if keep:
            time[:keep] = self.time[self.end - keep : self.end]
            values[:, :keep] = self.values[:, self.end - keep : self.end]
        self.time, self.values, self.end = time, values, keep
        self._last = None

    def extend(self, time: np.ndarray, values: np.ndarray) -> None:
        time, values = time[-self.depth :], values[-self.depth :]
        if self.end + len(time) > len(self.time):
            self._allocate(min(self.end, self.depth - len(time)))
        stop = self.end + len(time)
        self.time[self.end : stop] = time
        self.values[:, self.end : stop] = values.T
        self.end = stop

    @property
    def last(self) -> tuple[int, float] | None:
        if not self.end:
            return None
        return int(self.time[self.end - 1]), float(self.values[3, self.end - 1])

    def snapshot(self, symbol: str, interval: str, opened_by: int | None = None) -> Candles:
        """The last `depth` rows, or the last `depth` of those opened at or before
        `opened_by` (a view of the past never includes a later candle)."""
        end = self.end
        if opened_by is not None:
            end = int(np.searchsorted(self.time[: self.end], opened_by, side="right"))
        start = max(0, end - self.depth)
        if self._last is not None and self._last[:2] == (start, end):
            return self._last[2]  # rows before `end` are never written again in this buffer
        arrays = [self.time[start:end]] + [row[start:end] for row in self.values]
        for array in arrays:
            array.flags.writeable = False
        candles = Candles(symbol, interval, *arrays)
        self._last = (start, end, candles)
        return candles


class KlineStore:
    """`source_id` names this store as a candle source (the sandbox keeps its replicas per
    source): the live market is "live"."""

    def __init__(
        self, depth: int = DEFAULT_DEPTH, queue_size: int = 10_000, source_id: str = "live"
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be positive")
        self.depth = depth
        self.source_id = source_id
        self._queue_size = queue_size
        self._series: dict[tuple[str, str], _Series] = {}
        self._subscribers: list[asyncio.Queue[CandleClosed]] = []
        self._listeners: list[Callable[[CandleClosed], None]] = []

    def append(
        self, symbol: str, interval: str, rows: Sequence[Sequence[float]] | np.ndarray
    ) -> list[CandleClosed]:
        """Clean `rows` (ccxt shape, closed candles only), store them, return what was stored."""
        series = self._series.get((symbol, interval))
        last = series.last if series else None
        cleaned = clean_candles(
            rows,
            interval_ms(interval),
            last_time=last[0] if last else None,
            last_close=last[1] if last else None,
            max_fill=self.depth,
        )
        for issue in cleaned.issues:
            log.warning(
                "%s %s candle at %s %s: %s",
                symbol,
                interval,
                _format_time(issue.time),
                issue.action,
                issue.reason,
            )
        if not len(cleaned):
            return []
        if series is None:
            series = self._series[(symbol, interval)] = _Series(self.depth)
        series.extend(cleaned.time, cleaned.values)
        closes = cleaned.values[:, 3]
        events = [
            CandleClosed(symbol, interval, int(time), float(close))
            for time, close in zip(cleaned.time, closes, strict=True)
        ]
        self._publish(events[-1])
        return events

    def candles(self, symbol: str, interval: str, closed_by: int | None = None) -> Candles:
        """The stored series, or only its candles that had closed by `closed_by` (epoch ms);
        empty arrays for an unknown symbol or interval."""
        series = self._series.get((symbol, interval))
        if series is None:
            series = _Series(1)
        opened_by = None if closed_by is None else closed_by - interval_ms(interval)
        return series.snapshot(symbol, interval, opened_by)

    def symbols(self, interval: str) -> tuple[str, ...]:
        """Every symbol with candles at `interval`, sorted."""
        return tuple(sorted(symbol for symbol, each in self._series if each == interval))

    def last_time(self, symbol: str, interval: str) -> int | None:
        series = self._series.get((symbol, interval))
        last = series.last if series else None
        return last[0] if last else None

    def keys(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has candles."""
        return list(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def newest_time(self, interval: str | None = None) -> int | None:
        """Open time of the newest candle over all series (of `interval`, when given)."""
        times = [
            last[0]
            for (_, each), series in self._series.items()
            if (interval is None or each == interval) and (last := series.last)
        ]
        return max(times, default=None)

    def intervals(self) -> set[str]:
        return {interval for _, interval in self._series}

    def subscribe(self) -> asyncio.Queue[CandleClosed]:
        queue: asyncio.Queue[CandleClosed] = asyncio.Queue(self._queue_size)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[CandleClosed]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def listen(self, listener: Callable[[CandleClosed], None]) -> None:
        """Call `listener` with each published event as it is published, before any queue
        subscriber sees it (for what must hold by the time a close is handled)."""
        self._listeners.append(listener)

    def _publish(self, event: CandleClosed) -> None:
        for listener in self._listeners:
            listener(event)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                log.warning("candle-closed subscriber is slow: oldest event dropped")
            queue.put_nowait(event)


def _format_time(time_ms: int) -> str:
    if time_ms < 0:
        return "invalid time"
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat()
