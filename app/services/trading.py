"""Manual control of a user's positions and orders, and the emergency stop.

`closePosition`, `cancelOrder` and `emergencyStop` take the same path to an order as the
engine's own stages: the trading desk's `OrderManager`, with its intent before send, its
lock per trader and its audit entries, so a manual close and a stop loss racing for one
position close it once. When the engine runs in another process (`TRADERS_ENGINE=off`)
this process has no market to trade on: a close is then asked of the engine, recorded on
the trade, and carried out at its next look (the position monitor, within its poll
interval).

The emergency stop works while the engine is busy, because it needs nothing from it but
the desk: it first disables the traders (so no stage enters again: an entry is recorded
only for an enabled trader), then cancels every open order and closes every open position
at market, all at once, and repeats until nothing is left (an entry that was
in flight when the traders were disabled is closed on the next round). Each action is in
the audit log.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from app.core.events import EventBus
from app.db import models
from app.domain.enums import ExitReason, OrderStatus, TradeStatus
from app.domain.orders import Order
from app.domain.trade import Trade
from app.domain.trader_rules import FieldError
from app.engine.audit import trader_entry
from app.engine.clock import Clock, RealtimeClock
from app.engine.desk import TradingDesk
from app.engine.ports import TradeStore
from app.services.errors import InvalidInputError, NotFoundError
from app.services.market import ENGINE_ELSEWHERE, EngineUnavailableError
from app.services.repositories.trading import DbTradeStore
from app.services.traders import TraderManager, parse_id

EMERGENCY = "emergency stop"
ROUNDS = 5
NOT_FINAL = (OrderStatus.INTENT, OrderStatus.OPEN)


@dataclass(slots=True)
class StopReport:
    traders: list[uuid.UUID] = field(default_factory=list)
    orders_cancelled: int = 0
    positions_closed: int = 0
    closes_requested: int = 0


class TradingControl:
    def __init__(self, bus: EventBus, desk: TradingDesk | None, clock: Clock | None = None):
        self.desk = desk
        self.traders = TraderManager(bus)
        self.store: TradeStore = desk.store if desk is not None else DbTradeStore()
        self.clock = clock or RealtimeClock()

    async def _owned_trade(self, owner: models.User, trade_id: str) -> Trade:
        row = await models.Trade.get_or_none(
            id=parse_id(trade_id, "trade"), trader__owner_id=owner.id
        )
        trade = None if row is None else await self.store.trade(row.id)
        if trade is None:
            raise NotFoundError("trade")
        return trade

    async def close_position(self, owner: models.User, trade_id: str) -> uuid.UUID:
        """Close an open position at market (`manual`); the trade's id."""
        trade = await self._owned_trade(owner, trade_id)
        if trade.status != TradeStatus.OPEN:
            raise InvalidInputError(
                [FieldError("tradeId", f"the trade is {trade.status.value}, not open")]
            )
        if self.desk is None:
            await self._request_close(trade, ExitReason.MANUAL)
        elif await self.desk.orders.close(trade, ExitReason.MANUAL, note="closePosition") is None:
            raise InvalidInputError([FieldError("tradeId", "the trade is already being closed")])
        return trade.id

    async def cancel_order(self, owner: models.User, order_id: str) -> uuid.UUID:
        """Cancel an open order (its fills so far stay); the order's id."""
        owned = await models.Order.filter(
            id=parse_id(order_id, "order"), trader__owner_id=owner.id
        ).exists()
        order = await self.store.order(parse_id(order_id, "order")) if owned else None
        if order is None:
            raise NotFoundError("order")
        if order.final:
            raise InvalidInputError(
                [FieldError("orderId", f"the order is {order.status.value}, not open")]
            )
        if self.desk is None:
            raise EngineUnavailableError(ENGINE_ELSEWHERE)
        await self.desk.orders.cancel(order)
        return order.id

    async def _request_close(self, trade: Trade, reason: ExitReason) -> bool:
        asked = await self.store.request_close(trade.id, reason.value)
        if asked:
            entry = trader_entry(
                trade.owner_id,
                trade.trader_id,
                "close_requested",
                self.clock.now(),
                trade_id=str(trade.id),
                reason=reason.value,
            )
            await self.store.audit(entry)
        return asked

    async def emergency_stop(self, owner: models.User, trader_id: str | None = None) -> StopReport:
        """Disable the trader (all of the owner's when None), cancel its orders, close its
        positions at market."""
        if trader_id is not None:
            ids = [(await self.traders.get(owner, trader_id)).id]
        else:
            rows = await models.Trader.filter(owner_id=owner.id).values_list("id", flat=True)
            ids = [uuid.UUID(str(row)) for row in rows]
        report = StopReport(traders=ids)
        await asyncio.gather(*(self._disable(owner, trader) for trader in ids))
        await asyncio.gather(*(self._unwind(trader, report) for trader in ids))
        return report

    async def _disable(self, owner: models.User, trader_id: uuid.UUID) -> None:
        await self.traders.pause(trader_id, EMERGENCY)
        entry = trader_entry(
            owner.id, trader_id, "trader_disabled", self.clock.now(), reason=EMERGENCY
        )
        await self.store.audit(entry)

    async def _unwind(self, trader_id: uuid.UUID, report: StopReport) -> None:
        for _ in range(ROUNDS):
            orders = await self.store.orders(NOT_FINAL, [trader_id])
            trades = [
                t
                for t in await self.store.active_trades([trader_id])
                if t.status == TradeStatus.OPEN
            ]
            # Results are awaited before the report is touched: the traders unwind
            # concurrently, and `x += await ...` would read x before the await.
            if self.desk is None:
                for trade in trades:
                    asked = await self._request_close(trade, ExitReason.EMERGENCY)
                    report.closes_requested += asked
                return
            if not orders and not trades:
                return
            cancelled = await asyncio.gather(*(self._cancel(order) for order in orders))
            closed = await asyncio.gather(*(self._close(trade) for trade in trades))
            report.orders_cancelled += sum(cancelled)
            report.positions_closed += sum(closed)

    async def _close(self, trade: Trade) -> bool:
        assert self.desk is not None
        booked = await self.desk.orders.close(trade, ExitReason.EMERGENCY, note=EMERGENCY)
        return booked is not None and booked.closed

    async def _cancel(self, order: Order) -> bool:
        assert self.desk is not None
        booked = await self.desk.orders.cancel(order)
        return booked is not None and booked.order.status == OrderStatus.CANCELED
