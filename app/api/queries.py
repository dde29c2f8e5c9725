"""Root queries. Every query is scoped to the caller: other users' rows do not exist."""

from __future__ import annotations

from typing import TypeVar

import strawberry
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.api.analysis import AnalysisQuery
from app.api.backtest import BacktestQuery
from app.api.filter_check import FilterQuery
from app.api.generation import GenerationQuery
from app.api.market import MarketQuery
from app.api.pagination import Connection, paginate
from app.api.trading import TradingQuery
from app.api.types import (
    Info,
    Signal,
    SignalStatus,
    Trade,
    Trader,
    TraderStatus,
    TradeStatus,
    TradingMode,
    User,
)
from app.db import models
from app.domain.trader_rules import FieldError, check_symbol
from app.services.errors import InvalidInputError

M = TypeVar("M", bound=Model)


@strawberry.type
class Query(FilterQuery, MarketQuery, AnalysisQuery, GenerationQuery, TradingQuery, BacktestQuery):
    @strawberry.field(description="The caller")
    def me(self, info: Info) -> User:
        return User.from_model(info.context.require_user())

    @strawberry.field(description="The caller's traders, newest first")
    async def traders(
        self,
        info: Info,
        enabled: bool | None = None,
        mode: TradingMode | None = None,
        status: TraderStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Trader]:
        user = info.context.require_user()
        query = models.Trader.filter(
            owner_id=user.id, **_given(enabled=enabled, mode=mode, status=status)
        )
        return await paginate(query, "created_at", first, after, Trader.from_model)

    @strawberry.field
    async def trader(self, info: Info, id: strawberry.ID) -> Trader:
        user = info.context.require_user()
        return Trader.from_model(await info.context.traders.get(user, id))

    @strawberry.field(description="Signals of one trader, or of all the caller's traders")
    async def signals(
        self,
        info: Info,
        trader_id: strawberry.ID | None = None,
        status: SignalStatus | None = None,
        symbol: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Signal]:
        if symbol is not None and (problem := check_symbol(symbol)) is not None:
            raise InvalidInputError([FieldError("symbol", problem)])
        query = await _owned(info, models.Signal, trader_id, status=status, symbol=symbol)
        return await paginate(query, "created_at", first, after, Signal.from_model)

    @strawberry.field(description="Trades of one trader, or of all the caller's traders")
    async def trades(
        self,
        info: Info,
        trader_id: strawberry.ID | None = None,
        mode: TradingMode | None = None,
        status: TradeStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Trade]:
        query = await _owned(info, models.Trade, trader_id, mode=mode, status=status)
        return await paginate(query, "opened_at", first, after, Trade.from_model)


async def _owned(
    info: Info, model: type[M], trader_id: strawberry.ID | None, **equal: object
) -> QuerySet[M]:
    """Rows of the caller's traders, or of the one named (another's is "not found"), that
    equal every filter given (`None` means "any")."""
    user = info.context.require_user()
    query = model.filter(trader__owner_id=user.id)
    if trader_id is not None:
        query = query.filter(trader_id=(await info.context.traders.get(user, trader_id)).id)
    return query.filter(**_given(**equal))


def _given(**equal: object) -> dict[str, object]:
    """The filters a client gave: `None` means "any"."""
    return {name: value for name, value in equal.items() if value is not None}
