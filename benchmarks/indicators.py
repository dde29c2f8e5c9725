"""Kline store and indicator cache costs on the real recorded candles.

Measures, per operation, the median of repeated runs:
- appending one closed candle to the store (validation included), and reading a snapshot;
- computing each registered indicator once on `--depth` candles (a cache miss);
- a cache hit, and one candle close seen by `--traders` traders that all ask for the same
  indicators, against each trader computing its own (what the cache saves).

    python benchmarks/indicators.py [--depth 500] [--traders 20]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from app.domain.indicators import INDICATORS
from app.engine.indicators import IndicatorCache
from app.engine.klines import KlineStore

CANDLES = Path(__file__).resolve().parents[1] / "tests/data/candles/ETH_BTC-5m.csv"
SYMBOL, INTERVAL = "ETH/BTC", "5m"
SCREEN: tuple[tuple[str, dict[str, int]], ...] = (
    ("rsi", {}),
    ("ema", {"period": 50}),
    ("bbands", {}),
    ("atr", {}),
    ("vwap", {}),
)


def median_us(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def rows() -> np.ndarray:
    with CANDLES.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return np.array([[float(value) for value in row] for row in reader])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=500)
    parser.add_argument("--traders", type=int, default=20)
    args = parser.parse_args()
    data = rows()
    store = KlineStore(depth=args.depth)
    store.append(SYMBOL, INTERVAL, data[: args.depth])
    feed = iter(data[args.depth :])
    append = median_us(lambda: store.append(SYMBOL, INTERVAL, [next(feed)]), 2000)
    read = median_us(lambda: store.candles(SYMBOL, INTERVAL), 2000)
    print(f"store append 1 candle: {append:8.1f} us   snapshot: {read:6.1f} us")

    candles = store.candles(SYMBOL, INTERVAL)
    print(f"\nindicator on {len(candles)} candles (cache miss), median us")
    for name, spec in INDICATORS.items():
        print(f"  {name:<18} {median_us(partial(spec, candles), 50):8.1f}")

    cache = IndicatorCache(store)
    cache.get(SYMBOL, INTERVAL, "rsi")
    print(f"\ncache hit: {median_us(lambda: cache.get(SYMBOL, INTERVAL, 'rsi'), 5000):.2f} us")

    def shared_close() -> None:
        for _ in range(args.traders):
            for name, params in SCREEN:
                cache.get(SYMBOL, INTERVAL, name, **params)

    def private_close() -> None:
        for _ in range(args.traders):
            for name, params in SCREEN:
                INDICATORS[name](candles, **params)

    def next_close(screen: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            store.append(SYMBOL, INTERVAL, [next(feed)])
            screen()

        return run

    before = cache.computations
    shared = median_us(next_close(shared_close), 200)
    computed = (cache.computations - before) / 200
    private = median_us(next_close(private_close), 200)
    print(
        f"\none close, {args.traders} traders x {len(SCREEN)} indicators: "
        f"shared cache {shared:.0f} us ({computed:.0f} computations), "
        f"each trader computing {private:.0f} us"
    )


if __name__ == "__main__":
    main()
