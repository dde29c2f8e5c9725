"""Traders as `TraderSpec`s: the running ones, one by id, and stopping a failing or losing
one."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from app.db import models
from app.domain.enums import TraderStatus
from app.domain.trader_spec import RISK_FIELDS, RiskSettings, TraderSpec
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

    async def running(self, interval: str) -> list[TraderSpec]:
        rows = await models.Trader.filter(
            enabled=True, status=TraderStatus.RUNNING, interval=interval
        ).order_by("created_at", "id")
        return [spec_of(row) for row in rows]

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
