"""Backtests over GraphQL: `backtestTrader` starts one, `backtest(id)` reads it,
`backtestProgress(id)` streams its progress, `cancelBacktest(id)` stops it.

Every field needs a caller (`IsAuthenticated`), and a run is found only among the caller's
own: another user's run is "not found", in queries, mutations and subscriptions alike. The
result is the run's stored document (`app.domain.backtest`), read into these types.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from app.api.analysis_types import CalibrationBucket, DecisionAction, OutcomeCounts
from app.api.enums import BacktestAnalysis, BacktestStatus
from app.api.generation import GeneratedTraderInput, draft_of
from app.api.trading import EquityPoint
from app.api.types import Info, Metrics, Side, TradeStatus
from app.core.events import EventType
from app.db import models
from app.domain import decision_quality as quality
from app.domain import enums
from app.domain import metrics as domain_metrics
from app.domain.backtest import BacktestInputError
from app.domain.trader_rules import FieldError
from app.engine.assembly import fill_model
from app.engine.clock import to_datetime, to_ms
from app.services.backtests import BacktestAsk, BacktestManager
from app.services.errors import InvalidInputError


@strawberry.enum(description="What a backtest replays")
class BacktestData(Enum):
    REPLAY_DIRECTORY = "replay_directory"
    """the server's replay directory (TRADERS_BACKTEST_DATA): CSV or Parquet files"""
    MARKET = "market"
    """the stored history of the running market (the engine's candles, TRADERS_KLINE_DEPTH deep)"""


# Input fields by the names a `BacktestInputError` gives them.
INPUT_PATHS = {
    "trader": "trader",
    "template": "template",
    "from": "from",
    "to": "to",
    "symbols": "symbols",
    "interval": "interval",
    "balance": "startingBalance",
    "fees": "takerFee",
    "filter": "trader.filterCode",
    "data": "from",
}


class IsAuthenticated(BasePermission):
    """The field needs a caller with a valid token."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_user()
        return True


def manager(info: Info) -> BacktestManager:
    runtime = info.context.runtime
    return BacktestManager(runtime.backtests, runtime.settings.backtest_data)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _time(value: object) -> datetime | None:
    return None if value is None else to_datetime(int(value))  # type: ignore[call-overload]


@strawberry.type(description="A trade the backtest made (paper, in memory)")
class BacktestTrade:
    id: strawberry.ID
    symbol: str
    side: Side
    status: TradeStatus
    amount: Decimal
    entry_price: Decimal | None
    exit_price: Decimal | None
    entry_fee: Decimal
    exit_fee: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    pnl: Decimal | None
    pnl_percent: Decimal | None
    exit_reason: str | None
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_document(cls, t: Mapping[str, Any]) -> BacktestTrade:
        return cls(
            id=strawberry.ID(t["id"]),
            symbol=t["symbol"],
            side=enums.Side(t["side"]),
            status=enums.TradeStatus(t["status"]),
            amount=Decimal(t["amount"]),
            entry_price=_decimal(t["entry_price"]),
            exit_price=_decimal(t["exit_price"]),
            entry_fee=Decimal(t["entry_fee"]),
            exit_fee=Decimal(t["exit_fee"]),
            stop_loss=_decimal(t["stop_loss"]),
            take_profit=_decimal(t["take_profit"]),
            pnl=_decimal(t["pnl"]),
            pnl_percent=_decimal(t["pnl_percent"]),
            exit_reason=t["exit_reason"],
            opened_at=to_datetime(t["opened_at"]),
            closed_at=_time(t["closed_at"]),
        )


@strawberry.type(description="An analysis the backtest made of one of its signals")
class BacktestDecision:
    id: strawberry.ID
    signal_id: strawberry.ID
    symbol: str
    decision: DecisionAction
    direction: Side
    confidence: float
    reasoning: str
    engine: str
    created_at: datetime
    outcome: str | None = strawberry.field(description="target, stop, neither, unlabelled")

    @classmethod
    def from_document(cls, d: Mapping[str, Any]) -> BacktestDecision:
        return cls(
            id=strawberry.ID(d["id"]),
            signal_id=strawberry.ID(d["signal_id"]),
            symbol=d["symbol"],
            decision=DecisionAction(d["action"]),
            direction=enums.Side(d["direction"]),
            confidence=float(d["confidence"]),
            reasoning=d["reasoning"],
            engine=d["engine"],
            created_at=to_datetime(d["created_at"]),
            outcome=d["outcome"],
        )


@strawberry.type
class DecisionQuality:
    counts: list[OutcomeCounts]
    calibration: list[CalibrationBucket]


def _metrics(values: Mapping[str, Any]) -> Metrics:
    decimals = {
        name: _decimal(value)
        for name, value in values.items()
        if name not in ("total_signals", "active_positions", "closed_positions", "last_signal_at")
    }
    return Metrics.from_domain(
        domain_metrics.Metrics(
            total_signals=int(values["total_signals"]),
            active_positions=int(values["active_positions"]),
            closed_positions=int(values["closed_positions"]),
            last_signal_at=None,
            **decimals,  # type: ignore[arg-type]
        )
    )


def _quality(values: Mapping[str, Any]) -> DecisionQuality:
    return DecisionQuality(
        counts=[
            OutcomeCounts.from_value(
                quality.OutcomeCounts(
                    **{
                        **{k: v for k, v in c.items() if k != "hit_rate"},
                        "action": DecisionAction(c["action"]),
                    }
                )
            )
            for c in values["counts"]
        ],
        calibration=[
            CalibrationBucket.from_value(
                quality.CalibrationBucket(**{k: v for k, v in b.items() if k != "hit_rate"})
            )
            for b in values["calibration"]
        ],
    )


@strawberry.type(description="What a finished backtest found")
class BacktestResult:
    metrics: Metrics
    equity_curve: list[EquityPoint]
    trades: list[BacktestTrade]
    decisions: list[BacktestDecision]
    decision_quality: DecisionQuality
    signals: int
    closes: int = strawberry.field(description="candle closes replayed")
    errors: list[str] = strawberry.field(description="why the trader stopped, if it did")

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> BacktestResult:
        return cls(
            metrics=_metrics(document["metrics"]),
            equity_curve=[
                EquityPoint(time=to_datetime(t), equity=Decimal(e))
                for t, e in document["equity_curve"]
            ],
            trades=[BacktestTrade.from_document(t) for t in document["trades"]],
            decisions=[BacktestDecision.from_document(d) for d in document["decisions"]],
            decision_quality=_quality(document["decision_quality"]),
            signals=int(document["signals"]),
            closes=int(document["closes"]),
            errors=list(document["errors"].values()),
        )


@strawberry.type(description="A backtest run of one of the caller's traders")
class Backtest:
    id: strawberry.ID
    trader_id: strawberry.ID | None = strawberry.field(description="null for an unsaved one")
    status: BacktestStatus
    progress: float = strawberry.field(description="share of the closes replayed, 0 to 1")
    closes_done: int
    closes_total: int
    reason: str | None = strawberry.field(description="why it failed or was cancelled")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    row: strawberry.Private[models.Backtest]

    @classmethod
    def from_model(cls, row: models.Backtest) -> Backtest:
        trader_id = row.trader_id  # type: ignore[attr-defined]
        return cls(
            id=strawberry.ID(str(row.id)),
            trader_id=None if trader_id is None else strawberry.ID(str(trader_id)),
            status=row.status,
            progress=row.progress,
            closes_done=row.closes_done,
            closes_total=row.closes_total,
            reason=row.reason,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            row=row,
        )

    @strawberry.field(description="Null until the run is done")
    def result(self) -> BacktestResult | None:
        document = self.row.result
        return None if document is None else BacktestResult.from_document(document)


@strawberry.type(description="A backtest's status and progress, as it changes")
class BacktestProgress:
    backtest_id: strawberry.ID
    status: BacktestStatus
    progress: float
    closes_done: int
    closes_total: int
    reason: str | None


@strawberry.input(description="What to backtest (exactly one of traderId, template, trader)")
class BacktestInput:
    trader_id: strawberry.ID | None = None
    template: str | None = strawberry.field(default=None, description="a strategy template key")
    trader: GeneratedTraderInput | None = strawberry.field(
        default=None, description="an unsaved trader: a generation preview, possibly edited"
    )
    from_: datetime = strawberry.field(name="from")
    to: datetime
    symbols: list[str] | None = strawberry.field(default=None, description="the trader's own")
    interval: str | None = strawberry.field(default=None, description="the trader's own")
    starting_balance: Decimal | None = strawberry.field(
        default=None, description="TRADERS_DEMO_BALANCE"
    )
    taker_fee: Decimal | None = strawberry.field(default=None, description="as a fraction")
    maker_fee: Decimal | None = None
    data: BacktestData = strawberry.field(
        default=BacktestData.REPLAY_DIRECTORY, description="the candles the run replays"
    )
    analysis: BacktestAnalysis = strawberry.field(
        default=BacktestAnalysis.RULES, description="what decides on the run's signals"
    )


def _ask(value: BacktestInput) -> BacktestAsk:
    return BacktestAsk(
        start=to_ms(value.from_),
        end=to_ms(value.to),
        trader_id=None if value.trader_id is None else str(value.trader_id),
        template=value.template,
        draft=None if value.trader is None else draft_of(value.trader),
        symbols=tuple(value.symbols or ()),
        interval=value.interval,
        balance=value.starting_balance,
        taker_fee=value.taker_fee,
        maker_fee=value.maker_fee,
        analysis=value.analysis,
    )


@strawberry.type
class BacktestQuery:
    @strawberry.field(permission_classes=[IsAuthenticated], description="One of the caller's runs")
    async def backtest(self, info: Info, id: strawberry.ID) -> Backtest:
        user = info.context.require_user()
        return Backtest.from_model(await manager(info).get(user, id))


@strawberry.type
class BacktestMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Start a backtest; its id, to follow with backtest and backtestProgress",
    )
    async def backtest_trader(self, info: Info, input: BacktestInput) -> strawberry.ID:
        user = info.context.require_user()
        runtime = info.context.runtime
        settings = runtime.settings
        market = runtime.market.data().store if input.data == BacktestData.MARKET else None
        try:
            run = await manager(info).start(
                user, _ask(input), fill_model(settings), settings.demo_balance, market
            )
        except BacktestInputError as exc:
            field = INPUT_PATHS.get(exc.field, exc.field)
            raise InvalidInputError([FieldError(field, str(exc))]) from None
        return strawberry.ID(str(run.id))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Stop a queued or running backtest; a finished one stays as it is",
    )
    async def cancel_backtest(self, info: Info, id: strawberry.ID) -> Backtest:
        user = info.context.require_user()
        return Backtest.from_model(await manager(info).cancel(user, id))


@strawberry.type
class BacktestSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="The run's status and progress: now, at every change, until it ends",
    )
    async def backtest_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[BacktestProgress, None]:
        user = info.context.require_user()
        backtests = manager(info)
        run = await backtests.get(user, id)
        async with aclosing(
            info.context.runtime.bus.listen(user.id, [EventType.BACKTEST])
        ) as events:
            run = await backtests.get(user, run.id)
            yield _progress(
                run.id, run.status, run.progress, run.closes_done, run.closes_total, run.reason
            )
            if run.status in enums.FINAL_BACKTEST_STATUSES:
                return
            async for event in events:
                p = event.payload
                if p.get("backtest_id") != str(run.id):
                    continue
                status = enums.BacktestStatus(p["status"])
                yield _progress(
                    run.id,
                    status,
                    float(p["progress"]),
                    int(p["closes_done"]),
                    int(p["closes_total"]),
                    p.get("reason"),
                )
                if status in enums.FINAL_BACKTEST_STATUSES:
                    return


def _progress(
    run_id: uuid.UUID,
    status: enums.BacktestStatus,
    progress: float,
    done: int,
    total: int,
    reason: str | None,
) -> BacktestProgress:
    return BacktestProgress(
        backtest_id=strawberry.ID(str(run_id)),
        status=status,
        progress=progress,
        closes_done=done,
        closes_total=total,
        reason=reason,
    )
