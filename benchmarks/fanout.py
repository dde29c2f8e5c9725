"""Fan-out benchmark: event delivery over GraphQL websockets, against raw Redis pub/sub.

    python -m benchmarks.fanout --subscribers 100 --rate 1000 --duration 10

Starts a private `redis-server` and one `traders serve` process (uvicorn, engine off, on a
throwaway SQLite database with one user and trader per subscriber), opens N
graphql-transport-ws subscriptions to `signalEvents`, then publishes events through Redis
at a fixed rate, each to one subscriber's trader, the way the engine publishes. Latency
runs from each event's scheduled send time to its arrival at the websocket client, so a
publisher that falls behind shows up as latency instead of hiding it. The baseline runs
in the same process right after: N raw Redis subscribers, one channel each, the same
events at the same rate, no GraphQL, no websockets.

Everything runs on this machine: the publisher and all clients in this process, the
server and Redis in their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.core.events import Event, EventType
from app.core.redis_bus import RedisEventBus
from app.db.config import close_db, init_db, migrate_db
from app.db.models import Trader
from app.services.users import create_user
from tests.events.live import ApiServer, RedisServer

SUBSCRIPTION = "subscription { signalEvents { eventId traderId kind symbol price } }"
CONNECT_TIMEOUT = 30.0


@dataclass
class Audience:
    """Who an event goes to: one subscriber's owner and trader."""

    owner_id: int
    trader_id: str
    token: str


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    latencies: list[float]
    published: int
    seconds: float
    server_cpu: float
    own_cpu: float

    def report(self) -> str:
        received = len(self.latencies)
        if not received:
            return f"{self.name:<22} no event received of {self.published}"
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(received - 1, int(received * 0.99))] * 1000
        return (
            f"{self.name:<22} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max "
            f"{ordered[-1] * 1000:7.2f} ms   {received / self.seconds:8.0f} deliveries/s   "
            f"lost {self.published - received}\n{'':<22} CPU: server {self.server_cpu:.0%} of "
            f"a core, this process (publisher and clients) {self.own_cpu:.0%}"
        )


class Meter:
    """Send times by event id, the latency of each arrival, and which subscribers a probe
    (an event id `probe:<trader id>:<n>`) has reached."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.probed: set[str] = set()
        self.arrived = asyncio.Event()

    def record(self, event_id: str) -> None:
        if event_id.startswith("probe:"):
            self.probed.add(event_id.split(":")[1])
            return
        sent = self.sent.pop(event_id, None)
        if sent is not None:
            self.latencies.append(time.perf_counter() - sent)
        self.arrived.set()


async def measure(
    name: str,
    server_pid: int,
    publish: Callable[[int, str, float], Awaitable[None]],
    meter: Meter,
    rate: float,
    count: int,
) -> Run:
    """Publish at the fixed rate, wait for the stragglers, and account for time and CPU."""
    server_before, own_before = cpu_seconds(server_pid), time.process_time()
    start = time.perf_counter()
    await publish_at_rate(publish, meter, rate, count)
    await drain(meter)
    seconds = time.perf_counter() - start
    return Run(
        name,
        meter.latencies,
        count,
        seconds,
        (cpu_seconds(server_pid) - server_before) / seconds,
        (time.process_time() - own_before) / seconds,
    )


async def publish_at_rate(
    publish: Callable[[int, str, float], Awaitable[None]], meter: Meter, rate: float, count: int
) -> None:
    """Publish `count` events, event i due at start + i / rate."""
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event_id = f"e{i}"
        meter.sent[event_id] = due
        await publish(i, event_id, due)


async def drain(meter: Meter, seconds: float = 2.0) -> None:
    """Give the last events time to arrive; stop early once every one has."""
    deadline = time.perf_counter() + seconds
    while meter.sent and time.perf_counter() < deadline:
        meter.arrived.clear()
        try:
            await asyncio.wait_for(meter.arrived.wait(), deadline - time.perf_counter())
        except TimeoutError:
            break


def signal_event(audience: Audience, event_id: str, i: int) -> Event:
    return Event(
        type=EventType.SIGNAL,
        owner_id=audience.owner_id,
        trader_id=audience.trader_id,
        payload={"kind": "created", "symbol": "BTC/USDT", "price": f"{60000 + i % 100}.5"},
        id=event_id,
    )


async def prepare_database(url: str, subscribers: int) -> list[Audience]:
    await migrate_db(url)
    await close_db()
    await init_db(url)
    try:
        audiences = []
        for n in range(subscribers):
            user, token = await create_user(f"bench-{n}")
            trader = await Trader.create(owner=user, name=f"bench-{n}")
            audiences.append(Audience(user.id, str(trader.id), token))
        return audiences
    finally:
        await close_db()


async def graphql_subscriber(url: str, audience: Audience, meter: Meter) -> asyncio.Task[None]:
    """Subscribe over one websocket; the returned reader task closes it when cancelled."""
    websocket = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    init = {"type": "connection_init", "payload": {"token": audience.token}}
    await websocket.send(json.dumps(init))
    ack = json.loads(await websocket.recv())
    if ack["type"] != "connection_ack":
        raise RuntimeError(f"connection refused: {ack}")
    await websocket.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    )

    async def read() -> None:
        try:
            async for raw in websocket:
                message = json.loads(raw)
                if message["type"] == "next":
                    meter.record(message["payload"]["data"]["signalEvents"]["eventId"])
                elif message["type"] == "ping":
                    await websocket.send('{"type":"pong"}')
                elif message["type"] in ("error", "complete"):
                    raise RuntimeError(f"subscription ended: {message}")
        finally:
            await websocket.close()

    return asyncio.create_task(read())


async def until_all_live(
    audiences: Sequence[Audience],
    publish: Callable[[Audience, str], Awaitable[None]],
    meter: Meter,
) -> None:
    """Probe every subscriber until each has received one event (bounded): a server
    registers a subscription some time after accepting it, invisibly to the client."""
    for attempt in range(100):
        waiting = [a for a in audiences if a.trader_id not in meter.probed]
        if not waiting:
            return
        for audience in waiting:
            await publish(audience, f"probe:{audience.trader_id}:{attempt}")
        await asyncio.sleep(0.2)
    raise TimeoutError("some subscribers never received an event")


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_graphql(
    server: ApiServer, redis_url: str, audiences: Sequence[Audience], rate: float, count: int
) -> Run:
    meter = Meter()
    bus = RedisEventBus(redis_url)
    await bus.start()
    readers = [await graphql_subscriber(server.ws_url, a, meter) for a in audiences]
    try:

        async def probe(audience: Audience, event_id: str) -> None:
            await bus.publish(signal_event(audience, event_id, 0))

        await asyncio.wait_for(until_all_live(audiences, probe, meter), CONNECT_TIMEOUT)

        async def publish(i: int, event_id: str, due: float) -> None:
            await bus.publish(signal_event(audiences[i % len(audiences)], event_id, i))

        return await measure("graphql over websocket", server.pid, publish, meter, rate, count)
    finally:
        await stop(readers)
        await bus.stop()


async def run_raw_redis(
    redis: RedisServer, audiences: Sequence[Audience], rate: float, count: int
) -> Run:
    redis_url, redis_pid = redis.url, redis.pid
    meter = Meter()
    publisher = Redis.from_url(redis_url)
    subscribers = [Redis.from_url(redis_url) for _ in audiences]
    pubsubs = []
    for client, audience in zip(subscribers, audiences, strict=True):
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"bench:{audience.trader_id}")
        pubsubs.append(pubsub)

    async def read(pubsub: object) -> None:
        async for message in pubsub.listen():  # type: ignore[attr-defined]
            meter.record(Event.from_json(message["data"]).id)

    readers = [asyncio.create_task(read(pubsub)) for pubsub in pubsubs]
    try:

        async def probe(audience: Audience, event_id: str) -> None:
            event = signal_event(audience, event_id, 0)
            await publisher.publish(f"bench:{audience.trader_id}", event.to_json())

        await asyncio.wait_for(until_all_live(audiences, probe, meter), CONNECT_TIMEOUT)

        async def publish(i: int, event_id: str, due: float) -> None:
            audience = audiences[i % len(audiences)]
            event = signal_event(audience, event_id, i)
            await publisher.publish(f"bench:{audience.trader_id}", event.to_json())

        return await measure("raw redis pub/sub", redis_pid, publish, meter, rate, count)
    finally:
        await stop(readers)
        for pubsub in pubsubs:
            await pubsub.aclose()
        for client in [publisher, *subscribers]:
            await client.aclose()


async def main(subscribers: int, rate: float, duration: float) -> None:
    count = int(rate * duration)
    with tempfile.TemporaryDirectory(prefix="fanout-") as directory:
        root = Path(directory)
        redis = RedisServer(root)
        redis.start()
        database_url = f"sqlite://{root / 'bench.sqlite3'}"
        audiences = await prepare_database(database_url, subscribers)
        server = ApiServer(database_url, redis.url, root / "server.log")
        server.start()
        try:
            graphql = await run_graphql(server, redis.url, audiences, rate, count)
            baseline = await run_raw_redis(redis, audiences, rate, count)
        finally:
            server.stop()
            redis.stop()
    print(f"{subscribers} subscribers, {rate:.0f} events/s for {duration:.0f} s ({count} events)")
    print(graphql.report())
    print(baseline.report())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.subscribers, args.rate, args.duration))
