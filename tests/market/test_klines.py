"""The kline store on real recorded candles: exact contents, ring behaviour, events, logging."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from app.engine.klines import KlineStore
from tests.market.conftest import read_csv

FIVE_MINUTES = 300_000


def test_holds_exactly_the_rows_when_deep_enough(eth_btc: np.ndarray) -> None:
    store = KlineStore(depth=len(eth_btc))
    store.append("ETH/BTC", "5m", eth_btc)
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth_btc)


@pytest.mark.parametrize("chunk", [1, 7, 499, 500, 1234])
def test_keeps_the_last_depth_rows_whatever_the_batch_size(eth_btc: np.ndarray, chunk: int) -> None:
    store = KlineStore(depth=500)
    for start in range(0, len(eth_btc), chunk):
        store.append("ETH/BTC", "5m", eth_btc[start : start + chunk])
    candles = store.candles("ETH/BTC", "5m")
    np.testing.assert_array_equal(candles.rows(), eth_btc[-500:])
    assert candles.last_time == int(eth_btc[-1, 0])
    assert candles.time.dtype == np.int64


@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_a_snapshot_read_again_shows_every_append(eth_btc: np.ndarray, chunk: int) -> None:
    """Read after every append, as each close's stages do, whole and as of the candle before,
    across the buffer's reallocations: a snapshot kept for the next read is never stale."""
    store = KlineStore(depth=50)
    for start in range(0, 400, chunk):
        store.append("ETH/BTC", "5m", eth_btc[start : start + chunk])
        seen = eth_btc[: start + chunk]
        for _ in range(2):
            np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), seen[-50:])
            before = int(seen[-1, 0])  # closed by the newest candle's open: all but it
            past = store.candles("ETH/BTC", "5m", closed_by=before).rows()
            assert len(past) >= min(49, len(seen) - 1)
            np.testing.assert_array_equal(past, seen[:-1][len(seen) - 1 - len(past) :])


def test_snapshots_are_read_only_and_never_change(eth_btc: np.ndarray) -> None:
    store = KlineStore(depth=50)
    store.append("ETH/BTC", "5m", eth_btc[:50])
    before = store.candles("ETH/BTC", "5m")
    frozen = before.rows()
    for index in range(50, 400):
        store.append("ETH/BTC", "5m", eth_btc[index : index + 1])
    np.testing.assert_array_equal(before.rows(), frozen)
    with pytest.raises(ValueError):
        before.close[0] = 1.0


def test_gapped_file_keeps_every_file_row_and_fills_the_rest(
    candles_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = read_csv(candles_dir / "DASH_BTC-5m.csv")
    store = KlineStore(depth=10_000)
    with caplog.at_level(logging.WARNING, logger="app.engine.klines"):
        store.append("DASH/BTC", "5m", rows)
    stored = store.candles("DASH/BTC", "5m").rows()
    expected_len = (rows[-1, 0] - rows[0, 0]) // FIVE_MINUTES + 1
    assert len(stored) == expected_len > len(rows)
    original = np.isin(stored[:, 0], rows[:, 0])
    np.testing.assert_array_equal(stored[original], rows)
    filled = stored[~original]
    assert np.all(filled[:, 5] == 0) and np.all(filled[:, 1] == filled[:, 4])
    assert any("flat candles filled" in record.getMessage() for record in caplog.records)


BASE = 1_700_000_100_000 - 1_700_000_100_000 % FIVE_MINUTES


def candle(index: int, close: float = 1.5, **changes: float) -> list[float]:
    row = {"open": 1.0, "high": close + 1, "low": 0.5, "close": close, "volume": 10.0} | changes
    return [BASE + index * FIVE_MINUTES, *row.values()]


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("batch", "logged", "stored_times", "stored_close"),
    [
        ([candle(1, open=NAN)], "rejected: price is NaN or infinite", [0], 1.5),
        ([candle(1, close=INF)], "rejected: price is NaN or infinite", [0], 1.5),
        ([candle(1, low=0.0)], "rejected: price is not positive", [0], 1.5),
        ([candle(1, volume=NAN)], "rejected: volume is NaN or infinite", [0], 1.5),
        ([candle(1, volume=-3.0)], "rejected: volume is negative", [0], 1.5),
        (
            [[BASE + FIVE_MINUTES + 7, 1, 2, 0.5, 1.5, 1]],
            "rejected: open time is not aligned",
            [0],
            1.5,
        ),
        ([candle(1, high=0.5, low=2.0)], "repaired: high below low", [0, 1], 1.5),
        ([candle(1, high=2.0, close=2.5)], "repaired: high/low did not bound", [0, 1], 2.5),
        (
            [candle(1, 3.0), candle(1, 4.0)],
            "repaired: duplicate in batch: last one kept",
            [0, 1],
            4.0,
        ),
        ([candle(0, 9.0)], "rejected: duplicate of stored candle", [0], 1.5),
        ([candle(-1)], "rejected: older than stored", [0], 1.5),
        ([candle(2, 3.0), candle(1, 2.0)], "repaired: batch out of order: sorted", [0, 1, 2], 3.0),
        (
            [candle(3, 3.0)],
            "repaired: gap of 2 candles before it: 2 flat candles filled",
            [0, 1, 2, 3],
            3.0,
        ),
    ],
)
def test_each_bad_candle_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
    batch: list[list[float]],
    logged: str,
    stored_times: list[int],
    stored_close: float,
) -> None:
    store = KlineStore()
    store.append("X/Y", "5m", [candle(0)])
    with caplog.at_level(logging.WARNING, logger="app.engine.klines"):
        store.append("X/Y", "5m", batch)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("X/Y 5m candle at 20")
    assert logged in messages[0]
    stored = store.candles("X/Y", "5m")
    assert stored.time.tolist() == [BASE + i * FIVE_MINUTES for i in stored_times]
    assert stored.close[-1] == stored_close
    assert np.all(stored.high >= np.maximum(stored.open, stored.close))
    assert np.all(stored.low <= np.minimum(stored.open, stored.close))


async def test_subscribers_get_one_event_per_append(eth_btc: np.ndarray) -> None:
    store = KlineStore(depth=100)
    queue = store.subscribe()
    stored = store.append("ETH/BTC", "5m", eth_btc[:100])
    store.append("ETH/BTC", "5m", eth_btc[100:101])
    assert len(stored) == 100
    first, second = queue.get_nowait(), queue.get_nowait()
    assert (first.time, second.time) == (int(eth_btc[99, 0]), int(eth_btc[100, 0]))
    assert second.close == eth_btc[100, 4]
    store.unsubscribe(queue)
    store.append("ETH/BTC", "5m", eth_btc[101:102])
    assert queue.empty()


def test_unknown_series_is_empty() -> None:
    candles = KlineStore().candles("NOPE/USDT", "1h")
    assert len(candles) == 0 and candles.last_time is None
