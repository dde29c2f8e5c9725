"""One wiring of the stages for every clock: the live engine and a backtest differ only in
the ports and the clock they pass here.

`app.bootstrap` passes the database repositories, the bus notifier and the wall clock;
a backtest passes the in-memory repositories of `app.engine.memory` and a replay clock.
The stages, their order and their settings are the same, so what a backtest replays is
what the live engine would have done (nautilus_trader's "same code from research to live").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from app.core.settings import Settings
from app.domain.decision_quality import DEFAULT_HORIZON
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.context import DEFAULT_CANDLES, ContextBuilder
from app.engine.analyzer import DEFAULT_BATCH, Analyst, AnalyzerStage
from app.engine.clock import Clock
from app.engine.memory import (
    CollectingNotifier,
    MemoryDecisionRepository,
    MemorySignalRepository,
    MemoryTraderRepository,
)
from app.engine.outcomes import OutcomeStage
from app.engine.ports import (
    DecisionRepository,
    NoPositions,
    Notifier,
    PositionReader,
    SignalRepository,
    TraderRepository,
)
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.engine.signal_monitor import DEFAULT_CANCEL_MOVE, DEFAULT_RECHECKS, SignalMonitorStage
from app.engine.signals import SignalManager
from app.engine.workflow import Fairness, Workflow

BATCH_PER_MODEL_CALL = 4


@dataclass(frozen=True, slots=True)
class Ports:
    """Where the stages keep their state and whom they tell."""

    traders: TraderRepository
    signals: SignalRepository
    decisions: DecisionRepository
    positions: PositionReader
    notifier: Notifier


@dataclass(frozen=True, slots=True)
class StageOptions:
    analysis_candles: int = DEFAULT_CANDLES
    watch_rechecks: int = DEFAULT_RECHECKS
    watch_cancel_move_percent: Decimal = DEFAULT_CANCEL_MOVE
    outcome_horizon_candles: int = DEFAULT_HORIZON
    batch: int = DEFAULT_BATCH
    fairness: Fairness = field(default_factory=Fairness)

    @classmethod
    def from_settings(cls, settings: Settings) -> StageOptions:
        return cls(
            analysis_candles=settings.analysis_candles,
            watch_rechecks=settings.watch_rechecks,
            watch_cancel_move_percent=Decimal(str(settings.watch_cancel_move_percent)),
            outcome_horizon_candles=settings.outcome_horizon_candles,
            batch=BATCH_PER_MODEL_CALL * settings.llm_concurrency,
            fairness=Fairness(settings.screen_seconds_per_user, settings.heavy_trader_seconds),
        )


def assemble_workflow(
    ports: Ports,
    clock: Clock,
    sandbox: FilterSandbox,
    analysis: AnalysisEngine,
    *,
    owner: str,
    options: StageOptions | None = None,
) -> Workflow:
    """The workflow's stages on `ports`; `owner` names the leases its stages take."""
    options = options or StageOptions()
    contexts = ContextBuilder(ports.decisions, ports.positions, clock, options.analysis_candles)
    analyst = Analyst(analysis, contexts, ports.decisions, ports.signals, ports.notifier, clock)
    stages = (
        AnalyzerStage(analyst, ports.traders, owner=owner, batch=options.batch),
        SignalMonitorStage(
            analyst,
            ports.traders,
            owner=owner,
            rechecks=options.watch_rechecks,
            cancel_move_percent=options.watch_cancel_move_percent,
            batch=options.batch,
        ),
        OutcomeStage(ports.decisions, clock, horizon=options.outcome_horizon_candles),
    )
    signals = SignalManager(ports.signals, ports.traders, ports.notifier, clock)
    return Workflow(ports.traders, ScreenerEngine(sandbox), signals, stages, options.fairness)


@dataclass(frozen=True, slots=True)
class MemoryPorts(Ports):
    """The ports of a backtest, kept so that its result can be read from them."""

    traders: MemoryTraderRepository
    signals: MemorySignalRepository
    decisions: MemoryDecisionRepository
    notifier: CollectingNotifier


def memory_ports(specs: list[TraderSpec] | tuple[TraderSpec, ...]) -> MemoryPorts:
    signals = MemorySignalRepository()
    return MemoryPorts(
        traders=MemoryTraderRepository(specs),
        signals=signals,
        decisions=MemoryDecisionRepository(signals),
        positions=NoPositions(),
        notifier=CollectingNotifier(),
    )
