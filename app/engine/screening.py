"""ScreenerEngine: at each candle close, every running trader's filter over its symbols.

One candle close is one batch for the sandbox, whatever the number of traders: the workers
compute each symbol's indicators once for all the traders that read them. Each outcome is
tagged with its trader and handed to the run sink (the SignalManager), trader by trader, so
a failing trader is recorded alone while the others' signals are still created.

The store publishes one candle-closed event per symbol; after the first close of an
(interval, candle) the engine waits until every symbol of that interval has the candle (at
least `settle_seconds`, at most `max_settle_seconds`: a symbol that is late beyond that is
screened on its previous candle), then screens that candle once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.db.models import Trader
from app.domain.enums import TraderStatus
from app.domain.filter_validation import FilterProgram, FilterValidationError, parse_filter
from app.engine.feeds.base import Ticker
from app.engine.klines import CandleClosed, KlineStore
from app.engine.sandbox import (
    FilterJob,
    FilterOutcome,
    FilterSandbox,
    SandboxError,
    TickerValues,
)

log = logging.getLogger(__name__)

MAX_PROGRAMS = 10_000


class RunSink(Protocol):
    async def record_run(self, trader: Trader, outcome: FilterOutcome) -> Any: ...


@dataclass(frozen=True, slots=True)
class ScreenReport:
    interval: str
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


def filter_params(trader: Trader) -> dict[str, Any]:
    """What a filter reads as `params`: the trader's interval and risk settings, as numbers."""
    risk = {
        "stop_loss": trader.stop_loss,
        "take_profit": trader.take_profit,
        "max_positions": trader.max_positions,
        "position_size_percent": trader.position_size_percent,
        "max_drawdown": trader.max_drawdown,
    }
    return {
        "interval": trader.interval,
        **{name: None if value is None else float(value) for name, value in risk.items()},
    }


def ticker_values(ticker: Ticker | None) -> TickerValues | None:
    if ticker is None:
        return None
    return TickerValues(
        float(ticker.last),
        math.nan if ticker.change_pct is None else float(ticker.change_pct),
        math.nan if ticker.quote_volume is None else float(ticker.quote_volume),
    )


@dataclass(slots=True)
class _Waiting:
    """The symbols of an interval whose close of `candle_time` has not arrived yet."""

    candle_time: int
    missing: set[str]
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, symbol: str) -> None:
        self.missing.discard(symbol)
        if not self.missing:
            self.complete.set()


class ScreenerEngine:
    def __init__(
        self,
        store: KlineStore,
        sandbox: FilterSandbox,
        sink: RunSink,
        tickers: Callable[[], Mapping[str, Ticker]] = dict,
        settle_seconds: float = 0.2,
        max_settle_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.sandbox = sandbox
        self.sink = sink
        self.tickers = tickers
        self.settle_seconds = settle_seconds
        self.max_settle_seconds = max_settle_seconds
        self.reports: list[ScreenReport] = []
        self.totals: dict[str, ScreenTotals] = {}
        self._programs: dict[tuple[str, str], FilterProgram | FilterValidationError] = {}
        self._screened: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, _Waiting] = {}

    async def start(self) -> None:
        await self.sandbox.start()
        if self._task is None:
            self._task = asyncio.create_task(self._listen(self.store.subscribe()))

    async def stop(self) -> None:
        tasks = [task for task in (self._task, *self._pending) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        await self.sandbox.close()

    async def _listen(self, queue: asyncio.Queue[CandleClosed]) -> None:
        try:
            while True:
                event = await queue.get()
                if event.time > self._screened.get(event.interval, -1):
                    self._screened[event.interval] = event.time
                    waiting = self._waiting[event.interval] = _Waiting(
                        event.time, set(self.universe(event.interval))
                    )
                    task = asyncio.create_task(self._screen_later(event.interval, waiting))
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)
                waiting = self._waiting.get(event.interval)
                if waiting is not None and event.time >= waiting.candle_time:
                    waiting.arrived(event.symbol)
        finally:
            self.store.unsubscribe(queue)

    async def _screen_later(self, interval: str, waiting: _Waiting) -> None:
        await asyncio.sleep(self.settle_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                waiting.complete.wait(), self.max_settle_seconds - self.settle_seconds
            )
        if self._waiting.get(interval) is waiting:
            del self._waiting[interval]
        try:
            await self.screen(interval)
        except Exception:
            log.exception("screening %s failed", interval)

    def program(self, code: str, interval: str) -> FilterProgram | FilterValidationError:
        """The validated filter, cached by code: it is parsed once, not at every candle."""
        key = (code, interval)
        program = self._programs.get(key)
        if program is None:
            try:
                program = parse_filter(code, interval)
            except FilterValidationError as exc:
                program = exc
            if len(self._programs) >= MAX_PROGRAMS:
                self._programs.clear()
            self._programs[key] = program
        return program

    def universe(self, interval: str) -> tuple[str, ...]:
        """Every symbol the store holds at `interval`."""
        series = self.store.keys()
        return tuple(sorted(symbol for symbol, each in series if each == interval))

    def symbols(self, trader: Trader) -> tuple[str, ...]:
        """The trader's own universe, or every symbol the store holds at its interval."""
        return tuple(trader.symbols) if trader.symbols else self.universe(trader.interval)

    def ticker_values(self) -> dict[str, TickerValues]:
        return {
            symbol: values
            for symbol, ticker in self.tickers().items()
            if (values := ticker_values(ticker)) is not None
        }

    async def screen(self, interval: str) -> ScreenReport:
        """Screen every running trader of `interval` on the latest candles, once."""
        started = time.perf_counter()
        traders = await Trader.filter(
            enabled=True, status=TraderStatus.RUNNING, interval=interval
        ).all()
        try:
            outcomes = await self.run(traders)
        except SandboxError:
            log.exception("screening %s skipped: the sandbox failed", interval)
            outcomes = {}
        for trader in (t for t in traders if str(t.id) in outcomes):
            try:
                await self.sink.record_run(trader, outcomes[str(trader.id)])
            except Exception:
                log.exception("recording the run of trader %s failed", trader.id)
        report = ScreenReport(
            interval,
            len(traders),
            sum(outcome.evaluated for outcome in outcomes.values()),
            sum(len(outcome.matches) for outcome in outcomes.values()),
            sum(outcome.failure is not None for outcome in outcomes.values()),
            time.perf_counter() - started,
        )
        self.reports = [*self.reports[-99:], report]
        self.totals.setdefault(interval, ScreenTotals()).add(report)
        return report

    async def run(self, traders: list[Trader]) -> dict[str, FilterOutcome]:
        """Outcomes of the traders' filters on the current candles, keyed by trader id."""
        outcomes: dict[str, FilterOutcome] = {}
        jobs = []
        for trader in traders:
            key = str(trader.id)
            program = self.program(trader.filter_code, trader.interval)
            if isinstance(program, FilterValidationError):
                outcomes[key] = FilterOutcome(key, failure=f"invalid filter: {program}")
                continue
            jobs.append(
                FilterJob(
                    key,
                    program.code,
                    trader.interval,
                    self.symbols(trader),
                    program.timeframes,
                    filter_params(trader),
                )
            )
        outcomes.update(await self.sandbox.run(jobs, self.store, self.ticker_values()))
        return outcomes
