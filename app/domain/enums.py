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
    """Lifecycle of a signal, and the queue between the stages: `new` waits for the
    analyzer, `watching` for the signal monitor's next candle, `ready` for the trade stage;
    the others are final."""

    NEW = "new"
    WATCHING = "watching"
    READY = "ready"
    ENTERED = "entered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# A trader holds at most one signal in these statuses per symbol; the database enforces it
# (the partial unique index `signals_one_active`, whose condition lists these values).
ACTIVE_SIGNAL_STATUSES = frozenset({SignalStatus.NEW, SignalStatus.WATCHING, SignalStatus.READY})


class TradeStatus(StrEnum):
    """`pending` until the entry order fills, `open` while a position is held, `closed` once
    it is sold; `cancelled` when the entry never filled (no position was ever held)."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ExitReason(StrEnum):
    """Why a position was closed."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    EXIT_SIGNAL = "exit_signal"
    ANALYSIS = "analysis"
    MANUAL = "manual"
    EMERGENCY = "emergency"
    DRAWDOWN = "drawdown"


class OrderPurpose(StrEnum):
    """What an order is for: opening its trade's position or closing it."""

    ENTRY = "entry"
    EXIT = "exit"


class Liquidity(StrEnum):
    """Whether a fill took liquidity from the book (taker fee) or rested in it (maker fee)."""

    MAKER = "maker"
    TAKER = "taker"


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


class BacktestAnalysis(StrEnum):
    """What analyzes a backtest's signals: the offline rule engine, or none (`filter`: the
    trader's filter alone decides, every signal entered, as `TRADERS_ANALYSIS_ENGINE=filter`
    runs live)."""

    RULES = "rules"
    FILTER = "filter"


class BacktestStatus(StrEnum):
    """Lifecycle of a backtest run: `queued` and `running` are live, the others final."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_BACKTEST_STATUSES = frozenset(
    {BacktestStatus.DONE, BacktestStatus.FAILED, BacktestStatus.CANCELLED}
)
