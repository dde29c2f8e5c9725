"""Screening the closes to come in one sandbox message gives, close by close, what screening
each close alone gives: the same matches at the same candles, seen through the same window,
and no evaluation sees a candle that closed after its close. Exit filters screened ahead
over every symbol answer the exit stage's question (the symbols held) as a run over those
symbols alone does."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from app.domain.intervals import interval_ms
from app.domain.trader_spec import TraderSpec
from app.engine.backtest.ahead import ScreenAhead, WideView
from app.engine.backtest.replay import ReplayMarket
from app.engine.exit_signals import exit_job
from app.engine.feeds.replay import read_candles
from app.engine.sandbox import CandleSource, FilterJob, FilterOutcome, FilterSandbox, TickerValues
from app.engine.sandbox.pool import Close
from app.engine.screening import ScreenerEngine

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


@pytest.mark.parametrize("listed_after", [0, 12])
async def test_a_batch_of_closes_answers_as_each_close_alone(listed_after: int) -> None:
    """With every symbol listed the batch's tasks are made as columns, across the listing of
    one (LTC/BTC's first candle closes within the batch) symbol by symbol: both answer as
    each close alone does."""
    series = {(symbol, "5m"): read_candles(DATA / name)[:400] for symbol, name in SYMBOLS.items()}
    series[("LTC/BTC", "5m")] = series[("LTC/BTC", "5m")][100 + listed_after :]
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
    for number, (moment, ahead, single) in enumerate(zip(moments, batched, alone, strict=True)):
        listed = number >= listed_after
        assert ahead["seen"].failure is None
        assert ahead["seen"].evaluated == (len(SYMBOLS) if listed else 1)
        assert ahead["seen"].matches == single["seen"].matches
        for match in ahead["seen"].matches:
            assert match.candle_time == moment - FIVE_MINUTES, "the close's own last candle"
            seen = DEPTH if match.symbol == "ETH/BTC" else min(DEPTH, number - listed_after + 1)
            assert match.score == match.candle_time + seen / 1000, "a window of DEPTH candles"


class CountingSandbox(FilterSandbox):
    """The real sandbox, counting the runs of one close (`run`) it is asked for."""

    runs = 0

    async def run(
        self, jobs: Sequence[FilterJob], source: CandleSource, tickers: Mapping[str, TickerValues]
    ) -> dict[str, FilterOutcome]:
        self.runs += 1
        return await super().run(jobs, source, tickers)


async def holding_all(specs: Sequence[TraderSpec]) -> dict[uuid.UUID, set[str]]:
    return {spec.id: set(SYMBOLS) for spec in specs}


def exiting(code: str) -> TraderSpec:
    return TraderSpec(
        uuid.uuid4(), 1, "exits", "5m", filter_code="return False", exit_filter_code=code
    )


@pytest.mark.parametrize(
    ("code", "answered_ahead"),
    [
        ("return rsi(candles, 14)[-1] > 50", True),
        # Fails on one symbol: how far a failing run gets depends on the symbols it runs
        # over, so the question goes to the sandbox, and gets the failure live would get.
        ("return 1 / (0 if symbol == 'LTC/BTC' else 1) > 0 and rsi(candles)[-1] > 50", False),
    ],
)
async def test_exit_filters_screened_ahead_answer_as_a_run_over_the_held_symbols(
    code: str, answered_ahead: bool
) -> None:
    series = {(symbol, "5m"): read_candles(DATA / name)[:300] for symbol, name in SYMBOLS.items()}
    market = ReplayMarket(series, depth=DEPTH)
    first = int(series[("ETH/BTC", "5m")][100, 0]) + FIVE_MINUTES
    closes = list(market.closes(["5m"], first, first + 20 * FIVE_MINUTES))
    spec = exiting(code)
    held_sets = [["ETH/BTC"], ["LTC/BTC"], sorted(SYMBOLS)]
    sandbox = CountingSandbox(workers=2)
    async with sandbox:
        ahead = ScreenAhead(sandbox, market, closes, holding_all, ahead=8)
        alone = ScreenerEngine(sandbox)
        matched = 0
        for moment, _ in closes:
            market.reveal(moment)
            view = market.view()
            await ahead.screen([spec], view)
            for held in held_sets:
                job = exit_job(spec, held)
                assert job is not None
                runs = sandbox.runs
                answer = (await ahead.screen_exits([job], view))[job.key]
                assert (sandbox.runs == runs) is answered_ahead
                single = (await alone.screen_exits([job], view))[job.key]
                assert (answer.failure, answer.matches) == (single.failure, single.matches)
                assert {m.symbol for m in answer.matches} <= set(held)
                matched += len(answer.matches)
        await ahead.close()
    assert matched > 0 or not answered_ahead, "the exit filter matched somewhere"


async def holding_eth(specs: Sequence[TraderSpec]) -> dict[uuid.UUID, set[str]]:
    return {spec.id: {"ETH/BTC"} for spec in specs}


async def test_exits_ahead_cover_what_a_trader_holds_and_what_its_entries_matched() -> None:
    """Held: ETH/BTC, answered ahead at every close. LTC/BTC is not held, and its entries
    match only from the 17th close on: in a batch screened before any match it cannot be
    held, and a question about it goes to the sandbox; once a batch (or the closes before
    it) has a match, it may be held and is answered ahead. Either way the answer is a run's
    over the symbols asked."""
    series = {(symbol, "5m"): read_candles(DATA / name)[:300] for symbol, name in SYMBOLS.items()}
    market = ReplayMarket(series, depth=DEPTH)
    first = int(series[("ETH/BTC", "5m")][100, 0]) + FIVE_MINUTES
    closes = list(market.closes(["5m"], first, first + 31 * FIVE_MINUTES))
    opened = first + 15 * FIVE_MINUTES  # the candle of the 17th close
    entries = f"return symbol == 'LTC/BTC' and candles.time[-1] >= {opened}"
    spec = dataclasses.replace(exiting("return rsi(candles, 14)[-1] > 0"), filter_code=entries)
    ahead_answers = {"ETH/BTC": 0, "LTC/BTC": 0}
    sandbox = CountingSandbox(workers=2)
    async with sandbox:
        ahead = ScreenAhead(sandbox, market, closes, holding_eth, ahead=8)
        alone = ScreenerEngine(sandbox)
        for moment, _ in closes:
            market.reveal(moment)
            view = market.view()
            await ahead.screen([spec], view)
            for symbol in ahead_answers:
                job = exit_job(spec, [symbol])
                assert job is not None
                runs = sandbox.runs
                answer = (await ahead.screen_exits([job], view))[job.key]
                ahead_answers[symbol] += sandbox.runs == runs
                single = (await alone.screen_exits([job], view))[job.key]
                assert (answer.failure, answer.matches) == (single.failure, single.matches)
        await ahead.close()
    assert ahead_answers["ETH/BTC"] == len(closes)
    assert 0 < ahead_answers["LTC/BTC"] < len(closes)


async def test_a_window_screened_ahead_is_read_only_and_ends_at_its_close() -> None:
    """A close's window of a batch is a view of the worker's replica, which holds the
    candles of the closes to come: a filter can neither write it nor read past its end."""
    series = {(symbol, "5m"): read_candles(DATA / name)[:200] for symbol, name in SYMBOLS.items()}
    market = ReplayMarket(series, depth=DEPTH)
    first = int(series[("ETH/BTC", "5m")][100, 0]) + FIVE_MINUTES
    moments = [first + k * FIVE_MINUTES for k in range(10)]
    writes = FilterJob(
        "writes", "c = candles.close\nc += 1\nreturn True", "5m", tuple(SYMBOLS), frozenset({"5m"})
    )
    past_end = FilterJob(
        "past_end",
        "n = len(candles.close)\n"
        "return candles.close[n:].size == 0 and candles.time.max() == candles.time[-1]",
        "5m",
        tuple(SYMBOLS),
        frozenset({"5m"}),
    )

    async with FilterSandbox(workers=2) as sandbox:
        closes = [Close(m, [writes, past_end], market.tickers_at(m)) for m in moments]
        answers = await sandbox.run_closes(closes, WideView(market, moments[0], moments[-1]), DEPTH)

    for moment, answer in zip(moments, answers, strict=True):
        failure = answer["writes"].failure
        assert failure is not None and "read-only" in failure
        assert answer["past_end"].failure is None
        assert {m.candle_time for m in answer["past_end"].matches} == {moment - FIVE_MINUTES}
        assert len(answer["past_end"].matches) == len(SYMBOLS)
