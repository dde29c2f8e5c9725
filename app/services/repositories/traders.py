"""Traders as `TraderSpec`s: the running ones, one by id, and stopping a failing or losing
one.

`running` is read at every candle close, for every trader of the interval: each row's
symbols and filter code, decoded into a spec, cost 5 ms at a close of 50 traders over 100
symbols, on the way to every entry. A spec changes only with its row's `updated_at`
(`TraderManager.update` writes it with every field of a spec; what the engine writes itself,
the status, is in the query), so the repository reads the ids and `updated_at` of the
running traders, and whole rows only for those it has no spec of at that `updated_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from app.db import models
from app.domain.enums import TraderStatus
from app.domain.trader_spec import RISK_FIELDS, RiskSettings, TraderSpec
from app.services.repositories.rows import as_uuid
from app.services.traders import TraderManager


def spec_of(row: models.Trader) -> TraderSpec:
    return TraderSpec(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        interval=row.interval,
        symbols=tuple(row.symbols),
        mode=row.mode,
        filter_code=row.filter_code,
        filter_description=tuple(row.filter_description),
        strategy_instructions=row.strategy_instructions,
        risk=RiskSettings(**{name: getattr(row, name) for name in RISK_FIELDS}),
        exit_filter_code=row.exit_filter_code,
    )


class DbTraderRepository:
    def __init__(self, manager: TraderManager) -> None:
        self.manager = manager
        self._specs: dict[uuid.UUID, tuple[datetime, TraderSpec]] = {}

    async def running(self, interval: str) -> list[TraderSpec]:
        versions = [
            (as_uuid(trader_id), updated)
            for trader_id, updated in await models.Trader.filter(
                enabled=True, status=TraderStatus.RUNNING, interval=interval
            )
            .order_by("created_at", "id")
            .values_list("id", "updated_at")
        ]
        known = {
            trader_id: kept[1]
            for trader_id, updated in versions
            if (kept := self._specs.get(trader_id)) is not None and kept[0] == updated
        }
        unknown = [trader_id for trader_id, _ in versions if trader_id not in known]
        for row in await models.Trader.filter(id__in=unknown) if unknown else []:
            self._specs[row.id] = (row.updated_at, spec_of(row))
            known[row.id] = self._specs[row.id][1]
        for trader_id in [
            trader_id
            for trader_id, (_, spec) in self._specs.items()
            if spec.interval == interval and trader_id not in known
        ]:
            del self._specs[trader_id]  # no longer running here, or deleted meanwhile
        return [known[trader_id] for trader_id, _ in versions if trader_id in known]

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        await self.manager.set_error(spec.id, reason)

    async def specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        if not trader_ids:
            return {}
        rows = await models.Trader.filter(id__in=list(trader_ids))
        return {row.id: spec_of(row) for row in rows}

    async def running_specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        if not trader_ids:
            return {}
        rows = await models.Trader.filter(
            id__in=list(trader_ids), enabled=True, status=TraderStatus.RUNNING
        )
        return {row.id: spec_of(row) for row in rows}

    async def pause(self, spec: TraderSpec, reason: str) -> None:
        await self.manager.pause(spec.id, reason)
