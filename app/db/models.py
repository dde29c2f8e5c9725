"""Tortoise models: the database is the source of truth for every trader, signal and order.

Money and quantities are `DecimalField`s (invariant 1). Columns that queries filter by are
indexed. Deleting a user or trader cascades to what it owns, except the audit log, which is
append-only and keeps plain ids rather than foreign keys so that no delete can rewrite it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.timezone import get_default_timezone, get_use_tz

from app.domain.decision import AnalysisEngineKind, DecisionAction
from app.domain.decision_quality import Outcome
from app.domain.enums import (
    BacktestStatus,
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
    SignalStatus,
    TraderStatus,
    TradeStatus,
    TradingMode,
)
from app.domain.llm import CallOutcome, Purpose


def money(**kwargs: Any) -> fields.DecimalField:
    """Prices, amounts and P&L: room for BTC-quoted prices of 1e-8 and six-figure USDT sums."""
    return fields.DecimalField(max_digits=36, decimal_places=18, **kwargs)


def percent(**kwargs: Any) -> fields.DecimalField:
    return fields.DecimalField(max_digits=12, decimal_places=4, **kwargs)


class DatetimeField(fields.DatetimeField):
    """Tortoise's `DatetimeField`, the same column, decoded faster from SQLite's text.

    SQLite hands a datetime back as its ISO text; Tortoise parses it with `iso8601` (9 us a
    value, the largest share of reading rows: thousands of timestamps at every close),
    where `datetime.fromisoformat` takes 0.13 us and gives the same moment. Anything else
    (asyncpg's datetimes, text `fromisoformat` does not read) goes Tortoise's way. The
    migrations record Tortoise's own field: the schema is the same."""

    def to_python_value(self, value: Any) -> datetime | None:
        if isinstance(value, str) and get_use_tz():
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return super().to_python_value(value)
            zone = get_default_timezone()
            return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
        return super().to_python_value(value)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        _, args, kwargs = super().deconstruct()
        return "tortoise.fields.data.DatetimeField", args, kwargs


class User(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    created_at = DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class ApiToken(Model):
    """Only the SHA-256 of a token is stored: a leaked database leaks no usable token."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=100, default="default")
    created_at = DatetimeField(auto_now_add=True)
    last_used_at = DatetimeField(null=True)
    revoked = fields.BooleanField(default=False)

    class Meta:
        table = "api_tokens"


class ExchangeCredential(Model):
    """Exchange keys, encrypted at rest. Only the executor decrypts them, at use."""

    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="credentials", on_delete=fields.CASCADE
    )
    owner_id: int
    exchange = fields.CharField(max_length=50)
    label = fields.CharField(max_length=100, default="")
    api_key_encrypted = fields.TextField()
    api_secret_encrypted = fields.TextField()
    passphrase_encrypted = fields.TextField(null=True)
    testnet = fields.BooleanField(default=True)
    created_at = DatetimeField(auto_now_add=True)

    class Meta:
        table = "exchange_credentials"


class Trader(Model):
    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="traders", on_delete=fields.CASCADE
    )
    owner_id: int
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    enabled = fields.BooleanField(default=False, db_index=True)
    mode = fields.CharEnumField(TradingMode, max_length=8, default=TradingMode.DEMO)
    credential: fields.ForeignKeyNullableRelation[ExchangeCredential] = fields.ForeignKeyField(
        "models.ExchangeCredential",
        related_name="traders",
        null=True,
        on_delete=fields.SET_NULL,
    )
    credential_id: uuid.UUID | None
    interval = fields.CharField(max_length=4, default="1h")
    symbols: Any = fields.JSONField(default=list)
    filter_code = fields.TextField(default="")
    filter_description: Any = fields.JSONField(default=list)
    filter_indicators: Any = fields.JSONField(default=list)
    strategy_instructions = fields.TextField(default="")
    stop_loss = percent(null=True)
    take_profit = percent(null=True)
    max_positions = fields.IntField(null=True)
    position_size_percent = percent(null=True)
    max_drawdown = percent(null=True)
    min_risk_reward = fields.DecimalField(max_digits=12, decimal_places=4, null=True)
    trailing_stop = percent(null=True)
    cooldown_candles = fields.IntField(null=True)
    stop_loss_guard = fields.IntField(null=True)
    stop_loss_guard_candles = fields.IntField(null=True)
    review_candles = fields.IntField(null=True)
    exit_filter_code = fields.TextField(default="")
    status = fields.CharEnumField(TraderStatus, max_length=8, default=TraderStatus.PAUSED)
    status_reason: str | None = fields.TextField(null=True)
    created_at = DatetimeField(auto_now_add=True)
    updated_at = DatetimeField(auto_now=True)

    class Meta:
        table = "traders"
        indexes = (("owner_id", "created_at"),)


class Signal(Model):
    """A trader's screening match, and through its status the queue between the stages.

    At most one signal per trader and symbol is active (new, watching or ready): the partial
    unique index signals_one_active (migration 0002) refuses a second one, whatever engine
    process tries. A stage claims a signal by writing lease_owner and lease_until (times
    from the engine's clock), so a crashed stage's claims run out and nothing is lost. A
    lease_until without an owner parks the signal: no stage takes it before then (a watched
    signal waits so for its next candle).
    """

    id = fields.UUIDField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="signals", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    symbol = fields.CharField(max_length=40)
    interval = fields.CharField(max_length=4)
    side = fields.CharEnumField(Side, max_length=8, default=Side.LONG)
    price = money()
    score = fields.FloatField(null=True)
    indicators: Any = fields.JSONField(default=dict)
    status = fields.CharEnumField(SignalStatus, max_length=10, default=SignalStatus.NEW)
    status_reason: str | None = fields.TextField(null=True)
    candle_time = DatetimeField()
    # Unused: analyses live in `decisions`. Kept because dropping a column on SQLite rebuilds
    # the table, and Tortoise's rebuild drops the table's indexes (signals_one_active among
    # them); a hand-written migration should drop it.
    analysis: Any = fields.JSONField(null=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = DatetimeField(null=True)
    created_at = DatetimeField(auto_now_add=True)
    updated_at = DatetimeField(auto_now=True)

    class Meta:
        table = "signals"
        indexes = (
            ("trader_id", "created_at"),
            ("trader_id", "symbol", "status"),
            ("status", "lease_until"),
        )


class SignalTransition(Model):
    """Every status change of a signal, with the engine clock's time and the reason."""

    id = fields.BigIntField(primary_key=True)
    signal: fields.ForeignKeyRelation[Signal] = fields.ForeignKeyField(
        "models.Signal", related_name="transitions", on_delete=fields.CASCADE
    )
    signal_id: uuid.UUID
    from_status = fields.CharEnumField(SignalStatus, max_length=10)
    to_status = fields.CharEnumField(SignalStatus, max_length=10)
    reason = fields.TextField(null=True)
    at = DatetimeField()

    class Meta:
        table = "signal_transitions"
        indexes = (("signal_id", "at"),)


class Decision(Model):
    """One analysis of a signal (app.domain.decision.Decision): its verdict and levels, the
    engine and model that gave it and what it cost, and once known its outcome on the
    candles that followed (app.domain.decision_quality). Take profits, supports and
    resistances are lists of decimal strings. outcome_check_at is when the outcome stage
    next looks at an unjudged decision (the next candle close of the signal's interval)."""

    id = fields.UUIDField(primary_key=True)
    signal: fields.ForeignKeyRelation[Signal] = fields.ForeignKeyField(
        "models.Signal", related_name="decisions", on_delete=fields.CASCADE
    )
    signal_id: uuid.UUID
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="decisions", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    action = fields.CharEnumField(DecisionAction, max_length=12)
    direction = fields.CharEnumField(Side, max_length=8)
    confidence = fields.FloatField()
    reasoning = fields.TextField()
    setup = fields.TextField(default="")
    invalidation = fields.TextField(default="")
    entry = money(null=True)
    stop_loss = money(null=True)
    take_profits: Any = fields.JSONField(default=list)
    supports: Any = fields.JSONField(default=list)
    resistances: Any = fields.JSONField(default=list)
    risk_reward = fields.DecimalField(max_digits=16, decimal_places=4, null=True)
    engine = fields.CharEnumField(AnalysisEngineKind, max_length=8)
    model = fields.CharField(max_length=100, null=True)
    schema_version = fields.IntField()
    prompt_hash = fields.CharField(max_length=64, null=True)
    input_tokens = fields.IntField(default=0)
    output_tokens = fields.IntField(default=0)
    latency_ms = fields.FloatField(default=0)
    fallback_reason = fields.TextField(null=True)
    invalid_reason = fields.TextField(null=True)
    repairs = fields.IntField(default=0)
    as_of = DatetimeField()
    created_at = DatetimeField()
    outcome = fields.CharEnumField(Outcome, max_length=10, null=True)
    outcome_at = DatetimeField(null=True)
    outcome_candles = fields.IntField(null=True)
    outcome_check_at = DatetimeField(null=True)

    class Meta:
        table = "decisions"
        indexes = (
            ("signal_id", "created_at"),
            ("trader_id", "created_at"),
            ("outcome_check_at",),
        )


class LlmCall(Model):
    """One attempt of one model request (app.domain.llm.LlmCall): the record of what was
    spent and how it ended; the daily token budget is summed from here."""

    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="llm_calls", on_delete=fields.CASCADE
    )
    owner_id: int
    trader_id = fields.UUIDField(null=True, db_index=True)
    signal_id = fields.UUIDField(null=True)
    purpose = fields.CharEnumField(Purpose, max_length=20)
    model = fields.CharField(max_length=100)
    prompt_hash = fields.CharField(max_length=64)
    attempt = fields.IntField()
    outcome = fields.CharEnumField(CallOutcome, max_length=16)
    error = fields.TextField(null=True)
    input_tokens = fields.IntField()
    output_tokens = fields.IntField()
    latency_ms = fields.FloatField()
    created_at = DatetimeField()

    class Meta:
        table = "llm_calls"
        indexes = (("owner_id", "created_at"),)


class LlmResponse(Model):
    """A model's answer kept by cache key (model, schema version, prompt hash), so the same
    request, repeated or replayed, is answered without a call."""

    key = fields.CharField(max_length=64, primary_key=True)
    model = fields.CharField(max_length=100)
    schema_version = fields.IntField()
    prompt_hash = fields.CharField(max_length=64)
    text = fields.TextField()
    input_tokens = fields.IntField()
    output_tokens = fields.IntField()
    created_at = DatetimeField()

    class Meta:
        table = "llm_responses"


class Trade(Model):
    """One position from its entry order to its exit (`app.domain.trade.Trade`).

    Times are the engine clock's. `exit_attempts` counts exit orders sent, so a second exit
    in flight is refused by a compare-and-set on it; `close_requested` is a close asked for
    by a process that cannot trade itself, carried out by the engine.
    """

    id = fields.UUIDField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="trades", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    signal: fields.ForeignKeyNullableRelation[Signal] = fields.ForeignKeyField(
        "models.Signal", related_name="trades", null=True, on_delete=fields.SET_NULL
    )
    signal_id: uuid.UUID | None
    mode = fields.CharEnumField(TradingMode, max_length=8)
    symbol = fields.CharField(max_length=40)
    side = fields.CharEnumField(Side, max_length=8)
    status = fields.CharEnumField(TradeStatus, max_length=10, default=TradeStatus.OPEN)
    amount = money()
    entry_price = money(null=True)
    entry_cost = money(default=0)
    exit_price = money(null=True)
    exit_amount = money(default=0)
    exit_proceeds = money(default=0)
    entry_fee = money(default=0)
    exit_fee = money(default=0)
    stop_loss = money(null=True)
    take_profit = money(null=True)
    trailing_stop = percent(null=True)
    highest_price = money(null=True)
    pnl = money(null=True)
    pnl_percent = percent(null=True)
    exit_reason = fields.CharEnumField(ExitReason, max_length=16, null=True)
    exit_attempts = fields.IntField(default=0)
    close_requested = fields.CharEnumField(ExitReason, max_length=16, null=True)
    opened_at = DatetimeField(auto_now_add=True)
    closed_at = DatetimeField(null=True)

    class Meta:
        table = "trades"
        indexes = (
            ("trader_id", "mode", "status"),
            ("trader_id", "opened_at"),
            ("status", "trader_id"),
        )


class Order(Model):
    """One order (`app.domain.orders.Order`). Its client order id is assigned and stored,
    status `intent`, before the order is sent; times are the engine clock's."""

    id = fields.UUIDField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="orders", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    trade: fields.ForeignKeyNullableRelation[Trade] = fields.ForeignKeyField(
        "models.Trade", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    trade_id: uuid.UUID | None
    mode = fields.CharEnumField(TradingMode, max_length=8)
    purpose = fields.CharEnumField(OrderPurpose, max_length=8, default=OrderPurpose.ENTRY)
    client_order_id = fields.CharField(max_length=64, unique=True)
    exchange_order_id = fields.CharField(max_length=128, null=True, db_index=True)
    symbol = fields.CharField(max_length=40)
    type = fields.CharEnumField(OrderType, max_length=12)
    side = fields.CharEnumField(OrderSide, max_length=4)
    price = money(null=True)
    stop_price = money(null=True)
    expected_price = money(null=True)
    amount = money()
    filled = money(default=0)
    average = money(null=True)
    fee = money(default=0)
    fee_currency = fields.CharField(max_length=16, null=True)
    status = fields.CharEnumField(OrderStatus, max_length=10, default=OrderStatus.INTENT)
    exit_reason = fields.CharEnumField(ExitReason, max_length=16, null=True)
    reason = fields.TextField(null=True)
    expires_at = DatetimeField(null=True)
    created_at = DatetimeField(auto_now_add=True)
    updated_at = DatetimeField(auto_now=True)

    class Meta:
        table = "orders"
        indexes = (("trader_id", "status"), ("status", "created_at"))


class Fill(Model):
    """One execution of an order, with the price expected beside the price got. Its id is
    the executor's (stable), so a fill reported twice is booked once."""

    id = fields.CharField(max_length=80, primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="fills", on_delete=fields.CASCADE
    )
    order_id: uuid.UUID
    trade: fields.ForeignKeyRelation[Trade] = fields.ForeignKeyField(
        "models.Trade", related_name="fills", on_delete=fields.CASCADE
    )
    trade_id: uuid.UUID
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="fills", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    amount = money()
    price = money()
    expected_price = money(null=True)
    fee = money()
    fee_currency = fields.CharField(max_length=16)
    liquidity = fields.CharEnumField(Liquidity, max_length=8)
    time = DatetimeField()

    class Meta:
        table = "fills"
        indexes = (("trade_id", "time"), ("trader_id", "time"))


class Ledger(Model):
    """A trader's own account in one mode (`app.domain.ledger.Ledger`): its positions are
    stored with it (amounts, costs and fees as decimal strings), so one row is the whole
    ledger and each fill rewrites it in the transaction that books the fill. `marks` are
    the prices of its last equity snapshot, for readers that see no market."""

    id = fields.BigIntField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="ledgers", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    mode = fields.CharEnumField(TradingMode, max_length=8)
    initial = money()
    cash = money()
    fees_paid = money(default=0)
    realised_pnl = money(default=0)
    positions: Any = fields.JSONField(default=dict)
    marks: Any = fields.JSONField(default=dict)
    marked_at = DatetimeField(null=True)

    class Meta:
        table = "ledgers"
        unique_together = (("trader_id", "mode"),)


class Performance(Model):
    """The running aggregate of a trader's trading in one mode (`app.domain.metrics.
    Performance`), updated with every fill, close and equity snapshot, so metrics are read
    from one row rather than from every trade."""

    id = fields.BigIntField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="performance", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    mode = fields.CharEnumField(TradingMode, max_length=8)
    started_at = fields.BigIntField(null=True)
    open_positions = fields.IntField(default=0)
    closed = fields.IntField(default=0)
    wins = fields.IntField(default=0)
    gross_profit = money(default=0)
    gross_loss = money(default=0)
    closed_cost = money(default=0)
    fees_paid = money(default=0)
    exposure_ms = fields.BigIntField(default=0)
    exposed_since = fields.BigIntField(null=True)
    snapshots = fields.IntField(default=0)
    first_snapshot_at = fields.BigIntField(null=True)
    last_equity = money(null=True)
    last_snapshot_at = fields.BigIntField(null=True)
    peak_equity = money(null=True)
    max_drawdown = money(default=0)
    returns = fields.IntField(default=0)
    return_sum = fields.DecimalField(max_digits=40, decimal_places=24, default=0)
    return_squares = fields.DecimalField(max_digits=40, decimal_places=24, default=0)
    downside_squares = fields.DecimalField(max_digits=40, decimal_places=24, default=0)

    class Meta:
        table = "performance"
        unique_together = (("trader_id", "mode"),)


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete an audit log row."""


class TradeAuditLog(Model):
    """Append-only record of every order action (invariant 6). Besides these guards, the
    database itself refuses UPDATE and DELETE on the table (triggers, migration 0004)."""

    id = fields.BigIntField(primary_key=True)
    owner_id = fields.IntField(db_index=True)
    trader_id = fields.UUIDField(db_index=True)
    action = fields.CharField(max_length=40)
    client_order_id = fields.CharField(max_length=64, null=True, db_index=True)
    details: Any = fields.JSONField(default=dict)
    created_at = DatetimeField(auto_now_add=True)

    class Meta:
        table = "trade_audit_log"

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._saved_in_db:
            await super().save(*args, **kwargs)
            return
        raise AppendOnlyError("the trade audit log is append-only")

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        raise AppendOnlyError("the trade audit log is append-only")


class EngineInstance(Model):
    """An engine process and the market it sees, refreshed by its heartbeat: an API process
    that runs no engine (TRADERS_ENGINE=off) answers `market` from here."""

    id = fields.CharField(max_length=64, primary_key=True)
    started_at = DatetimeField()
    seen_at = DatetimeField(db_index=True)
    market_source = fields.CharField(max_length=200)
    is_live_market = fields.BooleanField()
    symbols: Any = fields.JSONField(default=list)
    intervals: Any = fields.JSONField(default=list)
    last_candle_at = DatetimeField(null=True)

    class Meta:
        table = "engine_instances"


class EquitySnapshot(Model):
    id = fields.BigIntField(primary_key=True)
    trader: fields.ForeignKeyRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="equity_snapshots", on_delete=fields.CASCADE
    )
    trader_id: uuid.UUID
    mode = fields.CharEnumField(TradingMode, max_length=8)
    time = DatetimeField()
    equity = money()

    class Meta:
        table = "equity_snapshots"
        unique_together = (("trader_id", "mode", "time"),)


class Backtest(Model):
    """A backtest run: what was asked, how far it is, and when done its result document
    (`app.domain.backtest`). A run writes only this row: its signals, decisions and trades
    live in memory while it replays and in `result` after, never in the live tables.
    `heartbeat_at` is when the API process that queued or runs it last said it still does:
    a queued or running run whose heartbeat is older than the lease was left by a process
    that stopped, and is failed with that reason."""

    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="backtests", on_delete=fields.CASCADE
    )
    trader: fields.ForeignKeyNullableRelation[Trader] = fields.ForeignKeyField(
        "models.Trader", related_name="backtests", null=True, on_delete=fields.SET_NULL
    )
    status = fields.CharEnumField(BacktestStatus, max_length=12, default=BacktestStatus.QUEUED)
    request: Any = fields.JSONField()
    progress = fields.FloatField(default=0.0)
    closes_done = fields.IntField(default=0)
    closes_total = fields.IntField(default=0)
    reason = fields.TextField(null=True)
    result: Any = fields.JSONField(null=True)
    created_at = DatetimeField()
    started_at = DatetimeField(null=True)
    finished_at = DatetimeField(null=True)
    heartbeat_at = DatetimeField(null=True)

    class Meta:
        table = "backtests"
        indexes = (("owner_id", "created_at"),)
