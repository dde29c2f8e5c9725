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
from app.api.pagination import Connection, check_first, page_of
from app.db import models
from app.domain import enums
from app.domain.metrics import Metrics as DomainMetrics
from app.services.reads import TraderMetrics

TradingMode = strawberry.enum(enums.TradingMode, description="demo is paper money, live is real")
TraderStatus = strawberry.enum(enums.TraderStatus)
Side = strawberry.enum(enums.Side)
SignalStatus = strawberry.enum(enums.SignalStatus)
TradeStatus = strawberry.enum(enums.TradeStatus)

Info = strawberry.Info[Context, None]


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(id=strawberry.ID(str(user.id)), name=user.name, created_at=user.created_at)


@strawberry.type(description="Performance figures; percentages are 0-100")
class Metrics:
    total_signals: int
    active_positions: int
    closed_positions: int
    total_pnl: Decimal = strawberry.field(name="totalPnL")
    total_pnl_percent: Decimal = strawberry.field(name="totalPnLPercent")
    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    last_signal_at: datetime | None
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
        )

    @classmethod
    def from_trader_metrics(cls, metrics: TraderMetrics) -> Metrics:
        overall = cls.from_domain(metrics.overall)
        overall.demo_metrics = cls.from_domain(metrics.by_mode[enums.TradingMode.DEMO])
        overall.live_metrics = cls.from_domain(metrics.by_mode[enums.TradingMode.LIVE])
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


@strawberry.type
class Strategy:
    instructions: str
    risk_management: RiskManagement


@strawberry.type
class TraderFilter:
    code: str
    description: list[str]
    indicators: JSON


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
            trader_id=strawberry.ID(str(signal.trader_id)),  # type: ignore[attr-defined]
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
        return [SignalTransition.from_model(row) for row in rows]


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
    entry_price: Decimal
    exit_price: Decimal | None
    entry_fee: Decimal
    exit_fee: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    pnl: Decimal | None
    pnl_percent: Decimal | None
    exit_reason: str | None
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_model(cls, trade: object) -> Trade:
        assert isinstance(trade, models.Trade)
        signal_id = trade.signal_id  # type: ignore[attr-defined]
        return cls(
            id=strawberry.ID(str(trade.id)),
            trader_id=strawberry.ID(str(trade.trader_id)),  # type: ignore[attr-defined]
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
            stop_loss=trade.stop_loss,
            take_profit=trade.take_profit,
            pnl=trade.pnl,
            pnl_percent=trade.pnl_percent,
            exit_reason=trade.exit_reason,
            opened_at=trade.opened_at,
            closed_at=trade.closed_at,
        )


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
            has_exchange_credentials=trader.credential_id is not None,  # type: ignore[attr-defined]
            filter=TraderFilter(
                code=trader.filter_code,
                description=list(trader.filter_description),
                indicators=trader.filter_indicators,
            ),
            strategy=Strategy(
                instructions=trader.strategy_instructions,
                risk_management=RiskManagement(
                    stop_loss=trader.stop_loss,
                    take_profit=trader.take_profit,
                    max_positions=trader.max_positions,
                    position_size_percent=trader.position_size_percent,
                    max_drawdown=trader.max_drawdown,
                    min_risk_reward=trader.min_risk_reward,
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
