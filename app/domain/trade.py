"""A trade: one position from its entry order to its exit, and what one fill does to it.

A trade is created with its entry order (status `pending`), holds a position once the
entry fills (`open`), and is `closed` when its exit has sold all of it (or `cancelled` when
its entry never filled). `book_fill` is the one piece of bookkeeping every store runs for
every fill, in memory or in the database: the order's filled amount and average, the
trade's entry or exit totals, and the trader's ledger, all from the same fill, so they can
never disagree. A trade's P&L is what its exit brought in less what its entry cost, both
sides' fees included; its percentage is relative to the entry cost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from app.domain.enums import (
    ExitReason,
    OrderPurpose,
    OrderStatus,
    Side,
    TradeStatus,
    TradingMode,
)
from app.domain.ledger import MONEY_QUANTUM, Ledger, LedgerError
from app.domain.metrics import Performance
from app.domain.orders import Fill, Order, OrderReport

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PERCENT_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Trade:
    id: uuid.UUID
    trader_id: uuid.UUID
    owner_id: int
    mode: TradingMode
    symbol: str
    opened_at: int
    signal_id: uuid.UUID | None = None
    side: Side = Side.LONG
    status: TradeStatus = TradeStatus.PENDING
    amount: Decimal = ZERO
    entry_price: Decimal | None = None
    entry_cost: Decimal = ZERO
    entry_fee: Decimal = ZERO
    exit_amount: Decimal = ZERO
    exit_price: Decimal | None = None
    exit_proceeds: Decimal = ZERO
    exit_fee: Decimal = ZERO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    highest_price: Decimal | None = None
    pnl: Decimal | None = None
    pnl_percent: Decimal | None = None
    exit_reason: ExitReason | None = None
    exit_attempts: int = 0
    closed_at: int | None = None

    @property
    def held(self) -> Decimal:
        return self.amount - self.exit_amount

    @property
    def active(self) -> bool:
        return self.status in (TradeStatus.PENDING, TradeStatus.OPEN)


def _average(total: Decimal, amount: Decimal) -> Decimal:
    return (total / amount).quantize(MONEY_QUANTUM)


def _order_after(order: Order, fill: Fill) -> Order:
    filled = order.filled + fill.amount
    average = _average((order.average or ZERO) * order.filled + fill.notional, filled)
    status = OrderStatus.CLOSED if filled >= order.amount else OrderStatus.OPEN
    return replace(
        order,
        filled=filled,
        average=average,
        fee=order.fee + fill.fee,
        status=status,
        updated_at=fill.time,
    )


def _entry_after(trade: Trade, fill: Fill) -> Trade:
    amount = trade.amount + fill.amount
    cost = trade.entry_cost + fill.notional
    return replace(
        trade,
        status=TradeStatus.OPEN,
        amount=amount,
        entry_cost=cost,
        entry_fee=trade.entry_fee + fill.fee,
        entry_price=_average(cost, amount),
        highest_price=max(trade.highest_price or fill.price, fill.price),
    )


def _exit_after(trade: Trade, fill: Fill, reason: ExitReason | None) -> Trade:
    sold = trade.exit_amount + fill.amount
    proceeds = trade.exit_proceeds + fill.notional
    trade = replace(
        trade,
        exit_amount=sold,
        exit_proceeds=proceeds,
        exit_fee=trade.exit_fee + fill.fee,
        exit_price=_average(proceeds, sold),
        exit_reason=reason or trade.exit_reason,
    )
    if trade.held > 0:
        return trade
    pnl = trade.exit_proceeds - trade.entry_cost - trade.entry_fee - trade.exit_fee
    return replace(
        trade,
        status=TradeStatus.CLOSED,
        closed_at=fill.time,
        pnl=pnl,
        pnl_percent=(pnl / trade.entry_cost * HUNDRED).quantize(PERCENT_QUANTUM),
    )


def book_fill(
    order: Order, trade: Trade, ledger: Ledger, fill: Fill
) -> tuple[Order, Trade, Ledger]:
    """The order, trade and ledger after `fill` of `order`; `LedgerError` when the ledger
    cannot take it (then nothing changed)."""
    if order.purpose == OrderPurpose.ENTRY:
        ledger = ledger.buy(trade.symbol, fill.amount, fill.price, fill.fee)
        trade = _entry_after(trade, fill)
    else:
        ledger, _ = ledger.sell(trade.symbol, fill.amount, fill.price, fill.fee)
        trade = _exit_after(trade, fill, order.exit_reason)
    return _order_after(order, fill), trade, ledger


@dataclass(frozen=True, slots=True)
class ReportBooking:
    """The booking of one executor report: everything it changes, and what that means for
    the trade."""

    order: Order
    trade: Trade
    ledger: Ledger
    performance: Performance
    fills: tuple[Fill, ...]
    opened: bool = False
    closed: bool = False
    ended: bool = False


def book_report(
    order: Order,
    trade: Trade,
    ledger: Ledger,
    performance: Performance,
    report: OrderReport,
    booked: frozenset[str],
    now: int,
) -> ReportBooking:
    """Book the fills of `report` that are not in `booked` (fill ids), then its status.

    When a fill is more than the ledger can take (`LedgerError`), none of the report is
    booked and the order is rejected instead, with the ledger's reason.
    """
    new = tuple(fill for fill in report.fills if fill.id not in booked)
    try:
        order, trade, ledger, performance, opened, closed = _book_fills(
            order, trade, ledger, performance, new
        )
    except LedgerError as exc:
        new, opened, closed = (), False, False
        report = OrderReport(OrderStatus.REJECTED, reason=f"the ledger refused it: {exc}")
    ended = False
    if order.status != OrderStatus.CLOSED:
        if report.status in (OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
            order = order.with_status(report.status, now, report.reason)
            trade, ended = after_order_ended(order, trade, now), True
        elif report.status in (OrderStatus.OPEN, OrderStatus.CLOSED):
            order = order.with_status(OrderStatus.OPEN, now)
    if report.exchange_order_id and order.exchange_order_id is None:
        order = replace(order, exchange_order_id=report.exchange_order_id)
    return ReportBooking(order, trade, ledger, performance, new, opened, closed, ended)


def _book_fills(
    order: Order, trade: Trade, ledger: Ledger, performance: Performance, fills: tuple[Fill, ...]
) -> tuple[Order, Trade, Ledger, Performance, bool, bool]:
    """The order, trade, ledger and performance after `fills`, and whether they opened or
    closed the position; `LedgerError` when the ledger cannot take one."""
    opened = closed = False
    for fill in fills:
        was_open = trade.status == TradeStatus.OPEN
        order, trade, ledger = book_fill(order, trade, ledger, fill)
        performance = performance.after_fee(fill.fee, fill.time)
        if trade.status == TradeStatus.OPEN and not was_open:
            performance, opened = performance.after_open(fill.time), True
        if trade.status == TradeStatus.CLOSED:
            assert trade.pnl is not None
            performance = performance.after_close(trade.pnl, trade.entry_cost, fill.time)
            closed = True
    return order, trade, ledger, performance, opened, closed


def after_order_ended(order: Order, trade: Trade, now: int) -> Trade:
    """The trade after its order ended (cancelled, rejected, expired) with nothing more to
    fill: an entry that never filled cancels its trade; a partly filled entry keeps what it
    holds; an exit leaves the position open for another attempt."""
    if order.purpose == OrderPurpose.ENTRY and trade.amount == 0:
        return replace(trade, status=TradeStatus.CANCELLED, closed_at=now)
    return trade
