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


def test_bad_candles_are_logged_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    store = KlineStore()
    base = 1_700_000_100_000 - 1_700_000_100_000 % FIVE_MINUTES
    rows = [
        [base, 1, 2, 0.5, 1.5, 10],
        [base + FIVE_MINUTES, float("nan"), 2, 0.5, 1.5, 10],
        [base + 2 * FIVE_MINUTES, 1, 2, 0.5, 1.5, -3],
        [base + 3 * FIVE_MINUTES, 1, 0.5, 2, 1.5, 3],
    ]
    with caplog.at_level(logging.WARNING, logger="app.engine.klines"):
        store.append("X/Y", "5m", rows)
        store.append("X/Y", "5m", [rows[0]])
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "rejected: price is NaN or infinite" in messages
    assert "rejected: volume is negative" in messages
    assert "repaired: high below low" in messages
    assert "rejected: older than stored" in messages
    assert "repaired: gap of 2 candles" in messages
    assert len(store.candles("X/Y", "5m")) == 4


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
