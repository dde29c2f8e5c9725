"""BusNotifier: a trader's metrics go out once the engine's stages on the way to an order
are idle (the gate is quiet), not among a close's entries, whose reads they would delay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from decimal import Decimal

import pytest

from app.core.events import Event, EventType
from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.engine.workflow import EngineGate
from app.services import notifier as notifier_module
from app.services.notifier import BusNotifier


class RecordingBus:
    """An event bus that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    def listen(
        self, owner_id: int | None, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        raise NotImplementedError

    def metrics(self) -> list[Event]:
        return [event for event in self.events if event.type == EventType.PNL]


async def test_metrics_wait_for_a_quiet_engine(db: str) -> None:
    bus, gate = RecordingBus(), EngineGate()
    notifier = BusNotifier(bus, gate=gate)  # type: ignore[arg-type]
    gate.order_path_busy(True)
    trader = uuid.uuid4()
    await notifier.pnl_changed(trader, 1)
    await asyncio.sleep(0.3)
    assert bus.metrics() == []
    gate.order_path_busy(False)
    await asyncio.wait_for(notifier.flush(), 5)
    (sent,) = bus.metrics()
    assert sent.trader_id == str(trader)


async def test_metrics_of_an_engine_never_quiet_go_out_after_the_wait_limit(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifier_module, "QUIET_WAIT_SECONDS", 0.1)
    bus, gate = RecordingBus(), EngineGate()
    notifier = BusNotifier(bus, gate=gate)  # type: ignore[arg-type]
    gate.order_path_busy(True)
    await notifier.pnl_changed(uuid.uuid4(), 1)
    await asyncio.wait_for(notifier.flush(), 5)
    assert len(bus.metrics()) == 1


def _signal() -> Signal:
    return Signal(
        id=uuid.uuid4(),
        trader_id=uuid.uuid4(),
        owner_id=1,
        symbol="BTC/USDT",
        interval="1h",
        side=Side.LONG,
        price=Decimal("100"),
        candle_time=0,
        created_at=0,
    )


async def test_events_go_out_in_order_once_the_engine_is_quiet() -> None:
    """A close's signal events are not published among its entries: they wait in the
    outbox, in the order they were told, with the time they were told."""
    bus, gate = RecordingBus(), EngineGate()
    notifier = BusNotifier(bus, gate=gate)  # type: ignore[arg-type]
    gate.order_path_busy(True)
    signal = _signal()
    told = time.time()
    await notifier.signal_changed(signal)
    await notifier.signal_changed(signal.with_status(SignalStatus.READY))
    await asyncio.sleep(0.1)
    assert [e for e in bus.events if e.type == EventType.SIGNAL] == []
    gate.order_path_busy(False)
    await asyncio.wait_for(notifier.flush(), 5)
    sent = [e for e in bus.events if e.type == EventType.SIGNAL]
    assert [e.payload["status"] for e in sent] == ["new", "ready"]
    assert all(told <= e.ts < told + 0.1 for e in sent)  # when told, not when sent


async def test_events_of_an_engine_never_quiet_go_out_after_the_wait_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notifier_module, "EVENTS_WAIT_SECONDS", 0.1)
    bus, gate = RecordingBus(), EngineGate()
    notifier = BusNotifier(bus, gate=gate)  # type: ignore[arg-type]
    gate.order_path_busy(True)
    await notifier.signal_changed(_signal())
    await asyncio.wait_for(notifier.flush(), 5)
    assert [e.type for e in bus.events] == [EventType.SIGNAL]
