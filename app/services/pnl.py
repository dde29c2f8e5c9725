"""Telling `pnlUpdates` subscribers a trader's metrics after its signals, trades or equity
change."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from app.core.events import Event, EventBus, EventType
from app.domain.enums import TradingMode
from app.domain.metrics import Metrics
from app.services.reads import Prices, TraderMetrics, metrics_by_trader


def metrics_payload(metrics: Metrics) -> dict[str, Any]:
    payload = asdict(metrics)
    if metrics.last_signal_at is not None:
        payload["last_signal_at"] = metrics.last_signal_at.isoformat()
    return payload


def pnl_event(owner_id: int, trader_id: uuid.UUID, metrics: TraderMetrics) -> Event:
    payload = metrics_payload(metrics.overall)
    payload["demo"] = metrics_payload(metrics.by_mode[TradingMode.DEMO])
    payload["live"] = metrics_payload(metrics.by_mode[TradingMode.LIVE])
    return Event(type=EventType.PNL, owner_id=owner_id, trader_id=str(trader_id), payload=payload)


async def publish_metrics(
    bus: EventBus, owners: Mapping[uuid.UUID, int], prices: Prices | None = None
) -> None:
    """Read the traders' metrics as committed (one read for all) and publish each; call
    after the commit. `owners`: each trader's owner."""
    found = await metrics_by_trader(list(owners), prices)
    for trader_id, owner_id in owners.items():
        await bus.publish(pnl_event(owner_id, trader_id, found[trader_id]))
