"""Candle validation rules, pure: each kind of bad candle is rejected or repaired with a reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.domain.candles import clean_candles

MINUTE = 60_000


def good(time_index: int, close: float = 10.0) -> list[float]:
    return [time_index * MINUTE, close, close + 1, close - 1, close, 5.0]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([MINUTE, math.nan, 11, 9, 10, 1], "price is NaN or infinite"),
        ([MINUTE, 10, 11, 9, math.inf, 1], "price is NaN or infinite"),
        ([MINUTE, 10, 11, 9, 10, math.nan], "volume is NaN or infinite"),
        ([MINUTE, 10, 11, 9, 10, -1], "volume is negative"),
        ([MINUTE, 10, 11, 0, 10, 1], "price is not positive"),
        ([MINUTE + 5, 10, 11, 9, 10, 1], "open time is not aligned to the interval"),
    ],
)
def test_rejects_corrupt_rows(row: list[float], reason: str) -> None:
    result = clean_candles([row, good(2)], MINUTE)
    assert result.time.tolist() == [2 * MINUTE]
    assert [(i.action, i.reason) for i in result.issues] == [("rejected", reason)]


def test_a_mixed_batch_gives_each_rows_first_problem_in_row_order() -> None:
    rows: list[list[float]] = [
        good(1),
        [math.nan, math.nan, 11, 9, 10, -1],  # every rule broken: the time is named
        [2 * MINUTE, 10, 8, 12, 11, 1],
        [3 * MINUTE + 1, -5, 11, 9, 10, math.inf],  # misaligned before the price
        [4 * MINUTE, 10, 10.5, 9.5, 11, 1],
        [5 * MINUTE, 10, 11, 9, 10, -1],
        good(6),
    ]
    result = clean_candles(rows, MINUTE)
    assert [(i.time, i.action, i.reason) for i in result.issues] == [
        (-1, "rejected", "open time is not a valid epoch"),
        (2 * MINUTE, "repaired", "high below low: range rebuilt from open, high, low, close"),
        (3 * MINUTE + 1, "rejected", "open time is not aligned to the interval"),
        (4 * MINUTE, "repaired", "high/low did not bound open and close: range widened"),
        (5 * MINUTE, "rejected", "volume is negative"),
        (4 * MINUTE, "repaired", "gap of 1 candles before it: 1 flat candles filled"),
        (6 * MINUTE, "repaired", "gap of 1 candles before it: 1 flat candles filled"),
    ]
    assert result.time.tolist() == [t * MINUTE for t in range(1, 7)]
    assert result.values[1].tolist() == [10, 12, 8, 11, 1]
    assert result.values[3].tolist() == [10, 11, 9.5, 11, 1]


def test_high_below_low_is_rebuilt() -> None:
    result = clean_candles([[MINUTE, 10, 8, 12, 11, 1]], MINUTE)
    assert result.values.tolist() == [[10, 12, 8, 11, 1]]
    assert result.issues[0].reason.startswith("high below low")


def test_range_not_bounding_body_is_widened() -> None:
    result = clean_candles([[MINUTE, 10, 10.5, 9.5, 11, 1]], MINUTE)
    assert result.values.tolist() == [[10, 11, 9.5, 11, 1]]
    assert result.issues[0].action == "repaired"


def test_out_of_order_batch_is_sorted_and_duplicates_keep_last() -> None:
    rows = [good(3, 13), good(1, 11), good(2, 12), good(3, 14)]
    result = clean_candles(rows, MINUTE)
    assert result.time.tolist() == [MINUTE, 2 * MINUTE, 3 * MINUTE]
    assert result.values[:, 3].tolist() == [11, 12, 14]
    reasons = [i.reason for i in result.issues]
    assert "batch out of order: sorted" in reasons
    assert "duplicate in batch: last one kept" in reasons


def test_stale_rows_against_store_are_rejected() -> None:
    result = clean_candles([good(4), good(5), good(6)], MINUTE, last_time=5 * MINUTE, last_close=10)
    assert result.time.tolist() == [6 * MINUTE]
    assert [i.reason for i in result.issues] == ["older than stored", "duplicate of stored candle"]


def test_gap_is_filled_flat_at_previous_close() -> None:
    result = clean_candles([good(5, 20), good(8, 30)], MINUTE, last_time=MINUTE, last_close=7.0)
    assert result.time.tolist() == [t * MINUTE for t in range(2, 9)]
    assert result.values[:3].tolist() == [[7, 7, 7, 7, 0]] * 3
    assert result.values[4:6].tolist() == [[20, 20, 20, 20, 0]] * 2
    assert len(result.issues) == 2


def test_gap_fill_is_bounded() -> None:
    result = clean_candles([good(1000)], MINUTE, last_time=0, last_close=1.0, max_fill=10)
    assert len(result) == 11
    assert "999 candles" in result.issues[0].reason


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="6 columns"):
        clean_candles(np.zeros((2, 5)), MINUTE)
