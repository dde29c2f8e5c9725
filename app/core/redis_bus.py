"""The event bus across processes: Redis pub/sub on one channel.

Each process holds exactly one Redis subscription, read by one task that feeds the
process's `Broadcaster`; websocket subscribers never get a Redis connection of their own.
A process receives its own events through Redis too, so every listener anywhere sees one
order of events.

Redis is a notifier, not a store: while it is down, `publish` logs and counts the failure
and returns (the caller's transaction has already committed), and the reader retries with
exponential backoff capped at `max_backoff`, for as long as the bus runs, so that open
subscriptions resume by themselves when Redis is back. Events published during the outage
are lost, which the database as the source of truth makes harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.events import Broadcaster, Event

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "traders:events"


def _cancel_requests() -> int:
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def _raise_a_lost_cancellation(cancel_requests: int) -> None:
    """Raise the cancellation redis-py swallowed since the task had `cancel_requests`.

    redis-py's connections call `asyncio.wait_for` themselves (a command under a socket
    timeout, the handshake of a new connection), which on Python 3.11 drops a cancellation
    arriving as the call completes: a task cancelled at that moment, the market publisher
    or the subscription reader, then never stopped. The request still counts on the task.
    """
    if _cancel_requests() > cancel_requests:
        raise asyncio.CancelledError


class RedisEventBus:
    """Publishes to a Redis channel and fans the channel out to this process's listeners.

    Counters are plain integers for metrics to read: `published`, `publish_failures`,
    `received`, `malformed` (unparseable messages, skipped), `subscription_errors` (failed
    or lost subscriptions) and `reconnects` (subscriptions re-established after a loss).
    """

    def __init__(
        self,
        url: str,
        channel: str = DEFAULT_CHANNEL,
        *,
        publish_timeout: float = 1.0,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        health_check_interval: int = 10,
    ) -> None:
        self.url = url
        self.channel = channel
        self.broadcaster = Broadcaster()
        self.published = 0
        self.publish_failures = 0
        self.received = 0
        self.malformed = 0
        self.reconnects = 0
        self.subscription_errors = 0
        self._publish_timeout = publish_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._health_check_interval = health_check_interval
        self._publisher: Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._failing = False
        self._ever_subscribed = False

    @property
    def subscribed(self) -> bool:
        """True while the process's Redis subscription is up."""
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        """Return once the Redis subscription is up (wrap in a timeout)."""
        await self._subscribed.wait()

    async def start(self) -> None:
        if self._reader is not None:
            return
        # One retry lets a pooled connection that went stale (Redis restarted) reconnect;
        # more would hold the committed mutation up while Redis is down.
        self._publisher = Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=self._publish_timeout,
            socket_timeout=self._publish_timeout,
        )
        self._reader = asyncio.create_task(self._read_forever(), name="redis-event-bus-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
        self._subscribed.clear()

    async def publish(self, event: Event) -> None:
        """Send the event to every process; a failure is logged and counted, never raised.

        Any exception is caught, not only Redis errors: the caller's change is committed
        and must be reported as done whatever went wrong with the notification. A
        cancellation is not: it is raised, also one that redis-py swallowed.
        """
        cancel_requests = _cancel_requests()
        try:
            if self._publisher is None:
                raise RuntimeError("the event bus is not started")
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that arrives as the publish completes, and a publisher task
            # cancelled at that moment would then never stop.
            async with asyncio.timeout(self._publish_timeout):
                await self._publisher.publish(self.channel, event.to_json())
        except Exception as exc:
            self.publish_failures += 1
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "event %s (%s) not published: %r", event.id, event.type, exc)
            self._failing = True
        else:
            self.published += 1
            if self._failing:
                self._failing = False
                log.info("event publishing recovered after %d failures", self.publish_failures)
        _raise_a_lost_cancellation(cancel_requests)

    def listen(
        self, owner_id: int | None, types: Iterable[str], trader_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        return self.broadcaster.listen(owner_id, types, trader_id)

    async def _read_forever(self) -> None:
        failures = 0
        cancel_requests = _cancel_requests()
        while True:
            _raise_a_lost_cancellation(cancel_requests)
            try:
                await self._read_subscription(cancel_requests)
            except Exception as exc:
                if self._subscribed.is_set():
                    self._subscribed.clear()
                    failures = 0
                self.subscription_errors += 1
                delay = min(self._max_backoff, self._min_backoff * 2**failures)
                delay *= random.uniform(0.5, 1.0)
                level = logging.WARNING if failures == 0 else logging.DEBUG
                log.log(level, "event subscription down (%r); retrying in %.2fs", exc, delay)
                failures += 1
                await asyncio.sleep(delay)

    async def _read_subscription(self, cancel_requests: int) -> None:
        """Subscribe and feed the broadcaster until the connection fails (it never returns).

        The subscription counts as up only once Redis confirms it, so that an event
        published after `wait_subscribed()` is certain to arrive.
        """
        client = Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._publish_timeout,
            socket_keepalive=True,
            health_check_interval=self._health_check_interval,
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(self.channel)
                while True:
                    _raise_a_lost_cancellation(cancel_requests)
                    message = await pubsub.get_message(timeout=self._health_check_interval)
                    if message is not None:
                        self._handle(message)
        finally:
            await client.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            if self._ever_subscribed:
                self.reconnects += 1
                log.info("event subscription resumed")
            self._ever_subscribed = True
            self._subscribed.set()
        elif kind == "message":
            self.received += 1
            try:
                event = Event.from_json(message["data"])
            except ValueError as exc:
                self.malformed += 1
                log.warning("ignored a malformed event on %s: %s", self.channel, exc)
                return
            self.broadcaster.deliver(event)
