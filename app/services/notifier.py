"""The live engine's `Notifier`: what the stages changed, published on the event bus.

Called only once the change is committed, so no subscriber hears of a signal or trade that
is not in the database. After new signals, fills and equity snapshots the trader's metrics
are published too (`pnlUpdates`).

The calls return at once: the events go into an outbox, in the order of the calls, and a
task of their own publishes them once the engine's gate is quiet (no screen, no stage on
the way to an order at work), `EVENTS_WAIT_SECONDS` at most. A close records hundreds of
signals and moves, and publishing each one as it happens put its cost on the way from the
close to the entries: 2.5 ms for the in-process bus, 60 ms for Redis (a round trip per
event) in `benchmarks.trading`. Each event keeps the time of its call (`ts`), and is built
only when it goes out (signals and trades are immutable).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial

from app.core.events import Event, EventBus, EventType
from app.domain.orders import Fill
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.clock import to_datetime
from app.engine.workflow import EngineGate
from app.services.pnl import publish_metrics
from app.services.reads import Prices

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05
QUIET_WAIT_SECONDS = 2.0
EVENTS_WAIT_SECONDS = 0.25


def signal_event(signal: Signal, kind: str = "created", ts: float | None = None) -> Event:
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
        ts=time.time() if ts is None else ts,
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def trade_event(
    trade: Trade, kind: str, fill: Fill | None = None, ts: float | None = None
) -> Event:
    """`kind`: opened, filled (with the fill), closed or cancelled."""
    payload = {
        "kind": kind,
        "trade_id": str(trade.id),
        "signal_id": None if trade.signal_id is None else str(trade.signal_id),
        "symbol": trade.symbol,
        "side": trade.side.value,
        "status": trade.status.value,
        "mode": trade.mode.value,
        "amount": str(trade.amount),
        "entry_price": _text(trade.entry_price),
        "exit_price": _text(trade.exit_price),
        "stop_loss": _text(trade.stop_loss),
        "take_profit": _text(trade.take_profit),
        "pnl": _text(trade.pnl),
        "pnl_percent": _text(trade.pnl_percent),
        "exit_reason": None if trade.exit_reason is None else trade.exit_reason.value,
    }
    if fill is not None:
        payload |= {
            "fill_id": fill.id,
            "order_id": str(fill.order_id),
            "fill_amount": str(fill.amount),
            "fill_price": str(fill.price),
            "expected_price": _text(fill.expected_price),
            "fee": str(fill.fee),
        }
    return Event(
        type=EventType.TRADE,
        owner_id=trade.owner_id,
        trader_id=str(trade.trader_id),
        payload=payload,
        ts=time.time() if ts is None else ts,
    )


class BusNotifier:
    """`prices`: the engine's latest prices, which the published metrics value positions at.

    After new signals, fills and snapshots (`pnl_changed`) metrics are published by a task
    of their own, which gathers the changes of `COALESCE_SECONDS`, waits until the engine's
    `gate` is quiet (no screen, no stage on the way to an order at work; at most
    `QUIET_WAIT_SECONDS`), and then reads the metrics of all the traders that changed at
    once: a close that raises fifty traders' signals or fills their entries costs one read
    of their metrics instead of fifty, after its entries rather than among them. Signal
    and trade events go out through the outbox (see the module). `flush` waits for all
    that is pending.
    """

    def __init__(
        self, bus: EventBus, prices: Prices | None = None, gate: EngineGate | None = None
    ) -> None:
        self.bus = bus
        self.prices = prices
        self.gate = gate or EngineGate()
        self._changed: dict[uuid.UUID, int] = {}
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: list[Callable[[], Event]] = []
        self._sender: asyncio.Task[None] | None = None

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None:
        ts = time.time()
        for signal in signals:
            self._send(partial(signal_event, signal, "created", ts))
        if signals:
            await self.pnl_changed(spec.id, spec.owner_id)

    async def signal_changed(self, signal: Signal) -> None:
        self._send(partial(signal_event, signal, "updated", time.time()))

    async def trade_changed(self, trade: Trade, kind: str, fill: Fill | None = None) -> None:
        self._send(partial(trade_event, trade, kind, fill, time.time()))

    def _send(self, event: Callable[[], Event]) -> None:
        self._outbox.append(event)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all(), name="events")

    async def _send_all(self) -> None:
        while self._outbox:
            await self.gate.wait_quiet(EVENTS_WAIT_SECONDS)
            events, self._outbox = self._outbox, []
            for event in events:
                try:
                    built = event()
                except Exception:
                    log.exception("an event could not be built; the others go out")
                    continue
                await self.bus.publish(built)

    async def pnl_changed(self, trader_id: uuid.UUID, owner_id: int) -> None:
        self._changed[trader_id] = owner_id
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish(), name="pnl updates")

    async def _publish(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        while self._changed:
            await self.gate.wait_quiet(QUIET_WAIT_SECONDS)
            changed, self._changed = self._changed, {}
            try:
                await publish_metrics(self.bus, changed, self.prices)
            except Exception:
                log.exception("publishing the metrics of %d traders failed", len(changed))

    async def flush(self) -> None:
        """Wait until every pending event and metrics update is published."""
        while pending := [t for t in (self._sender, self._publisher) if t and not t.done()]:
            await asyncio.gather(*pending)
