"""Traders as `TraderSpec`s: the running ones of an interval, one by id, and stopping a
failing one."""

from __future__ import annotations

import uuid

from app.db import models
from app.domain.enums import TraderStatus
from app.domain.trader_spec import RISK_FIELDS, RiskSettings, TraderSpec
from app.services.traders import TraderManager


def spec_of(row: models.Trader) -> TraderSpec:
    return TraderSpec(
        id=row.id,
        owner_id=row.owner_id,  # type: ignore[attr-defined]
        name=row.name,
        interval=row.interval,
        symbols=tuple(row.symbols),
        mode=row.mode,
        filter_code=row.filter_code,
        filter_description=tuple(row.filter_description),
        strategy_instructions=row.strategy_instructions,
        risk=RiskSettings(**{name: getattr(row, name) for name in RISK_FIELDS}),
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

    async def spec(self, trader_id: uuid.UUID) -> TraderSpec | None:
        row = await models.Trader.get_or_none(id=trader_id)
        return None if row is None else spec_of(row)
