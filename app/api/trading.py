"""Trading over GraphQL: performance and equity curves, orders, the audit log, and manual
control (close a position, cancel an order, the emergency stop).

Every field is scoped to the caller: another user's trader, trade or order is "not found".
The mutations go through `app.services.trading.TradingControl`, the same order path as the
engine's stages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.pagination import Connection, paginate
from app.api.types import Info, Metrics, Order, OrderStatus, Trade, Trader, TradingMode
from app.db import models
from app.services import reads
from app.services.trading import TradingControl

MAX_POINTS = 5000


@strawberry.type
class EquityPoint:
    time: datetime
    equity: Decimal


@strawberry.type(description="A trader's figures and equity curve in one mode")
class TraderPerformance:
    trader_id: strawberry.ID
    mode: TradingMode
    metrics: Metrics
    equity_curve: list[EquityPoint] = strawberry.field(
        description="equity at each candle close of the trader's interval, oldest first"
    )


@strawberry.type(description="One order action, as the append-only audit log keeps it")
class AuditEntry:
    id: strawberry.ID
    trader_id: strawberry.ID
    action: str
    client_order_id: str | None
    details: JSON
    created_at: datetime

    @classmethod
    def from_model(cls, row: object) -> AuditEntry:
        assert isinstance(row, models.TradeAuditLog)
        return cls(
            id=strawberry.ID(str(row.id)),
            trader_id=strawberry.ID(str(row.trader_id)),
            action=row.action,
            client_order_id=row.client_order_id,
            details=row.details,
            created_at=row.created_at,
        )


@strawberry.type
class EmergencyStopResult:
    traders: list[Trader] = strawberry.field(description="disabled, status PAUSED")
    orders_cancelled: int
    positions_closed: int = strawberry.field(description="closed at market now")
    closes_requested: int = strawberry.field(
        description="asked of the engine when it runs in another process"
    )


def _control(info: Info) -> TradingControl:
    return TradingControl(info.context.runtime.bus, info.context.runtime.desk)


async def _trader_id(info: Info, trader_id: strawberry.ID) -> uuid.UUID:
    return (await info.context.traders.get(info.context.require_user(), trader_id)).id


@strawberry.type
class TradingQuery:
    @strawberry.field(description="A trader's metrics and equity curve in one mode")
    async def trader_performance(
        self,
        info: Info,
        trader_id: strawberry.ID,
        mode: TradingMode = TradingMode.DEMO,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        points: Annotated[
            int, strawberry.argument(description=f"at most this many, up to {MAX_POINTS}")
        ] = 1000,
    ) -> TraderPerformance:
        owned = await _trader_id(info, trader_id)
        metrics = await info.context.loaders.metrics.load(owned)
        curve = await reads.equity_curve(owned, mode, from_, to, max(1, min(points, MAX_POINTS)))
        return TraderPerformance(
            trader_id=strawberry.ID(str(owned)),
            mode=mode,
            metrics=Metrics.from_domain(metrics.by_mode[mode]),
            equity_curve=[EquityPoint(time=time, equity=equity) for time, equity in curve],
        )

    @strawberry.field(description="Orders of one trader, or of all the caller's traders")
    async def orders(
        self,
        info: Info,
        trader_id: strawberry.ID | None = None,
        status: OrderStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Order]:
        query = models.Order.filter(trader__owner_id=info.context.require_user().id)
        if trader_id is not None:
            query = query.filter(trader_id=await _trader_id(info, trader_id))
        if status is not None:
            query = query.filter(status=status)
        return await paginate(query, "created_at", first, after, Order.from_model)

    @strawberry.field(description="The audit log of one trader's order actions, newest first")
    async def audit_log(
        self, info: Info, trader_id: strawberry.ID, first: int = 50, after: str | None = None
    ) -> Connection[AuditEntry]:
        query = models.TradeAuditLog.filter(
            trader_id=await _trader_id(info, trader_id), owner_id=info.context.require_user().id
        )
        return await paginate(query, "created_at", first, after, AuditEntry.from_model)


@strawberry.type
class TradingMutation:
    @strawberry.mutation(description="Close an open position at market (exit reason manual)")
    async def close_position(self, info: Info, trade_id: strawberry.ID) -> Trade:
        closed = await _control(info).close_position(info.context.require_user(), trade_id)
        return Trade.from_model(await models.Trade.get(id=closed))

    @strawberry.mutation(description="Cancel an open order; what it filled stays")
    async def cancel_order(self, info: Info, order_id: strawberry.ID) -> Order:
        cancelled = await _control(info).cancel_order(info.context.require_user(), order_id)
        return Order.from_model(await models.Order.get(id=cancelled))

    @strawberry.mutation(
        description="Disable the trader (all of the caller's when omitted), cancel its open "
        "orders and close its positions at market; every action is in the audit log"
    )
    async def emergency_stop(
        self, info: Info, trader_id: strawberry.ID | None = None
    ) -> EmergencyStopResult:
        report = await _control(info).emergency_stop(info.context.require_user(), trader_id)
        rows = await models.Trader.filter(id__in=report.traders).order_by("created_at", "id")
        return EmergencyStopResult(
            traders=[Trader.from_model(row) for row in rows],
            orders_cancelled=report.orders_cancelled,
            positions_closed=report.positions_closed,
            closes_requested=report.closes_requested,
        )
