"""Live updates over websockets: what changed in the caller's traders, as it happens.

Each subscription listens to the process's event bus, filtered by the caller's user id, so
a user receives events of their own traders only, whatever they ask for; naming a trader
that is not theirs is "not found", as in queries. Events are notifications built from the
event payload alone (no database read per event); the queries remain the source of truth.
Subscribers of one document share its execution per event (`app.api.broadcast`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry

from app.api.backtest import BacktestSubscription
from app.api.broadcast import subscribe
from app.api.market_subscriptions import MarketSubscription
from app.api.types import (
    Info,
    Metrics,
    Side,
    SignalStatus,
    TraderStatus,
    TradeStatus,
    TradingMode,
)
from app.core.events import Audience, Event, EventType
from app.domain import metrics as domain

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


def _id(payload: Mapping[str, Any], key: str) -> strawberry.ID | None:
    value = payload.get(key)
    return None if value is None else strawberry.ID(str(value))


def _decimal(payload: Mapping[str, Any], key: str) -> Decimal | None:
    value = payload.get(key)
    return None if value is None else Decimal(str(value))


def _enum(kind: type[E], payload: Mapping[str, Any], key: str) -> E | None:
    value = payload.get(key)
    return None if value is None else kind(value)


def _str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)


def _envelope(event: Event) -> dict[str, Any]:
    return {
        "event_id": strawberry.ID(event.id),
        "trader_id": strawberry.ID(event.trader_id or ""),  # market events have none
        "published_at": datetime.fromtimestamp(event.ts, UTC),
    }


@strawberry.interface(description="Something changed in one of the caller's traders")
class TraderEvent:
    event_id: strawberry.ID = strawberry.field(description="unique; lets a client drop repeats")
    trader_id: strawberry.ID
    published_at: datetime = strawberry.field(description="when the change was published")


@strawberry.type
class SignalEvent(TraderEvent):
    kind: str = strawberry.field(description="created, updated, ...")
    signal_id: strawberry.ID | None
    symbol: str | None
    interval: str | None
    side: Side | None
    status: SignalStatus | None
    reason: str | None = strawberry.field(description="why it was cancelled, refused...")
    price: Decimal | None
    score: float | None
    candle_time: datetime | None = strawberry.field(description="open time of the candle")

    @classmethod
    def from_event(cls, event: Event) -> SignalEvent:
        p = event.payload
        score = p.get("score")
        candle_time = p.get("candle_time")
        return cls(
            **_envelope(event),
            kind=str(p.get("kind", "updated")),
            signal_id=_id(p, "signal_id"),
            symbol=_str(p, "symbol"),
            interval=_str(p, "interval"),
            side=_enum(Side, p, "side"),
            status=_enum(SignalStatus, p, "status"),
            reason=_str(p, "reason"),
            price=_decimal(p, "price"),
            score=None if score is None else float(score),
            candle_time=None if candle_time is None else datetime.fromisoformat(candle_time),
        )


@strawberry.type
class TradeEvent(TraderEvent):
    kind: str = strawberry.field(description="opened, filled, closed, cancelled")
    trade_id: strawberry.ID | None
    signal_id: strawberry.ID | None
    symbol: str | None
    side: Side | None
    status: TradeStatus | None
    mode: TradingMode | None
    amount: Decimal | None
    entry_price: Decimal | None
    exit_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    pnl: Decimal | None
    pnl_percent: Decimal | None
    exit_reason: str | None
    order_id: strawberry.ID | None = strawberry.field(description="with kind filled")
    fill_amount: Decimal | None
    fill_price: Decimal | None
    expected_price: Decimal | None
    fee: Decimal | None

    @classmethod
    def from_event(cls, event: Event) -> TradeEvent:
        p = event.payload
        return cls(
            **_envelope(event),
            kind=str(p.get("kind", "updated")),
            trade_id=_id(p, "trade_id"),
            signal_id=_id(p, "signal_id"),
            symbol=_str(p, "symbol"),
            side=_enum(Side, p, "side"),
            status=_enum(TradeStatus, p, "status"),
            mode=_enum(TradingMode, p, "mode"),
            amount=_decimal(p, "amount"),
            entry_price=_decimal(p, "entry_price"),
            exit_price=_decimal(p, "exit_price"),
            stop_loss=_decimal(p, "stop_loss"),
            take_profit=_decimal(p, "take_profit"),
            pnl=_decimal(p, "pnl"),
            pnl_percent=_decimal(p, "pnl_percent"),
            exit_reason=_str(p, "exit_reason"),
            order_id=_id(p, "order_id"),
            fill_amount=_decimal(p, "fill_amount"),
            fill_price=_decimal(p, "fill_price"),
            expected_price=_decimal(p, "expected_price"),
            fee=_decimal(p, "fee"),
        )


def _domain_metrics(p: Mapping[str, Any]) -> domain.Metrics:
    last_signal_at = p.get("last_signal_at")
    return domain.Metrics(
        total_signals=int(p.get("total_signals", 0)),
        active_positions=int(p.get("active_positions", 0)),
        closed_positions=int(p.get("closed_positions", 0)),
        total_pnl=Decimal(str(p.get("total_pnl", 0))),
        total_pnl_percent=Decimal(str(p.get("total_pnl_percent", 0))),
        win_rate=Decimal(str(p.get("win_rate", 0))),
        avg_win=Decimal(str(p.get("avg_win", 0))),
        avg_loss=Decimal(str(p.get("avg_loss", 0))),
        last_signal_at=None if last_signal_at is None else datetime.fromisoformat(last_signal_at),
        expectancy=Decimal(str(p.get("expectancy", 0))),
        profit_factor=_decimal(p, "profit_factor"),
        fees_paid=Decimal(str(p.get("fees_paid", 0))),
        unrealised_pnl=Decimal(str(p.get("unrealised_pnl", 0))),
        equity=_decimal(p, "equity"),
        max_drawdown=_decimal(p, "max_drawdown"),
        sharpe_ratio=_decimal(p, "sharpe_ratio"),
        sortino_ratio=_decimal(p, "sortino_ratio"),
        time_in_market=_decimal(p, "time_in_market"),
    )


@strawberry.type(description="A trader's metrics after a change to its trades or signals")
class PnlUpdate(TraderEvent):
    metrics: Metrics

    @classmethod
    def from_event(cls, event: Event) -> PnlUpdate:
        p = event.payload
        metrics = Metrics.from_domain(_domain_metrics(p))
        if isinstance(p.get("demo"), Mapping):
            metrics.demo_metrics = Metrics.from_domain(_domain_metrics(p["demo"]))
        if isinstance(p.get("live"), Mapping):
            metrics.live_metrics = Metrics.from_domain(_domain_metrics(p["live"]))
        return cls(**_envelope(event), metrics=metrics)


@strawberry.type
class TraderStatusEvent(TraderEvent):
    kind: str = strawberry.field(description="created, updated, deleted, ...")
    status: TraderStatus | None
    reason: str | None
    enabled: bool | None
    mode: TradingMode | None

    @classmethod
    def from_event(cls, event: Event) -> TraderStatusEvent:
        p = event.payload
        enabled = p.get("enabled")
        return cls(
            **_envelope(event),
            kind=str(p.get("kind", "updated")),
            status=_enum(TraderStatus, p, "status"),
            reason=_str(p, "reason"),
            enabled=None if enabled is None else bool(enabled),
            mode=_enum(TradingMode, p, "mode"),
        )


async def _events(
    info: Info,
    event_type: str,
    trader_id: strawberry.ID | None,
    convert: Callable[[Event], T],
) -> AsyncGenerator[T, None]:
    """The caller's events of one type; ownership is checked before listening starts.

    An event whose payload does not convert (say, a value a newer process introduced) is
    logged and skipped: like a lost event it costs a screen update, not the subscription.
    """
    user = info.context.require_user()
    only_trader = None
    if trader_id is not None:
        only_trader = str((await info.context.traders.get(user, trader_id)).id)
    audience = Audience(user.id, only_trader)
    async with aclosing(subscribe(info, [event_type], audience, convert)) as results:
        async for result in results:
            yield result


TraderId = Annotated[
    strawberry.ID | None,
    strawberry.argument(description="one of the caller's traders; all of them if omitted"),
]


@strawberry.type
class Subscription(BacktestSubscription, MarketSubscription):
    @strawberry.subscription(description="Signals created or changed")
    def signal_events(
        self, info: Info, trader_id: TraderId = None
    ) -> AsyncGenerator[SignalEvent, None]:
        return _events(info, EventType.SIGNAL, trader_id, SignalEvent.from_event)

    @strawberry.subscription(description="Trades opened, changed or closed")
    def trade_events(
        self, info: Info, trader_id: TraderId = None
    ) -> AsyncGenerator[TradeEvent, None]:
        return _events(info, EventType.TRADE, trader_id, TradeEvent.from_event)

    @strawberry.subscription(description="A trader's metrics after each change")
    def pnl_updates(
        self, info: Info, trader_id: TraderId = None
    ) -> AsyncGenerator[PnlUpdate, None]:
        return _events(info, EventType.PNL, trader_id, PnlUpdate.from_event)

    @strawberry.subscription(description="Trader status changes: running, paused, error")
    def trader_status(
        self, info: Info, trader_id: TraderId = None
    ) -> AsyncGenerator[TraderStatusEvent, None]:
        return _events(info, EventType.TRADER_STATUS, trader_id, TraderStatusEvent.from_event)
