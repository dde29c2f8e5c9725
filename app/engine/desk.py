"""The trading desk of one engine process: where its trades are kept, the one way orders
are sent, and the market they meet. The stages trade through it, and so does the API when
the engine runs in its process (`closePosition`, `cancelOrder`, the emergency stop), so a
manual action and a stop loss never take different paths to an order.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.orders import OrderManager
from app.engine.ports import Notifier, Quotes, TradeStore


@dataclass(frozen=True, slots=True)
class TradingDesk:
    store: TradeStore
    orders: OrderManager
    quotes: Quotes
    notifier: Notifier
