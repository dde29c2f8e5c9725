"""Orders and fills as every executor and store sees them: frozen values, live or on paper.

An order is named by its client order id before anything is sent (invariant 2): the id is
derived from what the order is for (the entry of one signal, the n-th exit attempt of one
trade), so an engine that crashed and retries the same work produces the same id, the store
refuses a second intent under it, and an exchange refuses a second order. `Fill` is one
execution of an order, with the price the engine expected beside the price it got, so
slippage is on record for every fill. Times are the engine clock's, epoch ms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from app.domain.enums import (
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    TradingMode,
)

ZERO = Decimal(0)
FINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
# Binance allows 36 characters from [.A-Z:/a-z0-9_-]; every id below fits.
CLIENT_ORDER_ID_LENGTH = 36


def entry_order_id(signal_id: uuid.UUID) -> str:
    """One entry per signal, whoever retries it."""
    return f"e-{signal_id.hex}"


def exit_order_id(trade_id: uuid.UUID, attempt: int) -> str:
    """The `attempt`-th exit of a trade (a new attempt after a rejected or expired one)."""
    return f"x{attempt}-{trade_id.hex}"[:CLIENT_ORDER_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class Order:
    id: uuid.UUID
    client_order_id: str
    trader_id: uuid.UUID
    owner_id: int
    trade_id: uuid.UUID
    mode: TradingMode
    purpose: OrderPurpose
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    created_at: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    expected_price: Decimal | None = None
    status: OrderStatus = OrderStatus.INTENT
    filled: Decimal = ZERO
    average: Decimal | None = None
    fee: Decimal = ZERO
    exit_reason: ExitReason | None = None
    expires_at: int | None = None
    exchange_order_id: str | None = None
    reason: str | None = None
    updated_at: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_ORDER_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def with_status(self, status: OrderStatus, now: int, reason: str | None = None) -> Order:
        return replace(self, status=status, updated_at=now, reason=reason or self.reason)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: `amount` at `price`, the fee in the quote currency."""

    id: str
    order_id: uuid.UUID
    amount: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    time: int
    expected_price: Decimal | None = None

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What an executor says of an order: its status there and every fill it knows of
    (each with a stable id, so a store books a fill once however often it is reported)."""

    status: OrderStatus
    fills: tuple[Fill, ...] = ()
    exchange_order_id: str | None = None
    reason: str | None = None

    def changes(self, order: Order) -> bool:
        """Whether booking this report could change `order` as recorded: a fill (booked or
        not: only the store knows), another status, or a first venue id. A resting order
        that nothing happened to is asked about at every price update; this spares its
        booking."""
        return (
            bool(self.fills)
            or self.status != order.status
            or self.exchange_order_id not in (None, order.exchange_order_id)
        )
