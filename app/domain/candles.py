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


REJECTIONS = (
    "open time is not a valid epoch",
    "open time is not aligned to the interval",
    "price is NaN or infinite",
    "price is not positive",
    "volume is NaN or infinite",
    "volume is negative",
)
INVERTED = "high below low: range rebuilt from open, high, low, close"
WIDENED = "high/low did not bound open and close: range widened"


def _rejections(array: np.ndarray, interval_ms: int) -> np.ndarray:
    """Per row, the index in REJECTIONS of the first rule it breaks, or -1: the whole batch
    at once (a backfill stores hundreds of thousands of rows)."""
    time, prices, volume = array[:, 0], array[:, 1:5], array[:, 5]
    bad_time = ~np.isfinite(time) | (time < 0)
    rules = (
        bad_time,
        np.fmod(np.trunc(np.where(bad_time, 0.0, time)), interval_ms) != 0,
        ~np.isfinite(prices).all(axis=1),
        (prices <= 0).any(axis=1),
        ~np.isfinite(volume),
        volume < 0,
    )
    first = np.full(len(array), -1)
    for index in reversed(range(len(rules))):  # written last to first: the first one stays
        first[rules[index]] = index
    return first


def _repair_ranges(array: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mend, in place, the high and low of the `fit` rows that do not bound their open and
    close; return which rows had high below low (rebuilt) and which were widened."""
    open_, high, low, close = array[:, 1], array[:, 2], array[:, 3], array[:, 4]
    inverted = fit & (high < low)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    widened = fit & ~inverted & ((high < top) | (low > bottom))
    if inverted.any() or widened.any():
        highest, lowest = array[:, 1:5].max(axis=1), array[:, 1:5].min(axis=1)
        mended_high = np.where(inverted, highest, np.where(widened, np.maximum(high, top), high))
        mended_low = np.where(inverted, lowest, np.where(widened, np.minimum(low, bottom), low))
        array[:, 2], array[:, 3] = mended_high, mended_low
    return inverted, widened


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
    rejected = _rejections(array, interval_ms)
    fit = rejected < 0
    inverted, widened = _repair_ranges(array, fit)
    issues: list[CandleIssue] = []
    for index in np.flatnonzero(~fit | inverted | widened):
        time = array[index, 0]
        if not fit[index]:
            issues.append(CandleIssue(_safe_time(time), "rejected", REJECTIONS[rejected[index]]))
        else:
            issues.append(
                CandleIssue(int(time), "repaired", INVERTED if inverted[index] else WIDENED)
            )
    if not fit.any():
        return _empty(issues)
    batch = array[fit]
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
