"""Closed vocabularies shared by every layer: the values the database stores and the API shows."""

from enum import StrEnum


class TradingMode(StrEnum):
    DEMO = "demo"
    LIVE = "live"


class TraderStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    ERROR = "error"


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class SignalStatus(StrEnum):
    """Lifecycle of a signal: `new` until analyzed, `watching` while monitored, then final."""

    NEW = "new"
    WATCHING = "watching"
    ENTERED = "entered"
    REJECTED = "rejected"
    EXPIRED = "expired"


ACTIVE_SIGNAL_STATUSES = frozenset({SignalStatus.NEW, SignalStatus.WATCHING})


class TradeStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"


class OrderStatus(StrEnum):
    """`intent` is recorded before the order is sent, so a crash never forgets an order."""

    INTENT = "intent"
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
