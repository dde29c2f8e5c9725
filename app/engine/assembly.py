"""One wiring of the stages for every clock: the live engine and a backtest differ only in
the ports and the clock they pass here.

`app.bootstrap` passes the database repositories, the bus notifier, the live market's
prices and the feed's clock; a backtest passes the in-memory repositories of
`app.engine.memory`, replayed prices and a replay clock. The stages, their order and their
settings are the same, so what a backtest replays is what the live engine would have done
(nautilus_trader's "same code from research to live").

The order is the order a backtest drains them in after each close: the analysis first (new
signals become ready, watched or rejected), then the position monitor and exit signals
(exits before entries, so a slot freed at a close is free for an entry at that close), the
trade stage, equity snapshots after both, and the outcome stage, which judges decisions on
the candles that followed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from app.core.settings import Settings
from app.domain.decision_quality import DEFAULT_HORIZON
from app.domain.enums import TradingMode
from app.domain.fill_model import FillModel
from app.domain.ledger import Ledger
from app.domain.orders import Order
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.context import DEFAULT_CANDLES, ContextBuilder
from app.engine.analysis.review import AnalysisReviewer
from app.engine.analyzer import DEFAULT_BATCH, Analyst, AnalyzerStage
from app.engine.clock import Clock
from app.engine.desk import TradingDesk
from app.engine.equity import EquityKeeper
from app.engine.executors.base import TradeExecutor
from app.engine.executors.demo import DemoTradeExecutor
from app.engine.exit_signals import ExitSignals
from app.engine.instruments import Instruments
from app.engine.memory import (
    CollectingNotifier,
    MemoryDecisionRepository,
    MemorySignalRepository,
    MemoryTraderRepository,
    MemoryTradeStore,
)
from app.engine.orders import OrderManager
from app.engine.outcomes import OutcomeStage
from app.engine.ports import (
    DecisionRepository,
    Notifier,
    PriceUpdates,
    Quotes,
    SignalRepository,
    TraderRepository,
    TradeStore,
)
from app.engine.positions import PositionMonitor
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.engine.signal_monitor import DEFAULT_CANCEL_MOVE, DEFAULT_RECHECKS, SignalMonitorStage
from app.engine.signals import SignalManager
from app.engine.trading import TradeStage
from app.engine.workflow import EngineGate, Fairness, Stage, Workflow

BATCH_PER_MODEL_CALL = 4
# The rule engine answers at once: a claim is one batch, its size only bounds a transaction.
RULES_BATCH = 250


@dataclass(frozen=True, slots=True)
class Ports:
    """Where the stages keep their state, whom they tell, and the market they trade in."""

    traders: TraderRepository
    signals: SignalRepository
    decisions: DecisionRepository
    notifier: Notifier
    desk: TradingDesk
    prices: PriceUpdates


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
            batch=BATCH_PER_MODEL_CALL * settings.llm_concurrency
            if settings.uses_gemini
            else RULES_BATCH,
            fairness=Fairness(settings.screen_seconds_per_user, settings.heavy_trader_seconds),
        )


def fill_model(settings: Settings) -> FillModel:
    """The paper fill model of the settings (fees, volume share, impact)."""
    return FillModel(
        taker_fee=settings.demo_taker_fee,
        maker_fee=settings.demo_maker_fee,
        volume_share=settings.demo_volume_share,
        impact=settings.demo_impact,
    )


def assemble_desk(
    store: TradeStore,
    quotes: Quotes,
    instruments: Instruments,
    notifier: Notifier,
    clock: Clock,
    model: FillModel,
) -> TradingDesk:
    """The trading desk on `store`: demo orders fill on paper in `quotes`' market; live mode
    has no executor yet, so its entries are refused with that reason."""

    def executor(order: Order) -> TradeExecutor | None:
        if order.mode != TradingMode.DEMO:
            return None

        async def ledger() -> Ledger:
            return await store.ledger(order.trader_id, order.mode)

        return DemoTradeExecutor(quotes, instruments, clock, ledger, model)

    orders = OrderManager(store, executor, notifier, clock, instruments)
    return TradingDesk(store, orders, quotes, notifier)


def assemble_workflow(
    ports: Ports,
    clock: Clock,
    sandbox: FilterSandbox,
    analysis: AnalysisEngine,
    *,
    owner: str,
    options: StageOptions | None = None,
    screener: ScreenerEngine | None = None,
    gate: EngineGate | None = None,
) -> Workflow:
    """The workflow's stages on `ports`; `owner` names the leases its stages take. The
    screener (entry and exit filters) is the live one on `sandbox` unless given (a backtest
    gives one that screens the closes to come ahead); the `gate` is a new one unless given
    (one shared with the notifier)."""
    options = options or StageOptions()
    screener = screener or ScreenerEngine(sandbox)
    desk = ports.desk
    contexts = ContextBuilder(ports.decisions, desk.store, clock, options.analysis_candles)
    gate = gate or EngineGate()
    trade = TradeStage(
        ports.signals,
        ports.traders,
        desk.store,
        desk.orders,
        desk.quotes,
        desk.orders.instruments,
        ports.notifier,
        clock,
        levels=ports.decisions,
    )
    analyst = Analyst(
        analysis,
        contexts,
        ports.decisions,
        ports.signals,
        ports.traders,
        ports.notifier,
        clock,
        gate,
        trade.handoff,
    )
    analyzer = AnalyzerStage(analyst, owner=owner, batch=options.batch)
    stages: tuple[Stage, ...] = (
        analyzer,
        SignalMonitorStage(
            analyst,
            owner=owner,
            rechecks=options.watch_rechecks,
            cancel_move_percent=options.watch_cancel_move_percent,
            batch=options.batch,
        ),
        PositionMonitor(desk.store, desk.orders, ports.prices, clock),
        ExitSignals(desk.store, desk.orders, screener, AnalysisReviewer(analysis, contexts)),
        trade,
        EquityKeeper(ports.traders, desk.store, desk.orders, desk.quotes, ports.notifier, clock),
        OutcomeStage(ports.decisions, clock, horizon=options.outcome_horizon_candles),
    )
    signals = SignalManager(
        ports.signals, ports.traders, ports.notifier, clock, handoff=analyzer.handoff
    )
    return Workflow(ports.traders, screener, signals, stages, options.fairness, gate)


@dataclass(frozen=True, slots=True)
class MemoryPorts(Ports):
    """The ports of a backtest, kept so that its result can be read from them."""

    traders: MemoryTraderRepository
    signals: MemorySignalRepository
    decisions: MemoryDecisionRepository
    notifier: CollectingNotifier
    trades: MemoryTradeStore = field(kw_only=True)


def memory_ports(
    specs: tuple[TraderSpec, ...],
    clock: Clock,
    quotes: Quotes,
    prices: PriceUpdates,
    instruments: Instruments,
    model: FillModel,
    balance: Decimal,
) -> MemoryPorts:
    """In-memory ports for a backtest of `specs` in the market `quotes` and `prices` show."""
    traders = MemoryTraderRepository(specs)
    signals = MemorySignalRepository()
    notifier = CollectingNotifier()
    trades = MemoryTradeStore(balance, enabled=traders.is_running)
    return MemoryPorts(
        traders=traders,
        signals=signals,
        decisions=MemoryDecisionRepository(signals),
        notifier=notifier,
        desk=assemble_desk(trades, quotes, instruments, notifier, clock, model),
        prices=prices,
        trades=trades,
    )
