"""Request-scoped DataLoaders, so nested fields batch into one query per kind."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from app.db.models import Decision, Fill, Order, Signal, SignalTransition, Trade, Trader
from app.services import analysis, reads
from app.services.reads import Prices

V = TypeVar("V")


def _loader(
    fetch: Callable[[Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, V]]],
    missing: V | None = None,
) -> DataLoader[uuid.UUID, V]:
    async def load(keys: list[uuid.UUID]) -> list[V]:
        found = await fetch(keys)
        return [found.get(key, missing) for key in keys]  # type: ignore[misc]

    return DataLoader(load_fn=load)


class Loaders:
    """`prices`: the engine's latest prices when it runs in this process (metrics value
    open positions at them)."""

    def __init__(self, prices: Prices | None = None) -> None:
        self.trader: DataLoader[uuid.UUID, Trader | None] = _loader(reads.traders_by_id)

        async def metrics(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, reads.TraderMetrics]:
            return await reads.metrics_by_trader(ids, prices)

        self.metrics: DataLoader[uuid.UUID, reads.TraderMetrics] = _loader(metrics)
        self.signal: DataLoader[uuid.UUID, Signal | None] = _loader(reads.signals_by_id)
        self.trade_of_signal: DataLoader[uuid.UUID, Trade | None] = _loader(reads.trades_of_signals)
        self.orders_of_trade: DataLoader[uuid.UUID, list[Order]] = _loader(
            reads.orders_of_trades, missing=[]
        )

        async def trade_fills(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Fill]]:
            return await reads.fills_by("trade_id", ids)

        async def order_fills(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Fill]]:
            return await reads.fills_by("order_id", ids)

        self.fills_of_trade: DataLoader[uuid.UUID, list[Fill]] = _loader(trade_fills, missing=[])
        self.fills_of_order: DataLoader[uuid.UUID, list[Fill]] = _loader(order_fills, missing=[])
        self.decisions: DataLoader[uuid.UUID, list[Decision]] = _loader(
            analysis.decisions_by_signal, missing=[]
        )
        self.transitions: DataLoader[uuid.UUID, list[SignalTransition]] = _loader(
            analysis.transitions_by_signal, missing=[]
        )
        self._latest: dict[tuple[str, int], DataLoader[uuid.UUID, list]] = {}

    def latest_signals(self, first: int) -> DataLoader[uuid.UUID, list[Signal]]:
        return self._latest_loader(Signal, first, "created_at")

    def latest_trades(self, first: int) -> DataLoader[uuid.UUID, list[Trade]]:
        return self._latest_loader(Trade, first, "opened_at")

    def _latest_loader(self, model: type, first: int, time_column: str) -> DataLoader:
        key = (model.__name__, first)
        if key not in self._latest:

            async def fetch(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list]:
                return await reads.latest_per_trader(model, ids, first, time_column)

            self._latest[key] = _loader(fetch, missing=[])
        return self._latest[key]
