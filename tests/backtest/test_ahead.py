"""Screening the closes to come in one sandbox message gives, close by close, what screening
each close alone gives: the same matches at the same candles, seen through the same window,
and no evaluation sees a candle that closed after its close."""

from __future__ import annotations

from pathlib import Path

from app.domain.intervals import interval_ms
from app.engine.backtest.ahead import WideView
from app.engine.backtest.replay import ReplayMarket
from app.engine.feeds.replay import read_candles
from app.engine.sandbox import FilterJob, FilterSandbox
from app.engine.sandbox.pool import Close

DATA = Path(__file__).resolve().parents[1] / "data" / "candles"
SYMBOLS = {"ETH/BTC": "ETH_BTC-5m.csv", "LTC/BTC": "LTC_BTC-5m.csv"}
FIVE_MINUTES = interval_ms("5m")
DEPTH = 60
# Matches at every close, its score the newest candle's open time and its reading the
# number of candles it saw: what the filter sees is in what it answers.
SEEN = (
    "seen = sma(candles, 2)\n"
    "return len(candles.close) > 0, 'long', candles.time[-1] + len(candles.close) / 1000"
)


def job() -> FilterJob:
    return FilterJob("seen", SEEN, "5m", tuple(SYMBOLS), frozenset({"5m"}))


async def test_a_batch_of_closes_answers_as_each_close_alone() -> None:
    series = {(symbol, "5m"): read_candles(DATA / name)[:400] for symbol, name in SYMBOLS.items()}
    market = ReplayMarket(series, depth=DEPTH)
    first = int(series[("ETH/BTC", "5m")][100, 0]) + FIVE_MINUTES
    moments = [first + k * FIVE_MINUTES for k in range(30)]

    async with FilterSandbox(workers=2) as sandbox:
        closes = [Close(m, [job()], market.tickers_at(m)) for m in moments]
        batched = await sandbox.run_closes(closes, WideView(market, moments[0], moments[-1]), DEPTH)
    alone = []
    async with FilterSandbox(workers=2) as sandbox:
        for moment in moments:
            market.reveal(moment)
            view = market.view()
            alone.append(await sandbox.run([job()], view, view.tickers()))

    assert len(batched) == len(alone) == len(moments)
    for moment, ahead, single in zip(moments, batched, alone, strict=True):
        assert ahead["seen"].failure is None and ahead["seen"].evaluated == len(SYMBOLS)
        assert ahead["seen"].matches == single["seen"].matches
        for match in ahead["seen"].matches:
            assert match.candle_time == moment - FIVE_MINUTES, "the close's own last candle"
            assert match.score == match.candle_time + DEPTH / 1000, "a window of DEPTH candles"
