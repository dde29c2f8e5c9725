"""Events that tell subscribers something changed, and the bus that carries them.

The database is the source of truth; an event only notifies. A lost event delays a screen
update, it never loses a signal or an order, so publishing never raises into the caller.

Each process keeps one `Broadcaster`: whatever transport delivers an event to the process
(in-process call or one Redis subscription), the broadcaster fans it out in memory to local
listeners, filtered by owner, trader and type. A listener either has a queue of its own
(`listen`) or joins a `Fanout` shared with others (`join`), whose `prepare` runs once per
event for all its members: the API's subscriptions share one per subscription document, so
a result is computed once however many clients asked for it.

Market events (candles, tickers) belong to no user: their `owner_id` is None, and so is the
audience of a market subscription.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

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
    - CANDLE (market, no owner): symbol, interval, time (open time, epoch ms), open, high,
      low, close, volume; a closed candle
    - TICKER (market, no owner): symbol, time (epoch ms), last, change_pct (24 h), bid, ask,
      base_volume, quote_volume

    A missing kind reads as "updated".

    Decimals travel as strings (`to_json` stringifies them), so no digit is lost on the way.
    """

    SIGNAL = "signal"
    TRADE = "trade"
    PNL = "pnl"
    TRADER_STATUS = "trader_status"
    BACKTEST = "backtest"
    CANDLE = "candle"
    TICKER = "ticker"


def _plain(value: object) -> str:
    """Decimals in positional notation (1e-8 reads 0.00000001); anything else as `str`."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


@dataclass(frozen=True, slots=True)
class Event:
    """`owner_id` and `trader_id` are None for market events, which are everyone's."""

    type: str
    owner_id: int | None
    trader_id: str | None
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
            owner_id, trader_id = data["owner_id"], data["trader_id"]
            return cls(
                type=str(data["type"]),
                owner_id=None if owner_id is None else int(owner_id),
                trader_id=None if trader_id is None else str(trader_id),
                payload=dict(data["payload"]),
                version=int(data.get("version", EVENT_VERSION)),
                id=str(data["id"]),
                ts=float(data["ts"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed event: {exc!r}") from None


def candle_event(symbol: str, interval: str, row: Sequence[float]) -> Event:
    """A closed candle from its row in ccxt's order: open time (epoch ms), open, high, low,
    close, volume."""
    time, open_, high, low, close, volume = row
    payload = {"symbol": symbol, "interval": interval, "time": int(time), "open": open_}
    payload |= {"high": high, "low": low, "close": close, "volume": volume}
    return Event(EventType.CANDLE, None, None, payload)


def ticker_event(
    symbol: str,
    time: int,
    last: Decimal,
    change_pct: Decimal | None = None,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    base_volume: Decimal | None = None,
    quote_volume: Decimal | None = None,
) -> Event:
    """A symbol's last price and 24-hour figures at `time` (epoch ms)."""
    payload = {"symbol": symbol, "time": time, "last": last, "change_pct": change_pct}
    payload |= {"bid": bid, "ask": ask, "base_volume": base_volume, "quote_volume": quote_volume}
    return Event(EventType.TICKER, None, None, payload)


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose events a listener hears: one owner's (of one trader, or all of them), or with
    `owner_id` None the market's, which are everyone's."""

    owner_id: int | None
    trader_id: str | None = None

    def hears(self, event: Event) -> bool:
        return self.trader_id is None or event.trader_id == self.trader_id


P = TypeVar("P")
Sink = Callable[[P], None]


class Fanout(Generic[P]):
    """Members that share one preparation of each event: `prepare` runs at most once per
    event, and only when a member hears it; returning None withholds the event from all.

    Members are kept by owner, so an event is looked at only by its owner's members: one
    user's events are never prepared for, nor handed to, another user's subscriptions.
    """

    def __init__(self, prepare: Callable[[Event], P | None]) -> None:
        self.prepare = prepare
        self._by_owner: dict[int | None, dict[Sink[P], Audience]] = {}

    def __len__(self) -> int:
        return sum(len(members) for members in self._by_owner.values())

    def add(self, audience: Audience, sink: Sink[P]) -> None:
        self._by_owner.setdefault(audience.owner_id, {})[sink] = audience

    def discard(self, audience: Audience, sink: Sink[P]) -> None:
        members = self._by_owner.get(audience.owner_id)
        if members is not None:
            members.pop(sink, None)
            if not members:
                del self._by_owner[audience.owner_id]

    def deliver(self, event: Event) -> None:
        members = self._by_owner.get(event.owner_id)
        if not members:
            return
        prepared: P | None = None
        for sink, audience in list(members.items()):
            if not audience.hears(event):
                continue
            if prepared is None:
                prepared = self.prepare(event)
                if prepared is None:
                    return
            sink(prepared)


class Broadcaster:
    """In-memory fan-out from one inbound stream of events to many filtered listeners.

    A `listen` queue that falls behind by `max_queue` events loses the oldest ones (counted
    in `dropped`) rather than growing without bound or slowing every other listener down;
    members of a fanout bound their own buffers and count what they drop in `dropped` too,
    and the subscribers closed for falling behind too far in `slow_closed`.
    """

    def __init__(self, max_queue: int = 1000) -> None:
        self._fanouts: dict[tuple[Hashable, frozenset[str]], Fanout[Any]] = {}
        # The fanouts with members of an owner, by event type and owner, with how many:
        # an event is looked at only by fanouts where someone may hear it.
        self._routes: dict[tuple[str, int | None], dict[Fanout[Any], int]] = {}
        self._max_queue = max_queue
        self._members = 0
        self.dropped = 0
        self.slow_closed = 0

    @property
    def listener_count(self) -> int:
        return self._members

    def deliver(self, event: Event) -> None:
        for fanout in list(self._routes.get((event.type, event.owner_id), ())):
            fanout.deliver(event)

    def join(
        self,
        key: Hashable,
        types: Iterable[str],
        preparation: Callable[[], Callable[[Event], P | None]],
        audience: Audience,
        sink: Sink[P],
    ) -> Callable[[], None]:
        """Add `sink` to the fanout of `key` for events of `types`, made with the `prepare`
        that `preparation` returns when this is its first member; returns the function
        that takes the member out again (once)."""
        kinds = frozenset(types)
        if not kinds:
            raise ValueError("a listener must hear at least one event type")
        fanout: Fanout[P] | None = self._fanouts.get((key, kinds))
        if fanout is None:
            fanout = self._fanouts[(key, kinds)] = Fanout(preparation())
        fanout.add(audience, sink)
        routes = [(kind, audience.owner_id) for kind in kinds]
        for route in routes:
            members = self._routes.setdefault(route, {})
            members[fanout] = members.get(fanout, 0) + 1
        self._members += 1
        joined = True

        def leave() -> None:
            nonlocal joined
            if not joined:
                return
            joined = False
            self._members -= 1
            fanout.discard(audience, sink)
            for route in routes:
                members = self._routes[route]
                members[fanout] -= 1
                if not members[fanout]:
                    del members[fanout]
                if not members:
                    del self._routes[route]
            if not len(fanout):
                del self._fanouts[(key, kinds)]

        return leave

    async def listen(
        self, owner_id: int | None, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """Yield the owner's events of these types, registered from the first iteration."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_queue)

        def put(event: Event) -> None:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

        leave = self.join(put, types, lambda: _as_is, Audience(owner_id, trader_id), put)
        try:
            while True:
                yield await queue.get()
        finally:
            leave()


def _as_is(event: Event) -> Event:
    return event


class EventBus(Protocol):
    """Publishes events to every process and lets this process listen to them."""

    broadcaster: Broadcaster

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, event: Event) -> None:
        """Send the event; failures are logged and counted, never raised."""

    def listen(
        self, owner_id: int | None, types: Iterable[str], trader_id: str | None = None
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
        self, owner_id: int | None, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        return self.broadcaster.listen(owner_id, types, trader_id)
