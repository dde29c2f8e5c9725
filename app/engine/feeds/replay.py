"""Recorded candles played back as a market: backtests and demos on real prices, offline.

A directory holds one file per symbol and interval, named `BASE_QUOTE-<interval>.csv`
(`-futures` before the extension for a perpetual, symbol `BASE/QUOTE:QUOTE`), with the
columns `timestamp,open,high,low,close,volume`, `timestamp` the open time in epoch ms: the
shape `download_candles` writes and freqtrade's test data uses. `.parquet` files with the
same columns are read too when pyarrow is installed.

The first `warmup` candles of each file are back-filled at once; the rest are appended in
the order they closed across all files, paced by `speed` (simulated seconds per wall
second; None is as fast as possible). `run` returns when every file is played. Paced with
a waiter (`pace_with`), it also waits, before each new close, until the waiter says the
engine has handled everything so far: a replay is stepped one close at a time.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.domain.intervals import INTERVAL_SECONDS, interval_ms
from app.engine.clock import ReplayClock
from app.engine.feeds.base import RollingTickers, Ticker, Waiter, pace
from app.engine.klines import KlineStore

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_NAME = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<interval>\w+?)(?P<futures>-futures)?$"
)
SUFFIXES = (".csv", ".parquet")


def candle_filename(symbol: str, interval: str, suffix: str = ".csv") -> str:
    """`ETH/BTC` 5m -> `ETH_BTC-5m.csv`; `XRP/USDT:USDT` -> `XRP_USDT-5m-futures.csv`."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return f"{base}_{quote}-{interval}{'-futures' if settle else ''}{suffix}"


def parse_filename(path: Path) -> tuple[str, str] | None:
    """(symbol, interval) of a candle file, None when the name does not follow the scheme."""
    match = _NAME.match(path.stem)
    if path.suffix not in SUFFIXES or not match or match["interval"] not in INTERVAL_SECONDS:
        return None
    symbol = f"{match['base']}/{match['quote']}"
    return (f"{symbol}:{match['quote']}" if match["futures"] else symbol), match["interval"]


def read_candles(path: Path) -> np.ndarray:
    """An `(n, 6)` array of the file's rows, in file order (the store validates them)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=list(COLUMNS))
        return np.column_stack(
            [table.column(name).to_numpy().astype(np.float64) for name in COLUMNS]
        )
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path.name}: expected columns {','.join(COLUMNS)}")
        rows = [row for row in reader if row]
    return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))


def write_parquet(path: Path, rows: np.ndarray) -> Path:
    """`(n, 6)` candle rows as a Parquet file of the replay columns (read by `read_candles`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: rows[:, index] for index, name in enumerate(COLUMNS)}
    columns["timestamp"] = columns["timestamp"].astype(np.int64)
    pq.write_table(pa.table(columns), path)
    return path


def _pyarrow_available() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def candle_files(directory: Path) -> dict[tuple[str, str], Path]:
    files: dict[tuple[str, str], Path] = {}
    parquet = _pyarrow_available()
    for path in sorted(directory.iterdir()):
        if path.suffix == ".parquet" and not parquet:
            log.warning("%s skipped: reading parquet needs pyarrow", path.name)
            continue
        key = parse_filename(path)
        if key is None:
            if path.suffix in SUFFIXES:
                log.warning(
                    "%s skipped: name is not BASE_QUOTE-<interval>%s", path.name, path.suffix
                )
            continue
        files.setdefault(key, path)
    return files


def _closes(symbol: str, interval: str, rows: np.ndarray) -> Iterator[tuple[int, str, str, int]]:
    """(close time, symbol, interval, row index) of each row, the order a market emits them."""
    step = interval_ms(interval)
    for index, time in enumerate(rows[:, 0]):
        yield int(time) + step, symbol, interval, index


class ReplayFeed:
    is_live_market = False

    def __init__(
        self, directory: str | Path, speed: float | None = 60.0, warmup: int = 200
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"replay directory {self.directory} does not exist")
        self.source = f"replay:{directory}"
        self.speed = speed
        self.warmup = warmup
        self.files = candle_files(self.directory)
        if not self.files:
            raise ValueError(f"no candle files in {self.directory}")
        self.symbols = sorted({symbol for symbol, _ in self.files})
        self.intervals = sorted({interval for _, interval in self.files}, key=interval_ms)
        self._tickers = RollingTickers()
        self._waiter: Waiter | None = None
        self.clock = ReplayClock()
        self._ticker_interval = {
            symbol: min((i for s, i in self.files if s == symbol), key=interval_ms)
            for symbol in self.symbols
        }

    def tickers(self) -> dict[str, Ticker]:
        return self._tickers.snapshot()

    def ticker(self, symbol: str) -> Ticker | None:
        return self._tickers.ticker(symbol)

    def pace_with(self, waiter: Waiter) -> None:
        self._waiter = waiter

    def _append(self, store: KlineStore, symbol: str, interval: str, rows: np.ndarray) -> None:
        stored = len(store.append(symbol, interval, rows))
        if stored and interval == self._ticker_interval[symbol]:
            candles = store.candles(symbol, interval)
            for index in range(max(0, len(candles) - stored), len(candles)):
                self._tickers.update(
                    symbol,
                    int(candles.time[index]),
                    float(candles.open[index]),
                    float(candles.close[index]),
                    float(candles.volume[index]),
                )

    async def run(self, store: KlineStore) -> None:
        series = await asyncio.to_thread(
            lambda: {key: read_candles(path) for key, path in self.files.items()}
        )
        warm = [(key, rows[: self.warmup]) for key, rows in series.items() if len(rows)]
        if warm:
            self.clock.advance(max(int(rows[-1, 0]) + interval_ms(i) for (_, i), rows in warm))
        for (symbol, interval), rows in warm:
            self._append(store, symbol, interval, rows)
        closes = heapq.merge(
            *(_closes(symbol, interval, rows) for (symbol, interval), rows in series.items())
        )
        clock: int | None = None
        for close_time, symbol, interval, index in closes:
            if index < self.warmup:
                continue
            if clock is not None and close_time > clock:
                await pace(close_time - clock, self.speed)
            if close_time != clock and self._waiter is not None:
                await self._waiter()
            clock = close_time
            self.clock.advance(max(close_time, self.clock.now()))
            rows = series[(symbol, interval)]
            self._append(store, symbol, interval, rows[index : index + 1])
        log.info("%s: replay finished", self.source)
