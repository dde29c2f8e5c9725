"""A signal as the stages see it: a frozen value, the same whether it lives in the database
(live) or in memory (a backtest).

A screening match of one trader on one symbol at one candle becomes a `Signal` with status
`new`; its status is then the queue between the stages (see `SignalStatus`). Times are
epoch milliseconds from the engine's clock: `candle_time` is the open time of the candle the
filter matched on, `created_at` when the signal was recorded.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from app.domain.enums import ACTIVE_SIGNAL_STATUSES, Side, SignalStatus


@dataclass(frozen=True, slots=True)
class Signal:
    id: uuid.UUID
    trader_id: uuid.UUID
    owner_id: int
    symbol: str
    interval: str
    side: Side
    price: Decimal
    candle_time: int
    created_at: int
    score: float | None = None
    indicators: Mapping[str, Any] = field(default_factory=dict)
    status: SignalStatus = SignalStatus.NEW
    status_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_SIGNAL_STATUSES

    def with_status(self, status: SignalStatus, reason: str | None = None) -> Signal:
        return replace(self, status=status, status_reason=reason)

    @property
    def queue_order(self) -> tuple[int, str]:
        """Where the signal stands in a queue of them, oldest first: the stores' claim order
        (`created_at`, then the id)."""
        return self.created_at, self.id.hex


def price_of(value: float) -> Decimal:
    """A candle price (float) as the Decimal a signal records: its shortest exact repr,
    so `0.1` stays `0.1` and not the binary noise of `Decimal(0.1)`."""
    if not math.isfinite(value):
        raise ValueError(f"a signal price must be finite, got {value}")
    return Decimal(repr(float(value)))
