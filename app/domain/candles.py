"""Rules that decide which incoming candles are fit to store, and how damaged ones are mended.

Exchange responses are untrusted input: a NaN, a negative volume or a candle out of order
would silently poison every indicator of every trader that reads the series. The rules here
are pure (no I/O, no clock), so the kline store can apply them to each batch and log the
reasons they return.

A row is `(open_time_ms, open, high, low, close, volume)`, the shape of ccxt's `fetch_ohlcv`.
What is rejected: non-finite or non-positive prices, non-finite or negative volume, an open
time not aligned to the interval, a candle not newer than the last stored one.
What is repaired: a batch out of order is sorted; of duplicates in a batch the last wins;
high/low that do not bound open and close are widened; a gap is filled with flat candles at
the previous close and zero volume, because indicators assume one row per interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ROW_WIDTH = 6


@dataclass(frozen=True, slots=True)
class CandleIssue:
    """One thing wrong with an incoming candle and what was done about it."""

    time: int
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class CleanedCandles:
    """Rows fit to append, oldest first, and the issues met on the way."""

    time: np.ndarray
    values: np.ndarray
    issues: list[CandleIssue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.time)


def as_rows(rows: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Rows as an `(n, 6)` float64 array; ValueError when the shape is wrong."""
    array = np.asarray(rows, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, ROW_WIDTH), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != ROW_WIDTH:
        raise ValueError(f"candle rows must have {ROW_WIDTH} columns, got shape {array.shape}")
    return array


REASONS = (
    "open time is not a valid epoch",
    "open time is not aligned to the interval",
    "price is NaN or infinite",
    "price is not positive",
    "volume is NaN or infinite",
    "volume is negative",
)
REBUILT = "high below low: range rebuilt from open, high, low, close"
WIDENED = "high/low did not bound open and close: range widened"


def _problems(array: np.ndarray, interval_ms: int) -> np.ndarray:
    """Each row's first problem as an index into `REASONS`, -1 for a sound row: the checks
    of every row at once (a replay cleans a year of candles), in the order they apply."""
    time, prices, volume = array[:, 0], array[:, 1:5], array[:, 5]
    epoch = np.isfinite(time) & (time >= 0)
    small = epoch & (time < 2.0**62)
    aligned = np.zeros(len(time), dtype=bool)
    aligned[small] = time[small].astype(np.int64) % interval_ms == 0
    if not small.all():
        for index in (epoch & ~small).nonzero()[0]:  # beyond int64: Python's ints
            aligned[index] = int(time[index]) % interval_ms == 0
    failed = (
        ~epoch,
        ~aligned,
        ~np.isfinite(prices).all(axis=1),
        (prices <= 0).any(axis=1),
        ~np.isfinite(volume),
        volume < 0,
    )
    problems = np.full(len(time), -1)
    for reason in range(len(failed) - 1, -1, -1):  # the first failed check wins
        problems[failed[reason]] = reason
    return problems


def _repair_ranges(rows: np.ndarray) -> np.ndarray:
    """Widen, in place, the high and low of rows whose range does not bound open and close
    (rebuilt from all four prices when high is below low); 1 where rebuilt, 2 where widened,
    0 where sound."""
    open_, high, low, close = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    rebuilt = high < low
    widened = ~rebuilt & ((high < top) | (low > bottom))
    repaired = rebuilt | widened
    if repaired.any():
        highest = np.maximum(np.maximum(high, low), top)[repaired]
        rows[repaired, 3] = np.minimum(np.minimum(high, low), bottom)[repaired]
        rows[repaired, 2] = highest
    return rebuilt + 2 * widened


def clean_candles(
    rows: Sequence[Sequence[float]] | np.ndarray,
    interval_ms: int,
    last_time: int | None = None,
    last_close: float | None = None,
    max_fill: int = 500,
) -> CleanedCandles:
    """Validate and repair a batch against the last stored candle.

    `max_fill` bounds how many flat candles a gap may produce: a store of depth N never
    needs more than N of them, whatever the length of the outage.
    """
    array = as_rows(rows).copy()
    problems = _problems(array, interval_ms)
    sound = problems < 0
    repairs = np.zeros(len(array), dtype=np.int64)
    repairs[sound] = _repair_ranges(batch := array[sound])
    issues: list[CandleIssue] = []
    for index in (~sound | (repairs > 0)).nonzero()[0].tolist():
        if problems[index] >= 0:
            reason = REASONS[problems[index]]
            issues.append(CandleIssue(_safe_time(array[index, 0]), "rejected", reason))
        else:
            reason = REBUILT if repairs[index] == 1 else WIDENED
            issues.append(CandleIssue(int(array[index, 0]), "repaired", reason))
    if not len(batch):
        return _empty(issues)
    times = batch[:, 0].astype(np.int64)
    if (times[1:] < times[:-1]).any():
        issues.append(CandleIssue(int(times[0]), "repaired", "batch out of order: sorted"))
    order = np.argsort(times, kind="stable")
    batch, times = batch[order], times[order]
    last_of_each = np.concatenate((times[1:] != times[:-1], [True]))
    for time in times[~last_of_each]:
        issues.append(CandleIssue(int(time), "repaired", "duplicate in batch: last one kept"))
    batch, times = batch[last_of_each], times[last_of_each]
    if last_time is not None:
        stale = times <= last_time
        for time in times[stale]:
            reason = "duplicate of stored candle" if time == last_time else "older than stored"
            issues.append(CandleIssue(int(time), "rejected", reason))
        batch, times = batch[~stale], times[~stale]
    if not len(times):
        return _empty(issues)
    return _fill_gaps(batch, times, interval_ms, last_time, last_close, max_fill, issues)


def _fill_gaps(
    batch: np.ndarray,
    times: np.ndarray,
    interval_ms: int,
    last_time: int | None,
    last_close: float | None,
    max_fill: int,
    issues: list[CandleIssue],
) -> CleanedCandles:
    anchor = last_time if last_time is not None else int(times[0]) - interval_ms
    steps = np.diff(np.concatenate(([anchor], times))) // interval_ms
    if not np.any(steps > 1):
        return CleanedCandles(times, batch[:, 1:].copy(), issues)
    out_times: list[np.ndarray] = []
    out_values: list[np.ndarray] = []
    start = 0
    for index in np.flatnonzero(steps > 1).tolist():
        out_times.append(times[start:index])
        out_values.append(batch[start:index, 1:])
        start = index
        close = float(batch[index - 1, 4]) if index else last_close
        if close is None:
            continue
        missing = int(steps[index]) - 1
        filled = min(missing, max_fill)
        first = int(times[index]) - filled * interval_ms
        out_times.append(np.arange(first, int(times[index]), interval_ms, dtype=np.int64))
        out_values.append(np.tile([close, close, close, close, 0.0], (filled, 1)))
        reason = f"gap of {missing} candles before it: {filled} flat candles filled"
        issues.append(CandleIssue(int(times[index]), "repaired", reason))
    out_times.append(times[start:])
    out_values.append(batch[start:, 1:])
    return CleanedCandles(np.concatenate(out_times), np.vstack(out_values), issues)


def _safe_time(value: float) -> int:
    return int(value) if np.isfinite(value) else -1


def _empty(issues: list[CandleIssue]) -> CleanedCandles:
    return CleanedCandles(
        np.empty(0, dtype=np.int64), np.empty((0, ROW_WIDTH - 1), dtype=np.float64), issues
    )
