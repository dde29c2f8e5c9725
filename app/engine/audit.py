"""What the append-only audit log says of each order action (invariant 6).

Every store appends these entries in the same transaction as the change they describe, so
the log never misses an action that happened nor records one that did not: an order's
intent before it is sent, each fill, each end (cancelled, rejected, expired), and the
trader-level actions of an emergency stop or a drawdown pause. Entries carry plain ids,
never foreign keys, so deleting a trader cannot rewrite its history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.orders import Order
from app.domain.trade import ReportBooking


@dataclass(frozen=True, slots=True)
class AuditEntry:
    owner_id: int
    trader_id: uuid.UUID
    action: str
    time: int
    client_order_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def _order_details(order: Order) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "trade_id": str(order.trade_id),
        "mode": order.mode.value,
        "purpose": order.purpose.value,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "amount": str(order.amount),
        "price": None if order.price is None else str(order.price),
        "stop_price": None if order.stop_price is None else str(order.stop_price),
        "exit_reason": None if order.exit_reason is None else order.exit_reason.value,
    }


def intent_entry(order: Order) -> AuditEntry:
    return AuditEntry(
        order.owner_id,
        order.trader_id,
        "order_intent",
        order.created_at,
        order.client_order_id,
        _order_details(order),
    )


def report_entries(before: Order, done: ReportBooking) -> list[AuditEntry]:
    """One entry per fill booked, and one when the order's status changed."""
    order = done.order
    entries = [
        AuditEntry(
            order.owner_id,
            order.trader_id,
            "order_fill",
            fill.time,
            order.client_order_id,
            {
                "order_id": str(order.id),
                "fill_id": fill.id,
                "amount": str(fill.amount),
                "price": str(fill.price),
                "expected_price": None if fill.expected_price is None else str(fill.expected_price),
                "fee": str(fill.fee),
                "liquidity": fill.liquidity.value,
            },
        )
        for fill in done.fills
    ]
    if order.status != before.status:
        entries.append(
            AuditEntry(
                order.owner_id,
                order.trader_id,
                f"order_{order.status.value}",
                order.updated_at or before.created_at,
                order.client_order_id,
                {"order_id": str(order.id), "filled": str(order.filled), "reason": order.reason},
            )
        )
    return entries


def trader_entry(
    owner_id: int, trader_id: uuid.UUID, action: str, time: int, **details: Any
) -> AuditEntry:
    return AuditEntry(owner_id, trader_id, action, time, None, details)
