"""The Redis event bus against real Redis servers: the machine's, and private killable ones."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from app.core.events import Event, EventType
from app.core.redis_bus import RedisEventBus
from tests.events.live import RedisServer, free_port, until

TIMEOUT = 10.0


def trade_event(n: int, owner_id: int = 1) -> Event:
    return Event(type=EventType.TRADE, owner_id=owner_id, trader_id="t1", payload={"n": n})


async def started(bus: RedisEventBus) -> RedisEventBus:
    await bus.start()
    await asyncio.wait_for(bus.wait_subscribed(), TIMEOUT)
    return bus


async def listening(bus: RedisEventBus, owner_id: int = 1) -> AsyncIterator[Event]:
    """A listener that is registered when this returns (the broadcaster registers a
    listener on its first read, so the first read starts here)."""
    stream = bus.listen(owner_id, [EventType.TRADE])
    before = bus.broadcaster.listener_count
    first = asyncio.ensure_future(anext(stream))
    await until(lambda: bus.broadcaster.listener_count > before)

    async def events() -> AsyncIterator[Event]:
        yield await first
        async for event in stream:
            yield event

    return events()


async def test_an_event_published_by_one_process_reaches_listeners_of_every_process(
    redis_url: str, channel: str
) -> None:
    one = await started(RedisEventBus(redis_url, channel))
    two = await started(RedisEventBus(redis_url, channel))
    try:
        on_one, on_two = await listening(one), await listening(two)
        event = trade_event(1)

        await one.publish(event)

        assert await asyncio.wait_for(anext(on_two), TIMEOUT) == event
        assert await asyncio.wait_for(anext(on_one), TIMEOUT) == event
        assert (one.published, one.publish_failures, two.received) == (1, 0, 1)
    finally:
        await one.stop()
        await two.stop()


async def test_a_malformed_message_is_counted_and_skipped(redis_url: str, channel: str) -> None:
    bus = await started(RedisEventBus(redis_url, channel))
    raw = Redis.from_url(redis_url)
    try:
        stream = await listening(bus)
        await raw.publish(channel, b"\xff not an event")
        await bus.publish(trade_event(2))

        assert (await asyncio.wait_for(anext(stream), TIMEOUT)).payload == {"n": 2}
        assert bus.malformed == 1
    finally:
        await raw.aclose()
        await bus.stop()


async def test_stop_ends_the_subscription(redis_url: str, channel: str) -> None:
    bus = await started(RedisEventBus(redis_url, channel))
    raw = Redis.from_url(redis_url)
    try:
        assert await raw.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await bus.stop()
        assert await raw.pubsub_numsub(channel) == [(channel.encode(), 0)]
        assert not bus.subscribed
    finally:
        await raw.aclose()


async def test_publishing_without_redis_is_counted_not_raised(channel: str) -> None:
    bus = RedisEventBus(f"redis://127.0.0.1:{free_port()}/0", channel, max_backoff=0.1)
    await bus.start()
    try:
        await bus.publish(trade_event(1))
        await bus.publish(trade_event(2))

        assert (bus.published, bus.publish_failures) == (0, 2)
        await until(lambda: bus.subscription_errors >= 2)
        assert not bus.subscribed
    finally:
        await bus.stop()


async def test_publishing_on_a_bus_not_started_is_counted_not_raised(channel: str) -> None:
    bus = RedisEventBus("redis://127.0.0.1:6379/0", channel)

    await bus.publish(trade_event(1))

    assert (bus.published, bus.publish_failures) == (0, 1)


async def test_listeners_resume_by_themselves_when_redis_comes_back(
    redis_server: RedisServer, channel: str
) -> None:
    bus = await started(RedisEventBus(redis_server.url, channel, max_backoff=0.2))
    try:
        stream = await listening(bus)
        await bus.publish(trade_event(1))
        assert (await asyncio.wait_for(anext(stream), TIMEOUT)).payload == {"n": 1}

        redis_server.stop()
        await until(lambda: not bus.subscribed)
        await bus.publish(trade_event(2))
        assert bus.publish_failures == 1

        redis_server.start()
        await asyncio.wait_for(bus.wait_subscribed(), TIMEOUT)
        await bus.publish(trade_event(3))

        assert (await asyncio.wait_for(anext(stream), TIMEOUT)).payload == {"n": 3}
        assert (bus.published, bus.reconnects) == (2, 1)
    finally:
        await bus.stop()


async def test_a_publishing_task_that_is_cancelled_stops(redis_url: str, channel: str) -> None:
    """Whenever the cancellation arrives, also as redis-py completes a send or a
    connection's handshake (its wait_for can swallow the cancellation on Python 3.11):
    a market publisher cancelled at that moment never stopped."""
    bus = RedisEventBus(redis_url, channel)
    await bus.start()
    given_up = asyncio.Event()  # ends a task that lost its cancellation, if one does

    async def publishing() -> None:
        for n in itertools.count():
            if given_up.is_set():
                return
            await bus.publish(trade_event(n))

    task = None
    try:
        for attempt in range(200):
            task = asyncio.create_task(publishing())
            await asyncio.sleep(random.uniform(0, 0.003))
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=TIMEOUT)
            assert done, f"attempt {attempt}: the cancelled task is still publishing"
            assert task.cancelled()
    finally:
        given_up.set()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await bus.stop()


async def test_a_bus_stops_whenever_it_is_stopped(redis_url: str, channel: str) -> None:
    """Also while its reader is connecting and subscribing (the same swallowed
    cancellation would keep the reader, and so `stop`, running)."""
    for attempt in range(100):
        bus = RedisEventBus(redis_url, channel)
        await bus.start()
        reader = bus._reader
        await asyncio.sleep(random.uniform(0, 0.005))
        stopping = asyncio.ensure_future(bus.stop())
        done, _ = await asyncio.wait({stopping}, timeout=TIMEOUT)
        while reader is not None and not reader.done():  # a failed attempt's leftover
            reader.cancel()
            await asyncio.sleep(0.01)
        assert done, f"attempt {attempt}: the bus did not stop"
