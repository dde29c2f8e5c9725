"""Events, the in-memory broadcaster and the in-process bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from app.core.bus import create_event_bus
from app.core.events import (
    Audience,
    Broadcaster,
    Event,
    EventType,
    InProcessEventBus,
    candle_event,
    ticker_event,
)
from app.core.redis_bus import RedisEventBus
from app.core.settings import Settings

TIMEOUT = 5.0


def signal_event(owner_id: int = 1, trader_id: str = "t1", **payload: object) -> Event:
    return Event(type=EventType.SIGNAL, owner_id=owner_id, trader_id=trader_id, payload=payload)


async def next_event(stream: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(stream), TIMEOUT)


async def still_waiting(pending: asyncio.Future[Event]) -> bool:
    """True when a listener got nothing: deliveries are synchronous, so a few loop turns
    are enough for a delivered event to complete the pending read."""
    for _ in range(10):
        await asyncio.sleep(0)
    return not pending.done()


def test_event_round_trips_through_json_with_decimals_as_strings() -> None:
    event = signal_event(price=Decimal("0.000000012345678901"), symbol="BTC/USDT")

    parsed = Event.from_json(event.to_json())

    assert parsed.payload["price"] == "0.000000012345678901"
    assert (parsed.type, parsed.owner_id, parsed.trader_id, parsed.id, parsed.ts) == (
        event.type,
        event.owner_id,
        event.trader_id,
        event.id,
        event.ts,
    )
    assert parsed.version == 1


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '{"type": "signal"}', '{"type":"x","owner_id":"a","trader_id":"t",'
     '"payload":{},"id":"i","ts":1}', '{"type":"x","owner_id":1,"trader_id":"t",'
     '"payload":[1],"id":"i","ts":1}'],
)  # fmt: skip
def test_malformed_event_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError, match="malformed event"):
        Event.from_json(raw)


async def test_broadcaster_delivers_by_owner_trader_and_type() -> None:
    broadcaster = Broadcaster()
    owner_1 = broadcaster.listen(1, [EventType.SIGNAL, EventType.TRADE])
    trader_t2 = broadcaster.listen(1, [EventType.SIGNAL], trader_id="t2")
    owner_2 = broadcaster.listen(2, [EventType.SIGNAL])
    # Listeners register on their first iteration: start them before delivering.
    pending = [asyncio.ensure_future(anext(stream)) for stream in (owner_1, trader_t2, owner_2)]
    await asyncio.sleep(0)
    assert broadcaster.listener_count == 3

    broadcaster.deliver(signal_event(owner_id=1, trader_id="t1", n=1))
    broadcaster.deliver(Event(type=EventType.PNL, owner_id=1, trader_id="t2", payload={}))
    broadcaster.deliver(signal_event(owner_id=1, trader_id="t2", n=2))
    broadcaster.deliver(signal_event(owner_id=3, trader_id="t2", n=3))
    broadcaster.deliver(Event(type=EventType.TRADE, owner_id=2, trader_id="t1", payload={}))

    assert (await asyncio.wait_for(pending[0], TIMEOUT)).payload == {"n": 1}
    assert (await next_event(owner_1)).payload == {"n": 2}
    assert (await asyncio.wait_for(pending[1], TIMEOUT)).payload == {"n": 2}
    assert await still_waiting(pending[2])
    pending[2].cancel()


async def test_broadcaster_drops_oldest_for_a_slow_listener_and_unregisters_on_close() -> None:
    broadcaster = Broadcaster(max_queue=2)
    stream = broadcaster.listen(1, [EventType.SIGNAL])
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    broadcaster.deliver(signal_event(n=0))
    await asyncio.wait_for(first, TIMEOUT)

    for n in range(1, 5):
        broadcaster.deliver(signal_event(n=n))

    assert [(await next_event(stream)).payload["n"] for _ in range(2)] == [3, 4]
    assert broadcaster.dropped == 2
    await stream.aclose()
    assert broadcaster.listener_count == 0


async def test_in_process_bus_delivers_published_events_to_listeners() -> None:
    bus = InProcessEventBus()
    await bus.start()
    stream = bus.listen(7, [EventType.TRADER_STATUS], trader_id="t9")
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)

    event = Event(EventType.TRADER_STATUS, 7, "t9", {"status": "running"})
    await bus.publish(event)

    assert await asyncio.wait_for(pending, TIMEOUT) == event
    assert bus.published == 1
    await bus.stop()


def test_create_event_bus_follows_the_redis_setting() -> None:
    assert isinstance(create_event_bus(Settings(redis_url=None)), InProcessEventBus)
    bus = create_event_bus(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert isinstance(bus, RedisEventBus)
    assert bus.url == "redis://127.0.0.1:6379/0"


async def test_a_fanout_prepares_each_event_once_for_the_members_that_hear_it() -> None:
    broadcaster = Broadcaster()
    prepared: list[Event] = []

    def preparation() -> Callable[[Event], str]:
        def prepare(event: Event) -> str:
            prepared.append(event)
            return f"result of {event.payload['n']}"

        return prepare

    heard: dict[str, list[str]] = {name: [] for name in ("a", "b", "t2", "bob")}
    audiences = {"a": Audience(1), "b": Audience(1), "t2": Audience(1, "t2"), "bob": Audience(2)}
    leaves = [
        broadcaster.join(
            "doc", [EventType.SIGNAL], preparation, audiences[name], heard[name].append
        )
        for name in heard
    ]
    assert broadcaster.listener_count == 4

    broadcaster.deliver(signal_event(owner_id=1, trader_id="t1", n=1))
    broadcaster.deliver(signal_event(owner_id=2, trader_id="t9", n=2))
    broadcaster.deliver(signal_event(owner_id=3, trader_id="t1", n=3))
    broadcaster.deliver(Event(EventType.TRADE, 1, "t1", {"n": 4}))

    assert [event.payload["n"] for event in prepared] == [1, 2]
    assert heard == {"a": ["result of 1"], "b": ["result of 1"], "t2": [], "bob": ["result of 2"]}
    for leave in leaves:
        leave()
        leave()
    assert broadcaster.listener_count == 0


async def test_a_fanout_withholds_what_its_preparation_declines() -> None:
    broadcaster = Broadcaster()
    heard: list[Event] = []
    broadcaster.join(
        "doc",
        [EventType.CANDLE],
        lambda: lambda event: event if event.payload["symbol"] == "BTC/USDT" else None,
        Audience(None),
        heard.append,
    )

    broadcaster.deliver(candle_event("ETH/USDT", "1m", [0, 1, 2, 0.5, 1.5, 10]))
    broadcaster.deliver(candle_event("BTC/USDT", "1m", [0, 1, 2, 0.5, 1.5, 10]))
    broadcaster.deliver(signal_event(n=1))

    assert [event.payload["symbol"] for event in heard] == ["BTC/USDT"]


def test_market_events_belong_to_no_user_and_round_trip_through_json() -> None:
    event = ticker_event("BTC/USDT", 1_767_225_600_000, Decimal("64000.5"), Decimal("-1.25"))

    parsed = Event.from_json(event.to_json())

    assert (parsed.owner_id, parsed.trader_id) == (None, None)
    assert parsed.payload["last"] == "64000.5"
    assert parsed.payload["change_pct"] == "-1.25"
