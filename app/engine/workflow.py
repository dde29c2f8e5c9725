"""The workflow of one engine: the stages, run for each candle close, whoever drives them.

`on_close` is the fast path of a candle close: read the traders of the interval as they are
now, screen them on the market view of that close, turn each outcome into signals, and let
every later stage note what the close made due for those traders (read once for all).
Screening is fair between users (`app.domain.fairness`): each trader runs within its share
of its owner's budget, and the traders that were slow at their previous close are screened
after the others have their signals, from a fresh read of which of them still run. Those
stages (analysis, monitors, trading) take their work from durable state (a signal's status,
an open position), never from a call chain, so a slow one never holds up the next screen:
the live engine runs each one in a task of its own, woken after every close (`LiveEngine`);
a backtest runs them one after the other until none has anything left (`drain`), which
makes it deterministic. `stage_seconds` adds up the time each stage took in `on_close` and
`drain` ("screen": the screen and the signals it recorded), for the backtest benchmark's
time per stage.

The live engine calls `on_close` from its close trigger; a backtest calls it from its replay
loop with a replayed view. Nothing here knows which clock drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.domain.fairness import fair_budgets, split_by_cost
from app.domain.trader_spec import TraderSpec
from app.engine.ports import TraderRepository
from app.engine.sandbox import FilterOutcome, SandboxError
from app.engine.screening import CandleClose, MarketView, ScreenerEngine, ScreenReport
from app.engine.signals import SignalManager

log = logging.getLogger(__name__)


class Stage(Protocol):
    """A stage after the signal stage, working from durable state."""

    name: str

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """Note what this close makes due; fast (no model call, no order). `traders`: those
        that ran at it (enabled and running as it began), read once for every stage."""
        ...

    async def run(self, view: MarketView) -> int:
        """Work through what is due now, on the market as `view` shows it; how many items
        were handled (0: nothing was due)."""
        ...


@dataclass(frozen=True, slots=True)
class Fairness:
    """`user_seconds`: a user's traders' evaluation time per worker and close, shared equally;
    `heavy_seconds`: what a trader may have spent at its previous close and still be screened
    with the fast ones."""

    user_seconds: float = 4.0
    heavy_seconds: float = 0.25


@runtime_checkable
class Bookkeeping(Protocol):
    """A stage that keeps records rather than acting on the market (equity snapshots,
    decision outcomes). Live, it waits while the stages on the way to an order are busy (at
    most `LiveEngine`'s `bookkeeping_wait_ms`; `EngineGate.wait_quiet`), so its database
    work never delays an entry; a backtest runs every stage in order anyway."""

    bookkeeping: bool


@runtime_checkable
class Prompted(Protocol):
    """A stage told of its work as it arrives, not only after candle closes and the work of
    the stages before it: live, it is also woken whenever `prompted` returns (the position
    monitor on every price update, the trade stage when signals are handed to it); a backtest
    drains it after each close anyway."""

    async def prompted(self) -> None: ...


@runtime_checkable
class HandedWork(Protocol):
    """A stage whose work is only ever handed to it (the trade stage: the signals the
    analysis marked ready). Live, a candle close does not wake it: the hand-off does
    (`Prompted`), as do the stages before it and its poll, which finds the stragglers in
    the store. Woken by the close, it would look for them just as the close's own signals
    need the connection. A backtest drains it after each close anyway."""

    handed_work: bool


class EngineGate:
    """What work of lower rank waits for, in two states.

    Open except while a screen runs. Work that can wait for a screen's length (the
    analyzer's records of decisions that answered meanwhile) waits here, so the screen has
    the engine process to itself: on two cores that also run the sandbox workers, every
    bit of CPU the process spends elsewhere during a screen makes the screen slower.

    Quiet while the stages on the way to an order (analysis, monitors, entries) are idle,
    as the live stage tasks report it (`order_path_busy`): bookkeeping stages and the
    metrics sent to subscribers after a change (`BusNotifier`) wait for it, at most a
    limit of theirs, so that a close's entries do not queue behind their reads. Without
    stage tasks reporting (a backtest, an API process) it is always quiet."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    async def wait_open(self) -> None:
        await self._open.wait()

    def order_path_busy(self, busy: bool) -> None:
        if busy:
            self._quiet.clear()
        else:
            self._quiet.set()

    async def wait_quiet(self, max_seconds: float) -> None:
        """Return once no screen runs and the order path is idle; after `max_seconds` (an
        analysis waiting for a model keeps the order path busy), once no screen runs."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_seconds):
                while not (self._open.is_set() and self._quiet.is_set()):
                    await self._open.wait()
                    await self._quiet.wait()
        await self._open.wait()


class Workflow:
    def __init__(
        self,
        traders: TraderRepository,
        screener: ScreenerEngine,
        signals: SignalManager,
        stages: Sequence[Stage] = (),
        fairness: Fairness | None = None,
        gate: EngineGate | None = None,
    ) -> None:
        self.traders = traders
        self.screener = screener
        self.signals = signals
        self.stages = tuple(stages)
        self.fairness = fairness or Fairness()
        self.gate = gate or EngineGate()
        self._spent: dict[str, dict[uuid.UUID, float]] = {}
        self.stage_seconds: dict[str, float] = {"screen": 0.0} | {
            stage.name: 0.0 for stage in self.stages
        }

    async def drain(self, view: MarketView) -> int:
        """Run the later stages, in order, until none has anything due; the items handled."""
        total = 0
        while done := sum([await self._timed(stage, view) for stage in self.stages]):
            total += done
        return total

    async def _timed(self, stage: Stage, view: MarketView) -> int:
        started = time.perf_counter()
        try:
            return await stage.run(view)
        finally:
            self.stage_seconds[stage.name] += time.perf_counter() - started

    async def on_close(self, close: CandleClose, view: MarketView) -> ScreenReport | None:
        """Screen the close and record signals; None when the sandbox failed (logged)."""
        with self.gate.closed():
            return await self._on_close(close, view)

    async def _on_close(self, close: CandleClose, view: MarketView) -> ScreenReport | None:
        started = time.perf_counter()
        specs = await self.traders.running(close.interval)
        budgets = fair_budgets(
            {spec.id: spec.owner_id for spec in specs},
            self.fairness.user_seconds,
            self.screener.sandbox.limits.run_seconds,
        )
        light, heavy = split_by_cost(
            specs, self._spent.get(close.interval, {}), self.fairness.heavy_seconds
        )
        outcomes: dict[uuid.UUID, FilterOutcome] = {}
        try:
            outcomes |= await self._screen(light, view, budgets)
            if heavy:
                still = {spec.id for spec in await self.traders.running(close.interval)}
                outcomes |= await self._screen(
                    [spec for spec in heavy if spec.id in still], view, budgets
                )
        except SandboxError:
            log.exception("screening %s at %s skipped: the sandbox failed", close.interval, close)
            return None
        self._spent[close.interval] = {
            trader: outcome.spent_seconds for trader, outcome in outcomes.items()
        }
        screened = time.perf_counter()
        self.stage_seconds["screen"] += screened - started
        for stage in self.stages:
            try:
                await stage.on_close(close, view, specs)
            except Exception:
                log.exception("stage %s failed on the %s close", stage.name, close.interval)
            finally:
                now = time.perf_counter()
                self.stage_seconds[stage.name] += now - screened
                screened = now
        report = ScreenReport(
            close.interval,
            close.time,
            len(outcomes),
            sum(outcome.evaluated for outcome in outcomes.values()),
            sum(len(outcome.matches) for outcome in outcomes.values()),
            sum(outcome.failure is not None for outcome in outcomes.values()),
            time.perf_counter() - started,
        )
        self.screener.record(report)
        return report

    async def _screen(
        self, specs: Sequence[TraderSpec], view: MarketView, budgets: dict[uuid.UUID, float]
    ) -> dict[uuid.UUID, FilterOutcome]:
        """One tier of the close: screen, then record each outcome (signals or a failure)."""
        outcomes = await self.screener.screen(specs, view, budgets)
        runs = [(spec, outcomes[spec.id]) for spec in specs if spec.id in outcomes]
        try:
            await self.signals.record_runs(runs)
        except Exception:
            log.exception("recording the runs of %d traders failed; one by one", len(runs))
            for spec, outcome in runs:
                try:
                    await self.signals.record_run(spec, outcome)
                except Exception:
                    log.exception("recording the run of trader %s failed", spec.id)
        return outcomes
