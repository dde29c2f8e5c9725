"""Backtest speed: freqtrade's RSI(14) sample over 50 pairs x 8,760 1h candles, as a trader.

The strategy (enter under RSI 30, exit over 70, a 5% stop, a 6% take profit as freqtrade's
ROI) runs as a trader through `replay_history`, as `run_backtest` runs it: the live stages
on the replay clock, the filter in the sandbox (2 workers), in-memory repositories, the live
kline depth (500 candles a close sees). By default no engine analyzes its signals
(`--analysis filter`: every signal entered, as freqtrade's strategy enters every one), so the
trade, position and exit stages do the work freqtrade's run does, and the trade count is
printed beside freqtrade's; `--analysis rules` has the rule engine decide instead (it turns
down every RSI dip of this walk: no trade). The market is a seeded random walk with
volatility regimes (calm, normal, wild, switching at random), one year of hourly candles per
pair.

It prints wall time, CPU time (this process, the part of it spent replaying, and the sandbox
workers), candles per second, the time the market took to load (before the replay, as in
`run_backtest`), time per stage (with the workers screening ahead, a stage that waits on the
event loop is charged for the batch work done meanwhile), peak memory (the engine's, and each
sandbox worker's since it started its program) and, measured in the same run, the time numpy
and TA-Lib take to compute the same RSI once over each whole series: the floor of a
vectorised backtester, which sees every candle at once.

`--ahead 1` screens one close per sandbox message, as the live engine must.

    python -m benchmarks.backtest [--analysis filter|rules] [--pairs 50] [--candles 8760]
        [--workers 2] [--ahead 24]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import talib

from app.domain.enums import BacktestAnalysis
from app.domain.intervals import interval_ms
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.backtest.ahead import AHEAD
from app.engine.backtest.job import analysis_engine
from app.engine.backtest.replay import ReplayMarket
from app.engine.backtest.run import replay_history
from app.engine.sandbox import FilterSandbox

START_MS = 1_672_531_200_000  # 2023-01-01 UTC
FREQTRADE = {"wall": 21.8, "candles/s": 20_000, "trades": 3_471, "peak MiB": 710}  # the issue
HOUR = interval_ms("1h")
REGIMES = np.array([0.004, 0.01, 0.025])  # hourly volatility of calm, normal, wild
WARMUP = 100


def random_walk(seed: int, candles: int) -> np.ndarray:
    """One pair's hourly candles in ccxt's shape: a random walk whose volatility switches
    between regimes, with highs, lows and volumes that move with it."""
    rng = np.random.default_rng(seed)
    switches = rng.random(candles) < 1 / 200
    regime = np.maximum.accumulate(np.where(switches, np.arange(candles), 0))
    sigma = REGIMES[rng.integers(0, len(REGIMES), size=candles)][regime]
    returns = rng.normal(0, sigma)
    close = 100 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, sigma, size=(2, candles)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(10, 0.5, size=candles) * (1 + 50 * sigma)
    times = START_MS + HOUR * np.arange(candles)
    return np.column_stack([times, open_, high, low, close, volume]).astype(np.float64)


def rsi_trader() -> TraderSpec:
    return TraderSpec(
        id=uuid.UUID(int=1),
        owner_id=1,
        name="RSI(14) 30/70",
        interval="1h",
        filter_code="return rsi(candles, 14)[-1] < 30",
        exit_filter_code="return rsi(candles, 14)[-1] > 70",
        risk=RiskSettings(
            stop_loss=Decimal(5),
            take_profit=Decimal(6),
            max_positions=50,
            position_size_percent=Decimal(2),
        ),
    )


def peak_mib(pid: int) -> float:
    """A process's peak resident memory since it started its program (VmHWM: what a
    child's ru_maxrss also counts, the parent's pages shared at fork, is left out)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def numpy_floor(series: dict[tuple[str, str], np.ndarray]) -> float:
    """Seconds to compute RSI(14) once over each whole series and find the crossings."""
    started = time.perf_counter()
    for rows in series.values():
        rsi = talib.RSI(rows[:, 4], 14)
        int(np.count_nonzero(rsi < 30) + np.count_nonzero(rsi > 70))
    return time.perf_counter() - started


async def run(
    analysis: BacktestAnalysis, pairs: int, candles: int, workers: int, ahead: int, profile: bool
) -> None:
    series = {(f"P{index:02d}/USDT", "1h"): random_walk(index, candles) for index in range(pairs)}
    loading = time.perf_counter()
    market = ReplayMarket(series)  # the live kline depth, as `run_backtest` replays
    loaded = time.perf_counter() - loading
    start = START_MS + WARMUP * HOUR
    profiler = cProfile.Profile() if profile else None
    async with FilterSandbox(workers=workers) as sandbox:
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        result = await replay_history(
            [rsi_trader()],
            market,
            sandbox,
            start=start,
            end=2**62,
            analysis=analysis_engine(analysis),
            ahead=ahead,
        )
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        worker_peak = max(peak_mib(pid) for pid in sandbox.pids)
    floor = numpy_floor(series)
    total = pairs * candles
    own_usage = resource.getrusage(resource.RUSAGE_SELF)
    children_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = own_usage.ru_maxrss / 1024
    performance = next(iter(result.performance.values()))
    print(f"{pairs} pairs x {candles} 1h candles = {total:,} candles, {len(result.reports)} closes")
    print(f"analysis         {analysis}")
    print(f"wall time        {wall:8.2f} s      (freqtrade {FREQTRADE['wall']} s)")
    print(
        f"CPU time         {own_usage.ru_utime + own_usage.ru_stime:8.2f} s engine "
        f"({cpu:.2f} s of it replaying), "
        f"{children_usage.ru_utime + children_usage.ru_stime:.2f} s sandbox workers"
    )
    print(f"market load      {loaded:8.2f} s      (cleaning the candles, the tickers' sums)")
    print(f"candles/s        {total / wall:10,.0f}    (freqtrade {FREQTRADE['candles/s']:,})")
    print(f"signals          {len(result.signals):8d}")
    print(f"decisions        {len(result.decisions):8d}")
    reasons = dict(Counter(str(t.exit_reason) for t in result.trades))
    print(
        f"trades           {len(result.trades):8d}      (freqtrade {FREQTRADE['trades']:,}) "
        f"{reasons}"
    )
    print(f"total P&L        {performance.total_pnl}")
    print(
        f"peak memory      {own:8.0f} MiB engine, {worker_peak:.0f} MiB largest worker "
        f"(freqtrade {FREQTRADE['peak MiB']} MiB)"
    )
    for stage, seconds in sorted(result.stage_seconds.items(), key=lambda item: -item[1]):
        print(f"  stage {stage:<18} {seconds:8.2f} s")
    print(f"numpy RSI floor  {floor:8.3f} s (the indicator alone, once over each series)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--analysis",
        choices=[choice.value for choice in BacktestAnalysis],
        default=BacktestAnalysis.FILTER.value,
        help="what decides on the signals (filter: every signal entered, as freqtrade does)",
    )
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--candles", type=int, default=8760)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ahead", type=int, default=AHEAD, help="closes per sandbox message")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    analysis = BacktestAnalysis(args.analysis)
    asyncio.run(run(analysis, args.pairs, args.candles, args.workers, args.ahead, args.profile))


if __name__ == "__main__":
    main()
