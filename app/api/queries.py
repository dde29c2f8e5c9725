"""Root queries. Every query is scoped to the caller: other users' rows do not exist."""

from __future__ import annotations

import strawberry

from app.api.filters import FilterQuery
from app.api.market import MarketQuery
from app.api.pagination import Connection, paginate
from app.api.types import Info, Signal, SignalStatus, Trade, Trader, TradeStatus, TradingMode, User
from app.db import models


@strawberry.type
class Query(FilterQuery, MarketQuery):
    @strawberry.field(description="The caller")
    def me(self, info: Info) -> User:
        return User.from_model(info.context.require_user())

    @strawberry.field(description="The caller's traders, newest first")
    async def traders(self, info: Info) -> list[Trader]:
        user = info.context.require_user()
        rows = await models.Trader.filter(owner_id=user.id).order_by("-created_at", "-id")
        return [Trader.from_model(row) for row in rows]

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
        user = info.context.require_user()
        query = models.Signal.filter(trader__owner_id=user.id)
        if trader_id is not None:
            query = query.filter(trader_id=(await info.context.traders.get(user, trader_id)).id)
        if status is not None:
            query = query.filter(status=status)
        if symbol is not None:
            query = query.filter(symbol=symbol)
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
        user = info.context.require_user()
        query = models.Trade.filter(trader__owner_id=user.id)
        if trader_id is not None:
            query = query.filter(trader_id=(await info.context.traders.get(user, trader_id)).id)
        if mode is not None:
            query = query.filter(mode=mode)
        if status is not None:
            query = query.filter(status=status)
        return await paginate(query, "opened_at", first, after, Trade.from_model)
