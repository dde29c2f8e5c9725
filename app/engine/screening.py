"""ScreenerEngine: one candle close, every given trader's filter over its symbols.

A screen is a pure step of the workflow: the close it is for, the trader specs, and a view
of the market as it was at that close go in; each trader's outcome comes out. It reads no
timer, no database and no wall clock, so the live engine (its close trigger) and a backtest
(its replay loop) call the very same code, and what a screen sees is decided by the view
alone: no candle that closed after the close being screened.

One close is one batch for the sandbox, whatever the number of traders: the workers compute
each symbol's indicators once for all the traders that read them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.domain.filter_validation import FilterValidationError
from app.domain.intervals import interval_ms
from app.domain.trader_spec import TraderSpec
from app.engine.feeds.base import Ticker
from app.engine.sandbox import (
    CandleSource,
    FilterJob,
    FilterOutcome,
    FilterSandbox,
    TickerValues,
)

REPORTS_KEPT = 100


@dataclass(frozen=True, slots=True)
class CandleClose:
    """The close of every `interval` candle that opened at `time` (epoch ms)."""

    interval: str
    time: int

    @property
    def at(self) -> int:
        """The moment the candle closed: what a view of the market at this close shows."""
        return self.time + interval_ms(self.interval)


class MarketView(CandleSource, Protocol):
    """The market as it was at one moment: candles closed by then, and the tickers."""

    def symbols(self, interval: str) -> tuple[str, ...]:
        """Every symbol with candles at `interval`, sorted."""
        ...

    def tickers(self) -> Mapping[str, TickerValues]: ...


@dataclass(frozen=True, slots=True)
class ScreenReport:
    interval: str
    candle_time: int
    traders: int
    evaluations: int
    matches: int
    failures: int
    seconds: float


@dataclass(slots=True)
class ScreenTotals:
    """Running totals of one interval's screens since start, for monotonic counters."""

    screens: int = 0
    evaluations: int = 0
    matches: int = 0
    failures: int = 0
    seconds: float = 0.0
    last_seconds: float = 0.0

    def add(self, report: ScreenReport) -> None:
        self.screens += 1
        self.evaluations += report.evaluations
        self.matches += report.matches
        self.failures += report.failures
        self.seconds += report.seconds
        self.last_seconds = report.seconds


def ticker_values(ticker: Ticker) -> TickerValues:
    """What a filter sees of a feed's ticker: floats, NaN for what the feed does not know."""
    return TickerValues(
        float(ticker.last),
        math.nan if ticker.change_pct is None else float(ticker.change_pct),
        math.nan if ticker.quote_volume is None else float(ticker.quote_volume),
    )


class ScreenerEngine:
    def __init__(self, sandbox: FilterSandbox) -> None:
        self.sandbox = sandbox
        self.reports: list[ScreenReport] = []
        self.totals: dict[str, ScreenTotals] = {}

    async def start(self) -> None:
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.close()

    def record(self, report: ScreenReport) -> None:
        """Keep the report of a close's screen (the latest ones, and running totals)."""
        self.reports = [*self.reports[-(REPORTS_KEPT - 1) :], report]
        self.totals.setdefault(report.interval, ScreenTotals()).add(report)

    async def screen(
        self,
        specs: Sequence[TraderSpec],
        view: MarketView,
        budgets: Mapping[uuid.UUID, float] | None = None,
    ) -> dict[uuid.UUID, FilterOutcome]:
        """Every spec's filter over its symbols, on the market as `view` shows it, each within
        its budget per worker (`budgets`; the sandbox's own limit when not given)."""
        outcomes, jobs = filter_jobs(specs, view.symbols, budgets or {})
        by_key = {str(spec.id): spec.id for spec in specs}
        if jobs:
            found = await self.sandbox.run(jobs, view, view.tickers())
            outcomes.update((by_key[key], outcome) for key, outcome in found.items())
        return outcomes

    async def screen_exits(
        self, jobs: Sequence[FilterJob], view: MarketView
    ) -> dict[str, FilterOutcome]:
        """Exit filters (`app.engine.exit_signals`) over the symbols each trader holds, on
        the market as `view` shows it."""
        return await self.sandbox.run(jobs, view, view.tickers())


def filter_jobs(
    specs: Sequence[TraderSpec],
    symbols: Callable[[str], Sequence[str]],
    budgets: Mapping[uuid.UUID, float],
) -> tuple[dict[uuid.UUID, FilterOutcome], list[FilterJob]]:
    """The sandbox job of each spec over its symbols (`symbols(interval)` when it names
    none), and the outcome of each spec whose filter does not pass."""
    outcomes: dict[uuid.UUID, FilterOutcome] = {}
    jobs = []
    for spec in specs:
        try:
            program = spec.filter
        except FilterValidationError as exc:
            outcomes[spec.id] = FilterOutcome(str(spec.id), failure=f"invalid filter: {exc}")
            continue
        jobs.append(
            FilterJob(
                str(spec.id),
                program.code,
                spec.interval,
                spec.symbols or tuple(symbols(spec.interval)),
                program.timeframes,
                spec.filter_params(),
                budgets.get(spec.id),
            )
        )
    return outcomes, jobs
