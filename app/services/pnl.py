"""Telling `pnlUpdates` subscribers a trader's metrics after its signals or trades change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.core.events import Event, EventBus, EventType
from app.db.models import Trader
from app.domain.enums import TradingMode
from app.domain.metrics import Metrics
from app.services.reads import metrics_by_trader


def metrics_payload(metrics: Metrics) -> dict[str, Any]:
    payload = asdict(metrics)
    if metrics.last_signal_at is not None:
        payload["last_signal_at"] = metrics.last_signal_at.isoformat()
    return payload


async def publish_metrics(bus: EventBus, trader: Trader) -> None:
    """Read the trader's metrics as committed and publish them; call after the commit."""
    metrics = (await metrics_by_trader([trader.id]))[trader.id]
    payload = metrics_payload(metrics.overall)
    payload["demo"] = metrics_payload(metrics.by_mode[TradingMode.DEMO])
    payload["live"] = metrics_payload(metrics.by_mode[TradingMode.LIVE])
    await bus.publish(
        Event(
            type=EventType.PNL,
            owner_id=trader.owner_id,  # type: ignore[attr-defined]
            trader_id=str(trader.id),
            payload=payload,
        )
    )
