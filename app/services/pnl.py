"""Telling `pnlUpdates` subscribers a trader's metrics after its signals or trades change."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from app.core.events import Event, EventBus, EventType
from app.domain.enums import TradingMode
from app.domain.metrics import Metrics
from app.services.reads import metrics_by_trader


def metrics_payload(metrics: Metrics) -> dict[str, Any]:
    payload = asdict(metrics)
    if metrics.last_signal_at is not None:
        payload["last_signal_at"] = metrics.last_signal_at.isoformat()
    return payload


async def publish_metrics(bus: EventBus, owner_id: int, trader_id: uuid.UUID) -> None:
    """Read the trader's metrics as committed and publish them; call after the commit."""
    metrics = (await metrics_by_trader([trader_id]))[trader_id]
    payload = metrics_payload(metrics.overall)
    payload["demo"] = metrics_payload(metrics.by_mode[TradingMode.DEMO])
    payload["live"] = metrics_payload(metrics.by_mode[TradingMode.LIVE])
    await bus.publish(
        Event(
            type=EventType.PNL,
            owner_id=owner_id,
            trader_id=str(trader_id),
            payload=payload,
        )
    )
