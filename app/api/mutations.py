"""Root mutations on traders (and, from `app.api.trading`, on their positions and orders);
each one validates first and writes nothing when it fails."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.backtest import BacktestMutation
from app.api.generation import GenerationMutation
from app.api.inputs import CreateTraderInput, UpdateTraderInput, api_errors, to_changes
from app.api.trading import TradingMutation
from app.api.types import Info, Trader, TradingMode
from app.services.errors import InvalidInputError


@strawberry.type
class Mutation(GenerationMutation, TradingMutation, BacktestMutation):
    @strawberry.mutation
    async def create_trader(self, info: Info, input: CreateTraderInput) -> Trader:
        user = info.context.require_user()
        try:
            trader = await info.context.traders.create(user, to_changes(input))
        except InvalidInputError as exc:
            raise api_errors(exc) from None
        return Trader.from_model(trader)

    @strawberry.mutation
    async def update_trader(
        self, info: Info, id: strawberry.ID, input: UpdateTraderInput
    ) -> Trader:
        user = info.context.require_user()
        try:
            trader = await info.context.traders.update(user, id, to_changes(input))
        except InvalidInputError as exc:
            raise api_errors(exc) from None
        return Trader.from_model(trader)

    @strawberry.mutation(description="Deletes the trader with its signals and trades")
    async def delete_trader(
        self,
        info: Info,
        id: strawberry.ID,
        confirm: Annotated[
            bool, strawberry.argument(description="must be true: deletion is permanent")
        ],
    ) -> strawberry.ID:
        user = info.context.require_user()
        return strawberry.ID(str(await info.context.traders.delete(user, id, confirm)))

    @strawberry.mutation
    async def set_trader_enabled(self, info: Info, id: strawberry.ID, enabled: bool) -> Trader:
        user = info.context.require_user()
        return Trader.from_model(await info.context.traders.set_enabled(user, id, enabled))

    @strawberry.mutation
    async def set_trader_mode(self, info: Info, id: strawberry.ID, mode: TradingMode) -> Trader:
        user = info.context.require_user()
        return Trader.from_model(await info.context.traders.set_mode(user, id, mode))
