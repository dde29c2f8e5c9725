"""A backtest run: the live workflow on the replay clock, over recorded candles.

The stages are assembled exactly as the live engine assembles them (`assemble_workflow`),
on the in-memory ports of `memory_ports`: the screener in the sandbox (the very workers live
screening uses), the signal stage, the analyzer with the given analysis engine (the rule
engine by default), the signal monitor, the position monitor and exit signals, the trade
stage with the demo executor and its fill model, equity snapshots and the outcome stage.
Orders meet the replayed market (its smallest interval's candles, as revealed). Live tables
are never touched. The screener is the live one answering from batches of the closes to
come (`ScreenAhead`), entry and exit filters alike: the same sandbox and filters, each
close seeing only its own past.
Each close is revealed, handled and every later stage drained before the next one, so a
run is deterministic and as fast as the CPU allows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.decision import Decision
from app.domain.decision_quality import Label
from app.domain.fill_model import FillModel
from app.domain.intervals import interval_ms
from app.domain.ledger import DEFAULT_BALANCE
from app.domain.metrics import Metrics, Performance, metrics_of
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.assembly import MemoryPorts, StageOptions, assemble_workflow, memory_ports
from app.engine.backtest.ahead import AHEAD, Holdings, ScreenAhead
from app.engine.backtest.replay import ReplayMarket
from app.engine.clock import ReplayClock
from app.engine.instruments import DerivedInstruments
from app.engine.prices import CandleUpdates, MarketQuotes
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose, ScreenReport

OWNER = "backtest"

Progress = Callable[[int, int], Awaitable[None]]
"""Told (closes replayed, closes in all) after every close."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    signals: tuple[Signal, ...]
    decisions: tuple[Decision, ...]
    trades: tuple[Trade, ...]
    performance: dict[uuid.UUID, Performance]
    reports: tuple[ScreenReport, ...]
    errors: dict[str, str] = field(default_factory=dict)
    metrics: dict[uuid.UUID, Metrics] = field(default_factory=dict)
    equity: dict[uuid.UUID, list[tuple[int, Decimal]]] = field(default_factory=dict)
    labels: dict[uuid.UUID, Label] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def holdings_of(ports: MemoryPorts, market: ReplayMarket) -> Holdings:
    """What each trader holds a position in or has an active signal on, in the replay."""

    async def holdings(specs: Sequence[TraderSpec]) -> dict[uuid.UUID, set[str]]:
        held: dict[uuid.UUID, set[str]] = {spec.id: set() for spec in specs}
        for trade in await ports.trades.active_trades(held):
            held[trade.trader_id].add(trade.symbol)
        active = await ports.signals.active_symbols(
            {spec.id: spec.symbols or market.symbols(spec.interval) for spec in specs}
        )
        for trader, symbols in active.items():
            held[trader] |= symbols
        return held

    return holdings


async def replay_history(
    specs: Sequence[TraderSpec],
    market: ReplayMarket,
    sandbox: FilterSandbox,
    *,
    start: int,
    end: int,
    analysis: AnalysisEngine | None = None,
    options: StageOptions | None = None,
    model: FillModel | None = None,
    balance: Decimal = DEFAULT_BALANCE,
    progress: Progress | None = None,
    ahead: int = AHEAD,
) -> ReplayResult:
    """Run every close in [start, end] (moments, epoch ms) of the specs' intervals, telling
    `progress` after each one; `ahead` closes are screened in one sandbox message."""
    clock = ReplayClock(start)
    interval = market.base_interval
    ports = memory_ports(
        tuple(specs),
        clock,
        MarketQuotes(market, interval, clock),
        CandleUpdates(market, interval, clock),
        DerivedInstruments(),
        model or FillModel(),
        balance,
    )
    closes = list(market.closes({spec.interval for spec in specs}, start, end))
    screener = ScreenAhead(sandbox, market, closes, holdings_of(ports, market), ahead)
    workflow = assemble_workflow(
        ports,
        clock,
        sandbox,
        analysis or RuleAnalysisEngine(),
        owner=OWNER,
        options=options,
        screener=screener,
    )
    workflow.stage_seconds["replay"] = 0.0
    reports = []
    try:
        for done, (moment, intervals) in enumerate(closes, 1):
            revealing = time.perf_counter()
            clock.advance(moment)
            market.reveal(moment)
            view = market.view()
            workflow.stage_seconds["replay"] += time.perf_counter() - revealing
            for interval in intervals:
                close = CandleClose(interval, moment - interval_ms(interval))
                if (report := await workflow.on_close(close, view)) is not None:
                    reports.append(report)
            await workflow.drain(view)
            if progress is not None:
                await progress(done, len(closes))
    finally:
        await screener.close()
        await sandbox.forget_source(market.source_id)
    performance = {spec.id: await ports.trades.performance(spec.id, spec.mode) for spec in specs}
    marks = ports.desk.quotes.marks(market.symbols(interval)) if market.at is not None else {}
    return ReplayResult(
        tuple(ports.signals.all()),
        tuple(sorted(ports.decisions.decisions.values(), key=lambda d: (d.created_at, d.id.hex))),
        tuple(sorted(ports.trades.trades.values(), key=lambda t: (t.opened_at, t.id.hex))),
        performance,
        tuple(reports),
        {str(trader_id): reason for trader_id, reason in ports.traders.errors.items()},
        {
            spec.id: metrics_of(
                performance[spec.id],
                now=clock.now(),
                total_signals=sum(s.trader_id == spec.id for s in ports.signals.all()),
                ledger=await ports.trades.ledger(spec.id, spec.mode),
                marks=marks,
            )
            for spec in specs
        },
        {spec.id: ports.trades.equity_curve(spec.id, spec.mode) for spec in specs},
        dict(ports.decisions.outcomes),
        dict(workflow.stage_seconds),
    )
