"""Screening throughput: 50 traders x 300 symbols x 500 candles, one candle close.

Runs the ScreenerEngine's screen (jobs, sandbox workers, shared indicators, filter
evaluation; not the database writes of the few signals that result) on a seeded simulated
market, first cold (workers receive every series) and then on consecutive candle closes
(workers receive only the new candle). In the same run it times a naive baseline: each
trader, for each symbol, builds a pandas frame and recomputes its own indicators, as a
per-strategy bot does.

    python benchmarks/screening.py [--traders 50] [--symbols 300] [--candles 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from app.domain.trader_spec import TraderSpec
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose, ScreenerEngine

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 14_400_000

Naive = Callable[..., bool]  # (frames by interval, ticker) -> matched


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    code: str
    naive: Naive


def _frame(candles: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open": candles.open,
            "high": candles.high,
            "low": candles.low,
            "close": candles.close,
            "volume": candles.volume,
        }
    )


def _rsi(close: pd.Series, period: int) -> pd.Series:
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    return 100 - 100 / (1 + gain / loss)


def _ema(series: pd.Series, period: int) -> pd.Series:
    return series.ewm(span=period, adjust=False).mean()


def _atr(frame: pd.DataFrame, period: int) -> pd.Series:
    previous = frame.close.shift()
    ranges = pd.concat(
        [frame.high - frame.low, (frame.high - previous).abs(), (frame.low - previous).abs()],
        axis=1,
    )
    return ranges.max(axis=1).ewm(alpha=1 / period, adjust=False).mean()


def strategies() -> list[Strategy]:
    """Ten realistic filter shapes, five parameter sets each: fifty distinct traders."""
    found: list[Strategy] = []
    for n, (fast, slow, level, period, mult) in enumerate(
        [(9, 21, 30, 14, 2.0), (12, 26, 25, 10, 2.5), (20, 50, 35, 20, 3.0),
         (5, 20, 28, 7, 1.5), (10, 30, 32, 21, 2.2)]
    ):  # fmt: skip
        found += [
            Strategy(
                f"rsi-oversold-{n}",
                f"r = rsi(candles, {period})\nreturn r[-1] < {level}, 'long', (100 - r[-1]) / 100",
                lambda f, t, p=period, lv=level: _rsi(f["1h"].close, p).iloc[-1] < lv,
            ),
            Strategy(
                f"rsi-overbought-{n}",
                f"r = rsi(candles, {period})\nreturn r[-1] > {100 - level}, 'short'",
                lambda f, t, p=period, lv=level: _rsi(f["1h"].close, p).iloc[-1] > 100 - lv,
            ),
            Strategy(
                f"ema-cross-{n}",
                f"return crossed_above(ema(candles, {fast}), ema(candles, {slow}))",
                lambda f, t, a=fast, b=slow: _crossed(
                    _ema(f["1h"].close, a), _ema(f["1h"].close, b)
                ),
            ),
            Strategy(
                f"macd-turn-{n}",
                f"m = macd(candles, {fast}, {slow}, 9)\nreturn m.hist[-2] < 0 < m.hist[-1]",
                lambda f, t, a=fast, b=slow: _macd_turn(f["1h"].close, a, b),
            ),
            Strategy(
                f"bollinger-breakout-{n}",
                f"b = bbands(candles, {period}, {mult})\nreturn candles.close[-1] > b.upper[-1]",
                lambda f, t, p=period, k=mult: _bollinger(f["1h"].close, p, k),
            ),
            Strategy(
                f"volume-spike-{n}",
                f"v = volume_sma(candles, {period})\n"
                f"return candles.volume[-1] > {mult} * v[-1] "
                "and candles.close[-1] > candles.open[-1]",
                lambda f, t, p=period, k=mult: (
                    f["1h"].volume.iloc[-1] > k * f["1h"].volume.rolling(p).mean().iloc[-1]
                    and f["1h"].close.iloc[-1] > f["1h"].open.iloc[-1]
                ),
            ),
            Strategy(
                f"trend-pullback-{n}",
                f"four = timeframes['4h']\ntrend = ema(four, {slow})\nr = rsi(candles, 14)\n"
                f"return four.close[-1] > trend[-1] and r[-1] < {level + 15}",
                lambda f, t, b=slow, lv=level: (
                    f["4h"].close.iloc[-1] > _ema(f["4h"].close, b).iloc[-1]
                    and _rsi(f["1h"].close, 14).iloc[-1] < lv + 15
                ),
            ),
            Strategy(
                f"volatility-{n}",
                f"a = atr(candles, {period})\nreturn a[-1] / candles.close[-1] * 100 > {mult / 2}",
                lambda f, t, p=period, k=mult: (
                    _atr(f["1h"], p).iloc[-1] / f["1h"].close.iloc[-1] * 100 > k / 2
                ),
            ),
            Strategy(
                f"ticker-momentum-{n}",
                f"return ticker.change_pct > {mult} and ticker.quote_volume > 1e6 "
                f"and candles.close[-1] > sma(candles, {slow})[-1]",
                lambda f, t, b=slow, k=mult: (
                    t.change_pct > k
                    and t.quote_volume > 1e6
                    and f["1h"].close.iloc[-1] > f["1h"].close.rolling(b).mean().iloc[-1]
                ),
            ),
            Strategy(
                f"breakout-{n}",
                f"h = highest(candles, {slow})\nreturn candles.close[-1] >= h[-2]",
                lambda f, t, b=slow: (
                    f["1h"].close.iloc[-1] >= f["1h"].high.rolling(b).max().iloc[-2]
                ),
            ),
        ]
    return found


def _crossed(fast: pd.Series, slow: pd.Series) -> bool:
    return bool(fast.iloc[-2] <= slow.iloc[-2] and fast.iloc[-1] > slow.iloc[-1])


def _macd_turn(close: pd.Series, fast: int, slow: int) -> bool:
    line = _ema(close, fast) - _ema(close, slow)
    hist = line - _ema(line, 9)
    return bool(hist.iloc[-2] < 0 < hist.iloc[-1])


def _bollinger(close: pd.Series, period: int, k: float) -> bool:
    middle = close.rolling(period).mean()
    upper = middle + k * close.rolling(period).std(ddof=0)
    return bool(close.iloc[-1] > upper.iloc[-1])


def naive_candle_close(
    chosen: list[Strategy], symbols: list[str], store: KlineStore, tickers: Mapping[str, Any]
) -> float:
    """The per-strategy bot: every trader rebuilds frames and indicators for every symbol."""
    started = time.perf_counter()
    for strategy in chosen:
        for symbol in symbols:
            frames = {iv: _frame(store.candles(symbol, iv)) for iv in ("1h", "4h")}
            strategy.naive(frames, tickers[symbol])
    return time.perf_counter() - started


def _traders(chosen: list[Strategy], symbols: list[str]) -> list[TraderSpec]:
    return [
        TraderSpec(
            id=uuid.uuid4(),
            owner_id=1,
            name=strategy.name,
            interval="1h",
            symbols=tuple(symbols),
            filter_code=strategy.code,
        )
        for strategy in chosen
    ]


async def main(args: argparse.Namespace) -> None:
    symbols = [f"C{index:03d}/USDT" for index in range(args.symbols)]
    feed = SimulatedFeed(symbols, intervals=("1h", "4h"), seed=3, speed=None, start_ms=START_MS)
    store = KlineStore(depth=args.candles)
    feed.backfill(store)
    chosen = strategies()[: args.traders]
    traders = _traders(chosen, symbols)
    evaluations = len(traders) * len(symbols)
    print(
        f"{len(traders)} traders x {len(symbols)} symbols x {args.candles} candles "
        f"(1h, and 4h for the multi-timeframe filters), {args.workers} workers, "
        f"{os.cpu_count()} CPUs"
    )

    sandbox = FilterSandbox(workers=args.workers)
    engine = ScreenerEngine(sandbox)
    market = MarketData(feed, store)

    async def screen() -> dict[uuid.UUID, Any]:
        newest = store.last_time(symbols[0], "1h")
        assert newest is not None
        close = CandleClose("1h", newest)
        return await engine.screen(traders, market.view(close.at))

    await sandbox.start()
    try:
        started = time.perf_counter()
        outcomes = await screen()
        cold = time.perf_counter() - started
        failures = [o.failure for o in outcomes.values() if o.failure]
        if failures:
            raise SystemExit(f"filters failed: {failures[:3]}")
        closes = []
        for _ in range(args.closes):
            feed.step(store)
            started = time.perf_counter()
            outcomes = await screen()
            closes.append(time.perf_counter() - started)
    finally:
        await sandbox.close()
    matched = sum(len(o.matches) for o in outcomes.values())
    median = statistics.median(closes)
    print(f"cold first run (workers receive every series): {cold * 1000:8.1f} ms")
    print(
        f"per candle close over {len(closes)} closes:  median {median * 1000:.1f} ms, "
        f"max {max(closes) * 1000:.1f} ms, min {min(closes) * 1000:.1f} ms"
    )
    print(
        f"filter evaluations per second: {evaluations / median:,.0f} "
        f"({evaluations} per close, {matched} matched at the last)"
    )

    tickers = market.view().tickers()
    sample = chosen[: args.baseline_traders]
    naive = naive_candle_close(sample, symbols, store, tickers)
    scale = len(chosen) / len(sample)
    naive_close = naive * scale
    measured = "measured" if len(sample) == len(chosen) else f"{len(sample)} traders, scaled"
    print(
        f"naive baseline (pandas per trader per symbol, {measured}): "
        f"{naive_close * 1000:8.1f} ms per close, "
        f"{evaluations / naive_close:,.0f} evaluations per second"
    )
    print(f"speed-up over the naive baseline: {naive_close / median:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--candles", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--closes", type=int, default=5, help="candle closes to time")
    parser.add_argument(
        "--baseline-traders", type=int, default=50, help="traders the naive baseline runs"
    )
    asyncio.run(main(parser.parse_args()))
