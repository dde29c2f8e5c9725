"""The `TradeExecutor` protocol: what every venue an order can go to offers.

The engine decides and records; an executor only talks to its venue. `place` sends an
order the store has already recorded as an intent under its client order id (invariant 2),
`cancel` and `fetch` find it by that id, and every answer is an `OrderReport`: the status at
the venue and all the fills it knows, each with a stable id, so that asking twice books
nothing twice. `fetch` returning None means the venue never received the order: after a
crash between intent and send that is how reconciliation tells "never sent" (send it, or
give it up) from "sent, and filled meanwhile" (book the fills).

`DemoTradeExecutor` (paper, `app.engine.executors.demo`) implements it now; the CCXT
executor for live trading implements the same protocol, so moving a trader from demo to
live changes its executor and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from app.domain.orders import Order, OrderReport


@dataclass(frozen=True, slots=True)
class Balance:
    """One currency of an account: what is free to trade, what orders hold, the total."""

    currency: str
    free: Decimal
    used: Decimal
    total: Decimal


@runtime_checkable
class TradeExecutor(Protocol):
    async def place(self, order: Order) -> OrderReport:
        """Send a market, limit, stop-market or stop-limit order (`order.type`)."""
        ...

    async def cancel(self, order: Order) -> OrderReport:
        """Cancel a resting order; its report keeps the fills that came before."""
        ...

    async def fetch(self, order: Order) -> OrderReport | None:
        """The order as the venue has it now; None when the venue never received it."""
        ...

    async def balances(self) -> dict[str, Balance]: ...


class ExecutorError(RuntimeError):
    """The venue could not be reached or did not answer; the order's state is unknown
    until `fetch` tells (never assume it was not sent)."""
