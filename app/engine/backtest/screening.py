"""The screening backtest: which signals traders would have raised over recorded candles.

The screener (in the sandbox, the very workers live screening uses) and the signal stage
run on the replay clock, over a `ReplayMarket`, with in-memory repositories: live tables are
never touched. Each close is revealed, screened and its later stages drained before the next
one, so the run is deterministic and as fast as the CPU allows. The full backtest, with
analysis and trades, builds on this same loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.domain.intervals import interval_ms
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.backtest.replay import ReplayMarket
from app.engine.clock import ReplayClock
from app.engine.memory import CollectingNotifier, MemorySignalRepository, MemoryTraderRepository
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose, ScreenerEngine, ScreenReport
from app.engine.signals import SignalManager
from app.engine.workflow import Workflow


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    signals: tuple[Signal, ...]
    reports: tuple[ScreenReport, ...]
    errors: dict[str, str] = field(default_factory=dict)


async def screen_history(
    specs: Sequence[TraderSpec],
    market: ReplayMarket,
    sandbox: FilterSandbox,
    *,
    start: int,
    end: int,
) -> ScreeningResult:
    """Screen every close in [start, end] (moments, epoch ms) of the specs' intervals."""
    clock = ReplayClock(start)
    traders = MemoryTraderRepository(specs)
    signals = MemorySignalRepository()
    workflow = Workflow(
        traders,
        ScreenerEngine(sandbox),
        SignalManager(signals, traders, CollectingNotifier(), clock),
    )
    reports = []
    try:
        for moment, intervals in market.closes({spec.interval for spec in specs}, start, end):
            clock.advance(moment)
            market.reveal(moment)
            view = market.view()
            for interval in intervals:
                close = CandleClose(interval, moment - interval_ms(interval))
                if (report := await workflow.on_close(close, view)) is not None:
                    reports.append(report)
            await workflow.drain(view)
    finally:
        await sandbox.forget_source(market.source_id)
    return ScreeningResult(
        tuple(signals.all()),
        tuple(reports),
        {str(trader_id): reason for trader_id, reason in traders.errors.items()},
    )
