"""Events that tell subscribers something changed, and the bus that carries them.

The database is the source of truth; an event only notifies. A lost event delays a screen
update, it never loses a signal or an order, so publishing never raises into the caller.

Each process keeps one `Broadcaster`: whatever transport delivers an event to the process
(in-process call or one Redis subscription), the broadcaster fans it out in memory to local
listeners, filtered by owner, trader and type.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Protocol

EVENT_VERSION = 1


class EventType:
    """What changed. Payload keys the subscriptions read (all optional, extra keys ignored):

    - SIGNAL: kind ("created", "updated", ...), signal_id, symbol, interval, side, status,
      reason (why it has that status), price, score, indicators, candle_time
      (ISO 8601)
    - TRADE: kind ("opened", "filled", "closed", "cancelled"), trade_id, signal_id, symbol,
      side, status, mode, amount, entry_price, exit_price, stop_loss, take_profit, pnl,
      pnl_percent, exit_reason; with kind filled also fill_id, order_id, fill_amount,
      fill_price, expected_price, fee
    - PNL: the trader's metrics after the change, the fields of `app.domain.metrics.Metrics`
      (total_signals, active_positions, closed_positions, total_pnl, total_pnl_percent,
      win_rate, avg_win, avg_loss, last_signal_at, expectancy, profit_factor, fees_paid,
      unrealised_pnl, equity, max_drawdown, sharpe_ratio, sortino_ratio, time_in_market),
      optionally per mode under "demo", "live"
    - TRADER_STATUS: kind ("created", "updated", "deleted", ...), status, reason, enabled,
      mode
    - BACKTEST: backtest_id, status, progress (0-1), closes_done, closes_total, reason; the
      event's trader_id is the backtested trader's, empty for an unsaved one

    A missing kind reads as "updated".

    Decimals travel as strings (`to_json` stringifies them), so no digit is lost on the way.
    """

    SIGNAL = "signal"
    TRADE = "trade"
    PNL = "pnl"
    TRADER_STATUS = "trader_status"
    BACKTEST = "backtest"


def _plain(value: object) -> str:
    """Decimals in positional notation (1e-8 reads 0.00000001); anything else as `str`."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    owner_id: int
    trader_id: str
    payload: dict[str, Any]
    version: int = EVENT_VERSION
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_plain, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        """Parse one event; anything malformed is a `ValueError`, whatever part is wrong."""
        try:
            data = json.loads(raw)
            return cls(
                type=str(data["type"]),
                owner_id=int(data["owner_id"]),
                trader_id=str(data["trader_id"]),
                payload=dict(data["payload"]),
                version=int(data.get("version", EVENT_VERSION)),
                id=str(data["id"]),
                ts=float(data["ts"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed event: {exc!r}") from None


@dataclass(slots=True, eq=False)
class _Listener:
    owner_id: int
    trader_id: str | None
    types: frozenset[str]
    queue: asyncio.Queue[Event]

    def wants(self, event: Event) -> bool:
        return (
            event.owner_id == self.owner_id
            and event.type in self.types
            and (self.trader_id is None or event.trader_id == self.trader_id)
        )


class Broadcaster:
    """In-memory fan-out from one inbound stream of events to many filtered listeners.

    A listener that falls behind by `max_queue` events loses the oldest ones (counted in
    `dropped`) rather than growing without bound or slowing every other listener down.
    """

    def __init__(self, max_queue: int = 1000) -> None:
        self._by_owner: dict[int, set[_Listener]] = {}
        self._max_queue = max_queue
        self.dropped = 0

    @property
    def listener_count(self) -> int:
        return sum(len(listeners) for listeners in self._by_owner.values())

    def deliver(self, event: Event) -> None:
        for listener in self._by_owner.get(event.owner_id, ()):
            if not listener.wants(event):
                continue
            if listener.queue.full():
                listener.queue.get_nowait()
                self.dropped += 1
            listener.queue.put_nowait(event)

    async def listen(
        self, owner_id: int, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """Yield the owner's events of these types, registered from the first iteration."""
        listener = _Listener(owner_id, trader_id, frozenset(types), asyncio.Queue(self._max_queue))
        self._by_owner.setdefault(owner_id, set()).add(listener)
        try:
            while True:
                yield await listener.queue.get()
        finally:
            owners = self._by_owner.get(owner_id)
            if owners is not None:
                owners.discard(listener)
                if not owners:
                    del self._by_owner[owner_id]


class EventBus(Protocol):
    """Publishes events to every process and lets this process listen to them."""

    broadcaster: Broadcaster

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, event: Event) -> None:
        """Send the event; failures are logged and counted, never raised."""

    def listen(
        self, owner_id: int, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]: ...


class InProcessEventBus:
    """The embedded default: events reach the listeners of this process only."""

    def __init__(self) -> None:
        self.broadcaster = Broadcaster()
        self.published = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, event: Event) -> None:
        self.published += 1
        self.broadcaster.deliver(event)

    def listen(
        self, owner_id: int, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        return self.broadcaster.listen(owner_id, types, trader_id)
