"""The live engine's `Notifier`: what the stages changed, published on the event bus.

Called only once the change is committed, so no subscriber hears of a signal that is not in
the database. After new signals the trader's metrics are published too (`pnlUpdates`).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.events import Event, EventBus, EventType
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.clock import to_datetime
from app.services.pnl import publish_metrics


def signal_event(signal: Signal, kind: str = "created") -> Event:
    return Event(
        type=EventType.SIGNAL,
        owner_id=signal.owner_id,
        trader_id=str(signal.trader_id),
        payload={
            "kind": kind,
            "signal_id": str(signal.id),
            "symbol": signal.symbol,
            "interval": signal.interval,
            "side": signal.side.value,
            "status": signal.status.value,
            "reason": signal.status_reason,
            "price": str(signal.price),
            "score": signal.score,
            "indicators": dict(signal.indicators),
            "candle_time": to_datetime(signal.candle_time).isoformat(),
        },
    )


class BusNotifier:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None:
        for signal in signals:
            await self.bus.publish(signal_event(signal))
        if signals:
            await publish_metrics(self.bus, spec.owner_id, spec.id)

    async def signal_changed(self, signal: Signal) -> None:
        await self.bus.publish(signal_event(signal, "updated"))
