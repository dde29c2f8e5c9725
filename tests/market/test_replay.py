"""Replay of the real recorded CSV files, and the downloader that records such files."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import pytest

from app.engine.feeds.base import Backoff
from app.engine.feeds.download import download_candles, stderr_progress, to_epoch_ms
from app.engine.feeds.replay import ReplayFeed, candle_filename, parse_filename
from app.engine.klines import KlineStore
from tests.market.conftest import read_csv
from tests.market.fake_binance import FakeBinance, Pair


@pytest.fixture
def eth_dir(tmp_path: Path, candles_dir: Path) -> Path:
    shutil.copy(candles_dir / "ETH_BTC-5m.csv", tmp_path)
    return tmp_path


@pytest.mark.parametrize("depth", [6000, 500])
async def test_store_holds_exactly_the_file(eth_dir: Path, eth_btc: np.ndarray, depth: int) -> None:
    feed = ReplayFeed(eth_dir, speed=None)
    assert feed.source == f"replay:{eth_dir}" and feed.is_live_market is False
    store = KlineStore(depth=depth)
    queue = store.subscribe()
    await feed.run(store)
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth_btc[-depth:])
    assert queue.qsize() == len(eth_btc) - 200 + 1
    assert float(feed.tickers()["ETH/BTC"].last) == pytest.approx(eth_btc[-1, 4])


async def test_whole_recorded_directory_in_close_order(candles_dir: Path) -> None:
    feed = ReplayFeed(candles_dir, speed=None, warmup=50)
    assert "XRP/USDT:USDT" in feed.symbols and "ETH/BTC" in feed.symbols
    assert feed.intervals == ["1m", "5m", "1h"]
    store = KlineStore(depth=100, queue_size=100_000)
    queue = store.subscribe()
    await feed.run(store)
    for _ in feed.files:
        queue.get_nowait()
    closes = []
    while not queue.empty():
        event = queue.get_nowait()
        closes.append(event.time + {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}[event.interval])
    assert closes == sorted(closes) and len(closes) > 20_000
    assert len(feed.files) == 9
    for (symbol, interval), path in feed.files.items():
        rows = read_csv(path)
        assert store.last_time(symbol, interval) == rows[-1, 0]


async def test_speed_paces_the_replay(eth_dir: Path) -> None:
    feed = ReplayFeed(
        eth_dir, speed=300 * 50, warmup=len(read_csv(eth_dir / "ETH_BTC-5m.csv")) - 10
    )
    started = time.perf_counter()
    await feed.run(KlineStore())
    assert 0.15 <= time.perf_counter() - started < 1.0


def test_filenames_round_trip() -> None:
    for symbol in ("ETH/BTC", "XRP/USDT:USDT"):
        assert parse_filename(Path(candle_filename(symbol, "1h"))) == (symbol, "1h")
    assert candle_filename("XRP/USDT:USDT", "5m") == "XRP_USDT-5m-futures.csv"
    assert parse_filename(Path("notes.txt")) is None
    assert parse_filename(Path("ETH_BTC-7m.csv")) is None


def test_bad_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no candle files"):
        ReplayFeed(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ReplayFeed(tmp_path / "missing")


@pytest.fixture
async def fake(eth_btc: np.ndarray) -> AsyncIterator[FakeBinance]:
    server = FakeBinance([Pair("ETH", "BTC", 5e3, eth_btc)], now=int(eth_btc[-1, 0]) + 60_000)
    await server.start()
    yield server
    await server.stop()


async def test_download_records_what_replay_plays(
    fake: FakeBinance, eth_btc: np.ndarray, tmp_path: Path
) -> None:
    client: Any = fake.point(ccxt_async.binance())
    reports: list[tuple[str, float]] = []
    fake.fail_next(1, 429)
    try:
        paths = await download_candles(
            client,
            ["ETH/BTC"],
            "5m",
            int(eth_btc[3, 0]) + 1,
            tmp_path,
            lambda symbol, fraction: reports.append((symbol, fraction)),
            backoff=Backoff(0.01, 0.05),
        )
    finally:
        await client.close()
    assert paths == [tmp_path / "ETH_BTC-5m.csv"]
    np.testing.assert_array_equal(read_csv(paths[0]), eth_btc[4:-1])
    assert len([q for q in fake.kline_queries if q.get("startTime")]) >= 6
    assert fake.statuses[429] == 1
    fractions = [fraction for _, fraction in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 3
    store = KlineStore(depth=10_000)
    await ReplayFeed(tmp_path, speed=None).run(store)
    np.testing.assert_array_equal(store.candles("ETH/BTC", "5m").rows(), eth_btc[4:-1])


async def test_download_refuses_unknown_symbols(fake: FakeBinance, tmp_path: Path) -> None:
    client: Any = fake.point(ccxt_async.binance())
    try:
        with pytest.raises(ValueError, match="binance has no market DOGE/BTC"):
            await download_candles(client, ["ETH/BTC", "DOGE/BTC"], "5m", 0, tmp_path, None)
    finally:
        await client.close()


def test_since_accepts_dates() -> None:
    assert to_epoch_ms("2018-01-10") == 1_515_542_400_000
    assert to_epoch_ms("2018-01-10T00:00:00+01:00") == 1_515_538_800_000
    assert to_epoch_ms(5) == 5 and to_epoch_ms("1515542400000") == 1_515_542_400_000
    with pytest.raises(ValueError, match="neither epoch"):
        to_epoch_ms("last tuesday")


def test_stderr_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    stderr_progress("ETH/BTC", 0.5)
    stderr_progress("ETH/BTC", 1.0)
    err = capsys.readouterr().err
    assert "[###############...............]  50%" in err and err.endswith("100%\n")
