"""GraphQL object types, each built from its database row by `from_model`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.analysis_types import Analysis, SignalTransition
from app.api.context import Context
from app.api.enums import (
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
    SignalStatus,
    TraderStatus,
    TradeStatus,
    TradingMode,
)
from app.api.pagination import Connection, check_first, page_of
from app.db import models
from app.domain.metrics import Metrics as DomainMetrics
from app.domain.signal_lifecycle import changes_made_by
from app.services.reads import TraderMetrics

Info = strawberry.Info[Context, None]


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(id=strawberry.ID(str(user.id)), name=user.name, created_at=user.created_at)


@strawberry.type(
    description="Performance figures; percentages are 0-100, P&L is net of fees. The "
    "account figures (equity, maxDrawdown, Sharpe, Sortino, timeInMarket) are per mode: "
    "null on the figures of all modes together"
)
class Metrics:
    total_signals: int
    active_positions: int
    closed_positions: int
    total_pnl: Decimal = strawberry.field(name="totalPnL")
    total_pnl_percent: Decimal = strawberry.field(
        name="totalPnLPercent", description="relative to the closed trades' entry cost"
    )
    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    last_signal_at: datetime | None
    expectancy: Decimal = strawberry.field(description="mean P&L per closed trade")
    profit_factor: Decimal | None = strawberry.field(
        description="winners' P&L over the losers'; null without a loss"
    )
    fees_paid: Decimal
    unrealised_pnl: Decimal = strawberry.field(
        name="unrealisedPnL", description="open positions at the latest price, fees included"
    )
    equity: Decimal | None = strawberry.field(description="cash plus open positions")
    max_drawdown: Decimal | None = strawberry.field(
        description="largest fall of the equity below its running peak, percent"
    )
    sharpe_ratio: Decimal | None = strawberry.field(description="annualised, from equity")
    sortino_ratio: Decimal | None = strawberry.field(description="annualised, from equity")
    time_in_market: Decimal | None = strawberry.field(
        description="percent of the time with a position open"
    )
    demo_metrics: Metrics | None = None
    live_metrics: Metrics | None = None

    @classmethod
    def from_domain(cls, metrics: DomainMetrics) -> Metrics:
        return cls(
            total_signals=metrics.total_signals,
            active_positions=metrics.active_positions,
            closed_positions=metrics.closed_positions,
            total_pnl=metrics.total_pnl,
            total_pnl_percent=metrics.total_pnl_percent,
            win_rate=metrics.win_rate,
            avg_win=metrics.avg_win,
            avg_loss=metrics.avg_loss,
            last_signal_at=metrics.last_signal_at,
            expectancy=metrics.expectancy,
            profit_factor=metrics.profit_factor,
            fees_paid=metrics.fees_paid,
            unrealised_pnl=metrics.unrealised_pnl,
            equity=metrics.equity,
            max_drawdown=metrics.max_drawdown,
            sharpe_ratio=metrics.sharpe_ratio,
            sortino_ratio=metrics.sortino_ratio,
            time_in_market=metrics.time_in_market,
        )

    @classmethod
    def from_trader_metrics(cls, metrics: TraderMetrics) -> Metrics:
        overall = cls.from_domain(metrics.overall)
        overall.demo_metrics = cls.from_domain(metrics.by_mode[TradingMode.DEMO])
        overall.live_metrics = cls.from_domain(metrics.by_mode[TradingMode.LIVE])
        return overall


@strawberry.type
class RiskManagement:
    stop_loss: Decimal | None = strawberry.field(description="percent below entry, (0, 100)")
    take_profit: Decimal | None = strawberry.field(description="percent above entry")
    max_positions: int | None
    position_size_percent: Decimal | None = strawberry.field(description="percent of equity")
    max_drawdown: Decimal | None = strawberry.field(description="percent, pauses the trader")
    min_risk_reward: Decimal | None = strawberry.field(
        description="least reward per unit of risk an analysis may propose (default 1.5)"
    )
    trailing_stop: Decimal | None = strawberry.field(
        description="percent below the highest price since entry"
    )
    cooldown_candles: int | None = strawberry.field(
        description="candles after an exit before the symbol is entered again"
    )
    stop_loss_guard: int | None = strawberry.field(
        description="stop-outs within stopLossGuardCandles that lock new entries"
    )
    stop_loss_guard_candles: int | None = strawberry.field(
        description="the guard's window, and how long it locks, in candles"
    )
    review_candles: int | None = strawberry.field(
        description="ask the analysis to hold or close an open position every N candles"
    )


@strawberry.type
class Strategy:
    instructions: str
    risk_management: RiskManagement


@strawberry.type
class TraderFilter:
    code: str
    description: list[str]
    indicators: JSON


@strawberry.type(description="Closes an open position when it matches (same language as filter)")
class ExitFilter:
    code: str


@strawberry.type
class Signal:
    id: strawberry.ID
    trader_id: strawberry.ID
    symbol: str
    interval: str
    side: Side
    price: Decimal
    score: float | None
    indicators: JSON
    status: SignalStatus
    status_reason: str | None = strawberry.field(description="Why the signal has its status")
    candle_time: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, signal: object) -> Signal:
        assert isinstance(signal, models.Signal)
        return cls(
            id=strawberry.ID(str(signal.id)),
            trader_id=strawberry.ID(str(signal.trader_id)),
            symbol=signal.symbol,
            interval=signal.interval,
            side=signal.side,
            price=signal.price,
            score=signal.score,
            indicators=signal.indicators,
            status=signal.status,
            status_reason=signal.status_reason,
            candle_time=signal.candle_time,
            created_at=signal.created_at,
            updated_at=signal.updated_at,
        )

    @strawberry.field
    async def trader(self, info: Info) -> Annotated[Trader, strawberry.lazy("app.api.types")]:
        trader = await info.context.loaders.trader.load(uuid.UUID(self.trader_id))
        assert trader is not None
        return Trader.from_model(trader)

    @strawberry.field(description="The latest analysis of this signal (null until analyzed)")
    async def analysis(self, info: Info) -> Analysis | None:
        rows = await info.context.loaders.decisions.load(uuid.UUID(self.id))
        return Analysis.from_model(rows[-1]) if rows else None

    @strawberry.field(description="Every analysis of this signal, oldest first")
    async def decisions(self, info: Info) -> list[Analysis]:
        rows = await info.context.loaders.decisions.load(uuid.UUID(self.id))
        return [Analysis.from_model(row) for row in rows]

    @strawberry.field(description="Every status change, oldest first, with its reason")
    async def transitions(self, info: Info) -> list[SignalTransition]:
        rows = await info.context.loaders.transitions.load(uuid.UUID(self.id))
        # Read after the signal: a change that landed since is not part of the signal shown.
        made = changes_made_by(self.status, [row.from_status for row in rows])
        return [SignalTransition.from_model(row) for row in rows[:made]]

    @strawberry.field(description="The trade entered for this signal, if any")
    async def trade(self, info: Info) -> Annotated[Trade, strawberry.lazy("app.api.types")] | None:
        row = await info.context.loaders.trade_of_signal.load(uuid.UUID(self.id))
        return None if row is None else Trade.from_model(row)


@strawberry.type(description="One execution of an order")
class Fill:
    id: strawberry.ID
    order_id: strawberry.ID
    amount: Decimal
    price: Decimal
    expected_price: Decimal | None = strawberry.field(
        description="the price the engine sent the order at: price - expectedPrice is slippage"
    )
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    time: datetime

    @classmethod
    def from_model(cls, fill: models.Fill) -> Fill:
        return cls(
            id=strawberry.ID(fill.id),
            order_id=strawberry.ID(str(fill.order_id)),
            amount=fill.amount,
            price=fill.price,
            expected_price=fill.expected_price,
            fee=fill.fee,
            fee_currency=fill.fee_currency,
            liquidity=fill.liquidity,
            time=fill.time,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    trader_id: strawberry.ID
    trade_id: strawberry.ID | None
    client_order_id: str = strawberry.field(description="assigned and recorded before sending")
    mode: TradingMode
    purpose: OrderPurpose
    symbol: str
    side: OrderSide
    type: OrderType
    status: OrderStatus
    amount: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    expected_price: Decimal | None
    filled: Decimal
    average: Decimal | None
    fee: Decimal
    exit_reason: ExitReason | None
    reason: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, order: object) -> Order:
        assert isinstance(order, models.Order)
        trade_id = order.trade_id
        return cls(
            id=strawberry.ID(str(order.id)),
            trader_id=strawberry.ID(str(order.trader_id)),
            trade_id=None if trade_id is None else strawberry.ID(str(trade_id)),
            client_order_id=order.client_order_id,
            mode=order.mode,
            purpose=order.purpose,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            status=order.status,
            amount=order.amount,
            price=order.price,
            stop_price=order.stop_price,
            expected_price=order.expected_price,
            filled=order.filled,
            average=order.average,
            fee=order.fee,
            exit_reason=order.exit_reason,
            reason=order.reason,
            expires_at=order.expires_at,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )

    @strawberry.field
    async def fills(self, info: Info) -> list[Fill]:
        rows = await info.context.loaders.fills_of_order.load(uuid.UUID(self.id))
        return [Fill.from_model(row) for row in rows]


@strawberry.type
class Trade:
    id: strawberry.ID
    trader_id: strawberry.ID
    signal_id: strawberry.ID | None
    mode: TradingMode
    symbol: str
    side: Side
    status: TradeStatus
    amount: Decimal
    entry_price: Decimal | None
    exit_price: Decimal | None
    entry_fee: Decimal
    exit_fee: Decimal
    exit_amount: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    trailing_stop: Decimal | None = strawberry.field(description="percent below the high")
    highest_price: Decimal | None
    pnl: Decimal | None = strawberry.field(description="net of both sides' fees")
    pnl_percent: Decimal | None
    exit_reason: ExitReason | None
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_model(cls, trade: object) -> Trade:
        assert isinstance(trade, models.Trade)
        signal_id = trade.signal_id
        return cls(
            id=strawberry.ID(str(trade.id)),
            trader_id=strawberry.ID(str(trade.trader_id)),
            signal_id=strawberry.ID(str(signal_id)) if signal_id else None,
            mode=trade.mode,
            symbol=trade.symbol,
            side=trade.side,
            status=trade.status,
            amount=trade.amount,
            entry_price=trade.entry_price,
            exit_price=trade.exit_price,
            entry_fee=trade.entry_fee,
            exit_fee=trade.exit_fee,
            exit_amount=trade.exit_amount,
            stop_loss=trade.stop_loss,
            take_profit=trade.take_profit,
            trailing_stop=trade.trailing_stop,
            highest_price=trade.highest_price,
            pnl=trade.pnl,
            pnl_percent=trade.pnl_percent,
            exit_reason=trade.exit_reason,
            opened_at=trade.opened_at,
            closed_at=trade.closed_at,
        )

    @strawberry.field(description="The signal this trade was entered for")
    async def signal(self, info: Info) -> Signal | None:
        if self.signal_id is None:
            return None
        row = await info.context.loaders.signal.load(uuid.UUID(self.signal_id))
        return None if row is None else Signal.from_model(row)

    @strawberry.field(description="Its entry and exit orders, oldest first")
    async def orders(self, info: Info) -> list[Order]:
        rows = await info.context.loaders.orders_of_trade.load(uuid.UUID(self.id))
        return [Order.from_model(row) for row in rows]

    @strawberry.field(description="Every fill of its orders, oldest first")
    async def fills(self, info: Info) -> list[Fill]:
        rows = await info.context.loaders.fills_of_trade.load(uuid.UUID(self.id))
        return [Fill.from_model(row) for row in rows]


@strawberry.type
class Trader:
    id: strawberry.ID
    name: str
    description: str
    enabled: bool
    mode: TradingMode
    status: TraderStatus
    status_reason: str | None
    interval: str
    symbols: list[str] = strawberry.field(description="empty: the feed's default universe")
    has_exchange_credentials: bool
    filter: TraderFilter
    exit_filter: ExitFilter
    strategy: Strategy
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, trader: object) -> Trader:
        assert isinstance(trader, models.Trader)
        return cls(
            id=strawberry.ID(str(trader.id)),
            name=trader.name,
            description=trader.description,
            enabled=trader.enabled,
            mode=trader.mode,
            status=trader.status,
            status_reason=trader.status_reason,
            interval=trader.interval,
            symbols=list(trader.symbols),
            has_exchange_credentials=trader.credential_id is not None,
            filter=TraderFilter(
                code=trader.filter_code,
                description=list(trader.filter_description),
                indicators=trader.filter_indicators,
            ),
            exit_filter=ExitFilter(code=trader.exit_filter_code),
            strategy=Strategy(
                instructions=trader.strategy_instructions,
                risk_management=RiskManagement(
                    stop_loss=trader.stop_loss,
                    take_profit=trader.take_profit,
                    max_positions=trader.max_positions,
                    position_size_percent=trader.position_size_percent,
                    max_drawdown=trader.max_drawdown,
                    min_risk_reward=trader.min_risk_reward,
                    trailing_stop=trader.trailing_stop,
                    cooldown_candles=trader.cooldown_candles,
                    stop_loss_guard=trader.stop_loss_guard,
                    stop_loss_guard_candles=trader.stop_loss_guard_candles,
                    review_candles=trader.review_candles,
                ),
            ),
            created_at=trader.created_at,
            updated_at=trader.updated_at,
        )

    @strawberry.field(description="All modes together, with demoMetrics and liveMetrics inside")
    async def metrics(self, info: Info) -> Metrics:
        return Metrics.from_trader_metrics(
            await info.context.loaders.metrics.load(uuid.UUID(self.id))
        )

    @strawberry.field(description="The newest signals of this trader")
    async def signals(self, info: Info, first: int = 10) -> Connection[Signal]:
        check_first(first)
        rows = await info.context.loaders.latest_signals(first + 1).load(uuid.UUID(self.id))
        return page_of(rows, first, "created_at", Signal.from_model)

    @strawberry.field(description="The newest trades of this trader")
    async def trades(self, info: Info, first: int = 10) -> Connection[Trade]:
        check_first(first)
        rows = await info.context.loaders.latest_trades(first + 1).load(uuid.UUID(self.id))
        return page_of(rows, first, "opened_at", Trade.from_model)
