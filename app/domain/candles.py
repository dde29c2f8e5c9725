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


def _row_problem(row: np.ndarray, interval_ms: int) -> str | None:
    time, volume = row[0], row[5]
    if not np.isfinite(time) or time < 0:
        return "open time is not a valid epoch"
    if int(time) % interval_ms:
        return "open time is not aligned to the interval"
    prices = row[1:5]
    if not np.all(np.isfinite(prices)):
        return "price is NaN or infinite"
    if np.any(prices <= 0):
        return "price is not positive"
    if not np.isfinite(volume):
        return "volume is NaN or infinite"
    if volume < 0:
        return "volume is negative"
    return None


def _repair_range(row: np.ndarray) -> str | None:
    _, open_, high, low, close, _ = row
    if high < low:
        row[2], row[3] = max(open_, high, low, close), min(open_, high, low, close)
        return "high below low: range rebuilt from open, high, low, close"
    top, bottom = max(open_, close), min(open_, close)
    if high < top or low > bottom:
        row[2], row[3] = max(high, top), min(low, bottom)
        return "high/low did not bound open and close: range widened"
    return None


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
    issues: list[CandleIssue] = []
    kept: list[np.ndarray] = []
    for row in array:
        if problem := _row_problem(row, interval_ms):
            issues.append(CandleIssue(_safe_time(row[0]), "rejected", problem))
            continue
        if repair := _repair_range(row):
            issues.append(CandleIssue(int(row[0]), "repaired", repair))
        kept.append(row)
    if not kept:
        return _empty(issues)
    batch = np.vstack(kept)
    times = batch[:, 0].astype(np.int64)
    if np.any(np.diff(times) < 0):
        issues.append(CandleIssue(int(times[0]), "repaired", "batch out of order: sorted"))
    order = np.argsort(times, kind="stable")
    batch, times = batch[order], times[order]
    last_of_each = np.append(times[1:] != times[:-1], True)
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
    close = last_close
    for index, (time, step) in enumerate(zip(times, steps, strict=True)):
        missing = int(step) - 1
        if missing > 0 and close is not None:
            filled = min(missing, max_fill)
            start = int(time) - filled * interval_ms
            out_times.append(np.arange(start, int(time), interval_ms, dtype=np.int64))
            out_values.append(np.tile([close, close, close, close, 0.0], (filled, 1)))
            issues.append(
                CandleIssue(
                    int(time),
                    "repaired",
                    f"gap of {missing} candles before it: {filled} flat candles filled",
                )
            )
        out_times.append(times[index : index + 1])
        out_values.append(batch[index : index + 1, 1:])
        close = float(batch[index, 4])
    return CleanedCandles(np.concatenate(out_times), np.vstack(out_values), issues)


def _safe_time(value: float) -> int:
    return int(value) if np.isfinite(value) else -1


def _empty(issues: list[CandleIssue]) -> CleanedCandles:
    return CleanedCandles(
        np.empty(0, dtype=np.int64), np.empty((0, ROW_WIDTH - 1), dtype=np.float64), issues
    )
