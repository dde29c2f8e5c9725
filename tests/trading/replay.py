"""A backtest's wiring for trading tests: the stages assembled as every engine assembles
them, on in-memory ports and a replay clock, driven by scripted candles one close at a time,
as a backtest drives them.

`Replay.close(candles)` appends one candle per symbol, moves the clock to its close, runs
`Workflow.on_close` and then `Workflow.drain`. `ready(...)` records a signal that the
analysis would have marked ready, through the signal repository, with a decision to enter at
the given levels; `hand(...)` hands one to the trade stage as the analysis does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal

from app.domain.decision import Decision, DecisionAction, KeyLevels
from app.domain.enums import Side, SignalStatus
from app.domain.fill_model import FillModel
from app.domain.instrument import Instrument
from app.domain.intervals import interval_ms
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.assembly import assemble_workflow, memory_ports
from app.engine.clock import ReplayClock
from app.engine.handoff import Handed
from app.engine.klines import KlineStore
from app.engine.market import StoreView
from app.engine.prices import CandleUpdates, MarketQuotes
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose
from app.engine.trading import TradeStage

START = 1_767_225_600_000
INTERVAL = "1h"
STEP = interval_ms(INTERVAL)
NEVER = "return False"
# A half spread of 0.025% and no impact: hand-checkable fill prices.
MODEL = FillModel(spread=Decimal("0.0005"), impact=Decimal(0))

Candle = tuple[float, float, float, float, float]


class FixedInstruments:
    """Every symbol trades in steps of 0.001, at ticks of 0.01, from 10 USDT."""

    def instrument(self, symbol: str, price: Decimal) -> Instrument:
        return Instrument(symbol, Decimal("0.001"), Decimal("0.01"), Decimal("0.001"), Decimal(10))


def spec(risk: RiskSettings | None = None, **fields: object) -> TraderSpec:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "owner_id": 1,
        "name": "scripted",
        "interval": INTERVAL,
        "symbols": ("BTC/USDT",),
        "filter_code": NEVER,
        "risk": risk or RiskSettings(),
    }
    values.update(fields)
    return TraderSpec(**values)  # type: ignore[arg-type]


class Replay:
    def __init__(
        self,
        specs: Sequence[TraderSpec],
        sandbox: FilterSandbox,
        *,
        model: FillModel = MODEL,
        analysis: AnalysisEngine | None = None,
        balance: Decimal = Decimal(10_000),
    ) -> None:
        self.store = KlineStore(depth=1000)
        self.clock = ReplayClock(START)
        self.quotes = MarketQuotes(self.store, INTERVAL, self.clock)
        ports = memory_ports(
            tuple(specs),
            self.clock,
            self.quotes,
            CandleUpdates(self.store, INTERVAL, self.clock),
            FixedInstruments(),
            model,
            balance,
        )
        self.traders, self.signals, self.trades = ports.traders, ports.signals, ports.trades
        self.decisions, self.notifier = ports.decisions, ports.notifier
        self.orders = ports.desk.orders
        self.workflow = assemble_workflow(
            ports, self.clock, sandbox, analysis or RuleAnalysisEngine(), owner="backtest"
        )
        self.time = START

    @property
    def now(self) -> int:
        return self.clock.now()

    async def close(self, candles: Mapping[str, Candle]) -> CandleClose:
        """One candle per symbol opens at the current time and closes: run the workflow."""
        for symbol, (open_, high, low, close, volume) in candles.items():
            self.store.append(symbol, INTERVAL, [[self.time, open_, high, low, close, volume]])
        candle = CandleClose(INTERVAL, self.time)
        self.time += STEP
        self.clock.advance(candle.at)
        view = StoreView(self.store, candle.at, {})
        await self.workflow.on_close(candle, view)
        await self.workflow.drain(view)
        return candle

    async def ready(
        self, trader: TraderSpec, symbol: str = "BTC/USDT", levels: KeyLevels | None = None
    ) -> Signal:
        """A signal the analysis marked ready, waiting for the trade stage."""
        signal = self._ready_signal(trader, symbol)
        assert await self.signals.add(signal)
        if levels is not None:
            await self.decisions.add(self._decision(signal, levels))
        return signal

    async def hand(
        self, trader: TraderSpec, symbol: str = "BTC/USDT", levels: KeyLevels | None = None
    ) -> Signal:
        """A ready signal handed to the trade stage as the analysis hands one over at the
        next close: leased to the stage from then, with its trader and its decision to
        enter, which the decision store does not hold."""
        stage = next(s for s in self.workflow.stages if isinstance(s, TradeStage))
        signal = self._ready_signal(trader, symbol)
        owner, until = stage.handoff.lease(self.time + STEP)
        assert await self.signals.add_many([signal], (owner, until)) == {signal.id}
        decision = self._decision(signal, levels or KeyLevels())
        stage.handoff.put([Handed(signal, trader, decision)], until)
        return signal

    def _ready_signal(self, trader: TraderSpec, symbol: str) -> Signal:
        return Signal(
            id=uuid.uuid4(),
            trader_id=trader.id,
            owner_id=trader.owner_id,
            symbol=symbol,
            interval=trader.interval,
            side=Side.LONG,
            price=Decimal(100),
            candle_time=self.now - STEP,
            created_at=self.now,
            status=SignalStatus.READY,
        )

    def _decision(self, signal: Signal, levels: KeyLevels) -> Decision:
        return Decision(
            id=uuid.uuid4(),
            signal_id=signal.id,
            trader_id=signal.trader_id,
            action=DecisionAction.ENTER_TRADE,
            direction=Side.LONG,
            confidence=1.0,
            reasoning="scripted",
            created_at=self.now,
            levels=levels,
        )

    def signal(self, signal: Signal) -> Signal:
        return self.signals.signals[signal.id]

    def trades_of(self, trader: TraderSpec) -> list[Trade]:
        return sorted(
            (t for t in self.trades.trades.values() if t.trader_id == trader.id),
            key=lambda t: t.opened_at,
        )
