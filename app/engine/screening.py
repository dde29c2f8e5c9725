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
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.domain.filter_validation import FilterValidationError, parse_filter
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

DRY_RUN = "dry-run"
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


@dataclass(frozen=True, slots=True)
class Screen:
    """What one screen found: each trader's outcome, and the report of the run."""

    outcomes: dict[uuid.UUID, FilterOutcome]
    report: ScreenReport


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

    async def screen(
        self, close: CandleClose, specs: Sequence[TraderSpec], view: MarketView
    ) -> Screen:
        """Every spec's filter over its symbols, on the market as `view` shows it."""
        started = time.perf_counter()
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
                    spec.symbols or view.symbols(spec.interval),
                    program.timeframes,
                    spec.filter_params(),
                )
            )
        by_key = {str(spec.id): spec.id for spec in specs}
        found = await self.sandbox.run(jobs, view, view.tickers())
        outcomes.update((by_key[key], outcome) for key, outcome in found.items())
        report = ScreenReport(
            close.interval,
            close.time,
            len(specs),
            sum(outcome.evaluated for outcome in outcomes.values()),
            sum(len(outcome.matches) for outcome in outcomes.values()),
            sum(outcome.failure is not None for outcome in outcomes.values()),
            time.perf_counter() - started,
        )
        self.reports = [*self.reports[-(REPORTS_KEPT - 1) :], report]
        self.totals.setdefault(close.interval, ScreenTotals()).add(report)
        return Screen(outcomes, report)

    async def dry_run(
        self, code: str, interval: str, symbols: Sequence[str] | None, view: MarketView
    ) -> FilterOutcome:
        """Run a filter that belongs to no trader on `view`; nothing is recorded.

        Raises `FilterValidationError` when the code does not pass validation.
        """
        program = parse_filter(code, interval)
        job = FilterJob(
            DRY_RUN,
            code,
            interval,
            tuple(symbols) if symbols is not None else view.symbols(interval),
            program.timeframes,
            {"interval": interval},
        )
        return (await self.sandbox.run([job], view, view.tickers()))[DRY_RUN]
