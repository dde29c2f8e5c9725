"""Round trips booked through a `TradeStore` exactly as the order manager books them: an
entry intent, its fill, an exit intent, its fill, each a report of the executor."""

from __future__ import annotations

import uuid
from decimal import Decimal

from app.domain.enums import (
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
)
from app.domain.orders import Fill, Order, OrderReport, entry_order_id, exit_order_id
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.ports import TradeStore

FEE_RATE = Decimal("0.001")


def _order(trade: Trade, purpose: OrderPurpose, coid: str, amount: Decimal, time: int) -> Order:
    return Order(
        id=uuid.uuid4(),
        client_order_id=coid,
        trader_id=trade.trader_id,
        owner_id=trade.owner_id,
        trade_id=trade.id,
        mode=trade.mode,
        purpose=purpose,
        symbol=trade.symbol,
        side=OrderSide.BUY if purpose == OrderPurpose.ENTRY else OrderSide.SELL,
        type=OrderType.MARKET,
        amount=amount,
        created_at=time,
        exit_reason=None if purpose == OrderPurpose.ENTRY else ExitReason.MANUAL,
    )


async def _filled(
    store: TradeStore, order: Order, price: Decimal, time: int, fee_rate: Decimal
) -> Trade:
    fee = (order.amount * price * fee_rate).quantize(Decimal("0.00000001"))
    fill = Fill(
        f"{order.client_order_id}-0", order.id, order.amount, price, fee, Liquidity.TAKER, time
    )
    booked = await store.record(order, OrderReport(OrderStatus.CLOSED, (fill,)), time)
    assert booked is not None and booked.fills == (fill,)
    return booked.trade


async def open_trade(
    store: TradeStore,
    spec: TraderSpec,
    symbol: str,
    amount: Decimal,
    price: Decimal,
    time: int,
    fee_rate: Decimal = FEE_RATE,
) -> Trade:
    trade = Trade(uuid.uuid4(), spec.id, spec.owner_id, spec.mode, symbol, time)
    order = _order(trade, OrderPurpose.ENTRY, entry_order_id(uuid.uuid4()), amount, time)
    assert await store.begin_entries([(trade, order)]) == {trade.id}
    return await _filled(store, order, price, time, fee_rate)


async def close_trade(
    store: TradeStore, trade: Trade, price: Decimal, time: int, fee_rate: Decimal = FEE_RATE
) -> Trade:
    coid = exit_order_id(trade.id, trade.exit_attempts + 1)
    order = _order(trade, OrderPurpose.EXIT, coid, trade.held, time)
    assert await store.begin_exits([(trade, order)]) == {trade.id}
    return await _filled(store, order, price, time, fee_rate)
