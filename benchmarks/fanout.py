"""Fan-out benchmark: event delivery over GraphQL websockets, against raw Redis pub/sub.

    python -m benchmarks.fanout --subscribers 100 --rate 1000 --duration 10
    python -m benchmarks.fanout --broadcast      # and the broadcast and market cases

Starts a private `redis-server` and one `traders serve` process (uvicorn, engine off, on a
throwaway SQLite database with one user and trader per subscriber), opens N
graphql-transport-ws subscriptions to `signalEvents`, then publishes events through Redis
at a fixed rate, each to one subscriber's trader, the way the engine publishes (routed).
Latency runs from each event's scheduled send time to its arrival at the websocket
client, so a publisher that falls behind shows up as latency instead of hiding it. The
baseline runs in the same process right after: N raw Redis subscribers, one channel each,
the same events at the same rate, no GraphQL, no websockets.

With `--broadcast` the same run adds: N subscribers of one user, all to the same document,
every event to all of them at `--broadcast-rate` events/s (N deliveries per event); the
raw Redis baseline of that shape (N subscribers of one channel); and the market case,
`--market-subscribers` websockets on `--market-symbols` symbols (a `candles` subscription
each, the symbols spread evenly) receiving one candle close of every symbol, published
back to back as the engine's market publisher does.

Everything runs on this machine: the publisher and all clients in this process, the
server and Redis in their own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from app.core.events import Event, EventType, candle_event
from app.core.redis_bus import DEFAULT_CHANNEL
from app.db.config import close_db, init_db, migrate_db
from app.db.models import Trader
from app.services.users import create_user
from tests.events.live import ApiServer, RedisServer

SUBSCRIPTION = "subscription { signalEvents { eventId traderId kind symbol price } }"
CANDLES = """subscription($symbol: String!) {
  candles(symbol: $symbol, interval: "1m") { symbol time close }
}"""
CONNECT_TIMEOUT = 180.0
MINUTE_MS = 60_000


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
    expected: int
    seconds: float
    server_cpu: float
    own_cpu: float
    server_counts: str = ""

    def report(self) -> str:
        received = len(self.latencies)
        if not received:
            return f"{self.name:<24} no event received of {self.expected}"
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(received - 1, int(received * 0.99))] * 1000
        return (
            f"{self.name:<24} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max "
            f"{ordered[-1] * 1000:7.2f} ms   {received / self.seconds:8.0f} deliveries/s   "
            f"lost {self.expected - received} of {self.expected}\n{'':<24} CPU: server "
            f"{self.server_cpu:.0%} of a core, this process (publisher and clients) "
            f"{self.own_cpu:.0%}{self.server_counts}"
        )


class Meter:
    """Send times by event key, how many arrivals are still outstanding, the latency of
    each arrival, and, while `probing`, which subscribers an event has reached at all."""

    def __init__(self) -> None:
        self.probing = True
        self.sent: dict[str, float] = {}
        self.outstanding = 0
        self.latencies: list[float] = []
        self.probed: set[int] = set()
        self.all_arrived = asyncio.Event()

    def expect(self, key: str, sent: float, arrivals: int) -> None:
        self.sent[key] = sent
        self.outstanding += arrivals

    def record(self, key: str, subscriber: int) -> None:
        if self.probing:
            self.probed.add(subscriber)
            return
        sent = self.sent.get(key)
        if sent is None:
            return
        self.latencies.append(time.perf_counter() - sent)
        self.outstanding -= 1
        if not self.outstanding:
            self.all_arrived.set()


# What event i (with its id) is on the wire: its channel and its JSON.
Message = Callable[[int, str], tuple[str, str]]


async def measure(
    name: str, server_pid: int, meter: Meter, work: Callable[[], Awaitable[int]]
) -> Run:
    """Run `work` (it returns how many deliveries it expects), wait for the stragglers,
    and account for time and CPU."""
    server_before, own_before = cpu_seconds(server_pid), time.process_time()
    start = time.perf_counter()
    expected = await work()
    await drain(meter)
    seconds = time.perf_counter() - start
    return Run(
        name,
        list(meter.latencies),
        expected,
        seconds,
        (cpu_seconds(server_pid) - server_before) / seconds,
        (time.process_time() - own_before) / seconds,
    )


SERVER_COUNTERS = {
    "traders_events_received_total": "received from Redis",
    "traders_events_dropped_total": "dropped",
    "traders_websockets_closed_slow_total": "websockets closed as slow",
}


async def server_counters(server: ApiServer) -> dict[str, float]:
    """The server's event counters, from its /metrics."""
    async with httpx.AsyncClient(timeout=CONNECT_TIMEOUT) as client:
        text = (await client.get(server.http_url.replace("/graphql", "/metrics"))).text
    values = dict(line.split(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(values.get(name, "nan")) for name in SERVER_COUNTERS}


async def measure_server(
    name: str, server: ApiServer, meter: Meter, work: Callable[[], Awaitable[int]]
) -> Run:
    """`measure`, and what the server counted meanwhile (events it received, dropped)."""
    before = await server_counters(server)
    run = await measure(name, server.pid, meter, work)
    after = await server_counters(server)
    counts = ", ".join(
        f"{label} {after[metric] - before[metric]:.0f}" for metric, label in SERVER_COUNTERS.items()
    )
    run.server_counts = f"; server: {counts}"
    return run


def cpu_share(seconds: float = 1.0) -> float:
    """The share of a core a busy process gets on this machine now (it is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def publish_at_rate(
    redis: Redis,
    message: Message,
    meter: Meter,
    rate: float,
    count: int,
    arrivals: int,
    tick: float = 0.0,
) -> int:
    """Publish `count` events, event i due at start + i / rate, each awaited by `arrivals`
    subscribers; returns the deliveries expected. The publisher wakes every `tick` seconds
    (at each event's due time when 0) and sends the events due by then in one pipeline, so
    that a round trip to Redis slower than 1 / rate (on a shared machine) does not hold it
    back; latency still runs from each event's own due time, the wait for the tick included."""
    start = time.perf_counter()
    i = 0
    while i < count:
        due = start + i / rate
        wake = due if not tick else start + tick * math.ceil((due - start) / tick)
        delay = wake - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pipeline = redis.pipeline(transaction=False)
        now = time.perf_counter()
        while i < count and start + i / rate <= now:
            event_id = f"e{i}"
            meter.expect(event_id, start + i / rate, arrivals)
            pipeline.publish(*message(i, event_id))
            i += 1
        await pipeline.execute()
    return count * arrivals


async def drain(meter: Meter, seconds: float = 3.0) -> None:
    """Give the last events time to arrive; stop early once every one has."""
    meter.all_arrived.clear()  # set whenever the clients caught up during the run
    if meter.outstanding:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(meter.all_arrived.wait(), seconds)


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


class WebsocketClient(asyncio.Protocol):
    """A minimal graphql-transport-ws client on a plain asyncio protocol (RFC 6455 framing):
    the measuring side must not be what saturates. It splits the unmasked server frames as
    the bytes arrive, without a task or a stream buffer in between, answers pings, and finds
    a signal event's id without parsing the whole message; anything it does not expect
    ends the run with an error."""

    def __init__(self, subscriber: int, meter: Meter, init: str, subscribe: str) -> None:
        self.subscriber = subscriber
        self.meter = meter
        self.init = init
        self.subscribe = subscribe
        self.buffer = bytearray()
        self.upgraded = False
        self.acknowledged = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, text: str, opcode: int = 0x1) -> None:
        payload = text.encode()
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        else:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.transport.write(header + mask + masked)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(RuntimeError(f"websocket refused: {bytes(buffer)!r}"))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.send(self.init)
        try:
            del buffer[: self._frames(buffer)]
        except RuntimeError as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        for future in (self.acknowledged, self.closed):
            if not future.done():
                future.set_exception(exc)
        self.transport.close()

    def _frames(self, buffer: bytearray) -> int:
        """Handle the complete frames in `buffer`; returns how many bytes they took."""
        position, size = 0, len(buffer)
        while size - position >= 2:
            opcode, length, start = buffer[position] & 0x0F, buffer[position + 1] & 0x7F, 2
            if length == 126:
                if size - position < 4:
                    break
                length, start = int.from_bytes(buffer[position + 2 : position + 4], "big"), 4
            elif length == 127:
                if size - position < 10:
                    break
                length, start = int.from_bytes(buffer[position + 2 : position + 10], "big"), 10
            end = position + start + length
            if end > size:
                break
            payload = bytes(buffer[position + start : end])
            position = end
            if opcode == 0x1:
                self._message(payload)
            elif opcode == 0x9:
                self.send(payload.decode(), 0xA)
            elif opcode == 0x8:
                raise RuntimeError(f"closed by the server: {payload!r}")
        return position

    def _message(self, payload: bytes) -> None:
        if b'"type":"next"' not in payload:
            if b'"type":"connection_ack"' not in payload:
                raise RuntimeError(f"unexpected message: {payload!r}")
            self.send(self.subscribe)
            self.acknowledged.set_result(None)
            return
        found = payload.find(b'"eventId":"')
        if found >= 0:
            start = found + len(b'"eventId":"')
            key = payload[start : payload.index(b'"', start)].decode()
        else:
            key = result_key(json.loads(payload)["payload"]["data"])
        self.meter.record(key, self.subscriber)


async def graphql_subscriber(
    url: str,
    token: str,
    subscriber: int,
    meter: Meter,
    query: str = SUBSCRIPTION,
    variables: dict[str, Any] | None = None,
) -> asyncio.Task[None]:
    """Subscribe over one websocket; the returned task closes it when cancelled."""
    host, port = url.removeprefix("ws://").split("/", 1)[0].split(":")
    init = json.dumps({"type": "connection_init", "payload": {"token": token}})
    payload = {"query": query, "variables": variables or {}}
    subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": payload})
    transport, client = await asyncio.get_running_loop().create_connection(
        lambda: WebsocketClient(subscriber, meter, init, subscribe), host, int(port)
    )
    await asyncio.wait_for(client.acknowledged, CONNECT_TIMEOUT)

    async def until_closed() -> None:
        try:
            await client.closed
        finally:
            transport.close()

    return asyncio.create_task(until_closed())


def result_key(data: dict[str, Any]) -> str:
    """What identifies a result: a signal event's id, a candle's symbol and time."""
    if "signalEvents" in data:
        return str(data["signalEvents"]["eventId"])
    candle = data["candles"]
    return f"{candle['symbol']}@{candle['time']}"


async def until_all_live(
    subscribers: int, probe: Callable[[int, set[int]], Awaitable[None]], meter: Meter
) -> None:
    """Probe until every subscriber has received one event (bounded): a server registers
    a subscription some time after accepting it, invisibly to the client. `probe` gets the
    attempt and the subscribers still waiting; the caller bounds the time it may take."""
    for attempt in itertools.count():
        waiting = set(range(subscribers)) - meter.probed
        if not waiting:
            await asyncio.sleep(0.5)  # the last probes' stragglers
            meter.probing = False
            return
        await probe(attempt, waiting)
        await asyncio.sleep(0.2)


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_routed(
    server: ApiServer,
    redis_url: str,
    audiences: Sequence[Audience],
    rate: float,
    count: int,
    tick: float,
) -> Run:
    """One subscriber per user, each event to one of them."""
    meter = Meter()
    redis = Redis.from_url(redis_url)
    readers = [
        await graphql_subscriber(server.ws_url, a.token, n, meter) for n, a in enumerate(audiences)
    ]
    try:

        async def probe(attempt: int, waiting: set[int]) -> None:
            for n in waiting:
                event = signal_event(audiences[n], f"probe:{attempt}", 0)
                await redis.publish(DEFAULT_CHANNEL, event.to_json())

        await asyncio.wait_for(until_all_live(len(audiences), probe, meter), CONNECT_TIMEOUT)

        def message(i: int, event_id: str) -> tuple[str, str]:
            event = signal_event(audiences[i % len(audiences)], event_id, i)
            return DEFAULT_CHANNEL, event.to_json()

        return await measure_server(
            "graphql routed",
            server,
            meter,
            lambda: publish_at_rate(redis, message, meter, rate, count, 1, tick),
        )
    finally:
        await stop(readers)
        await redis.aclose()


async def run_broadcast(
    server: ApiServer,
    redis_url: str,
    audience: Audience,
    subscribers: int,
    rate: float,
    count: int,
    tick: float,
) -> Run:
    """`subscribers` websockets of one user, one document, every event to all of them."""
    meter = Meter()
    redis = Redis.from_url(redis_url)
    readers = [
        await graphql_subscriber(server.ws_url, audience.token, n, meter)
        for n in range(subscribers)
    ]
    try:

        async def probe(attempt: int, waiting: set[int]) -> None:
            event = signal_event(audience, f"probe:{attempt}", 0)
            await redis.publish(DEFAULT_CHANNEL, event.to_json())

        await asyncio.wait_for(until_all_live(subscribers, probe, meter), CONNECT_TIMEOUT)

        def message(i: int, event_id: str) -> tuple[str, str]:
            return DEFAULT_CHANNEL, signal_event(audience, event_id, i).to_json()

        return await measure_server(
            "graphql broadcast",
            server,
            meter,
            lambda: publish_at_rate(redis, message, meter, rate, count, subscribers, tick),
        )
    finally:
        await stop(readers)
        await redis.aclose()


async def run_raw_redis(
    redis: RedisServer,
    audiences: Sequence[Audience],
    rate: float,
    count: int,
    tick: float,
    *,
    broadcast: bool = False,
) -> Run:
    """Raw redis-py subscribers, one connection each: routed, one channel per subscriber
    and each event to one; or broadcast, one channel for all and each event to all."""
    meter = Meter()
    publisher = Redis.from_url(redis.url)
    subscribers = [Redis.from_url(redis.url) for _ in audiences]

    def channel(n: int) -> str:
        return "bench:all" if broadcast else f"bench:{n}"

    pubsubs = []
    for n, client in enumerate(subscribers):
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel(n))
        pubsubs.append(pubsub)

    async def listen(n: int, pubsub: Any) -> None:
        async for message in pubsub.listen():
            meter.record(Event.from_json(message["data"]).id, n)

    readers = [asyncio.create_task(listen(n, pubsub)) for n, pubsub in enumerate(pubsubs)]
    try:

        async def probe(attempt: int, waiting: set[int]) -> None:
            for n in sorted(waiting)[:1] if broadcast else waiting:
                event = signal_event(audiences[n], f"probe:{attempt}", 0)
                await publisher.publish(channel(n), event.to_json())

        await asyncio.wait_for(until_all_live(len(audiences), probe, meter), CONNECT_TIMEOUT)

        def message(i: int, event_id: str) -> tuple[str, str]:
            n = i % len(audiences)
            return channel(n), signal_event(audiences[n], event_id, i).to_json()

        arrivals = len(audiences) if broadcast else 1
        return await measure(
            f"raw redis {'broadcast' if broadcast else 'routed'}",
            redis.pid,
            meter,
            lambda: publish_at_rate(publisher, message, meter, rate, count, arrivals, tick),
        )
    finally:
        await stop(readers)
        for pubsub in pubsubs:
            await pubsub.aclose()
        for client in [publisher, *subscribers]:
            await client.aclose()


def candle_row(n: int, minute: int) -> list[float]:
    price = 100.0 + n
    return [float(minute * MINUTE_MS), price, price + 1, price - 1, price + 0.5, 1000.0]


async def run_market(
    server: ApiServer, redis_url: str, token: str, subscribers: int, symbols: int
) -> Run:
    """`subscribers` websockets on `symbols` symbols, one candle close of every symbol."""
    names = [f"S{n}/USDT" for n in range(symbols)]
    meter = Meter()
    redis = Redis.from_url(redis_url)
    readers = []
    for n in range(subscribers):
        variables = {"symbol": names[n % symbols]}
        readers.append(await graphql_subscriber(server.ws_url, token, n, meter, CANDLES, variables))
    try:

        async def probe(attempt: int, waiting: set[int]) -> None:
            for n in sorted({w % symbols for w in waiting}):
                event = candle_event(names[n], "1m", candle_row(n, attempt + 1))
                await redis.publish(DEFAULT_CHANNEL, event.to_json())

        await asyncio.wait_for(until_all_live(subscribers, probe, meter), CONNECT_TIMEOUT)
        close_minute = 10_000

        async def close() -> int:
            """The close of every symbol, in one pipeline as an engine's publisher sends
            them at a close; latency runs from the moment it starts sending."""
            opened = datetime.fromtimestamp(close_minute * MINUTE_MS / 1000, UTC).isoformat()
            pipeline = redis.pipeline(transaction=False)
            sent = time.perf_counter()
            for n, name in enumerate(names):
                meter.expect(f"{name}@{opened}", sent, len(range(n, subscribers, symbols)))
                event = candle_event(name, "1m", candle_row(n, close_minute))
                pipeline.publish(DEFAULT_CHANNEL, event.to_json())
            await pipeline.execute()
            return subscribers

        return await measure_server("market: one close", server, meter, close)
    finally:
        await stop(readers)
        await redis.aclose()


async def main(args: argparse.Namespace) -> None:
    count = int(args.rate * args.duration)
    broadcast_count = int(args.broadcast_rate * args.duration)
    runs: list[Run] = []
    share_before = cpu_share()
    with tempfile.TemporaryDirectory(prefix="fanout-") as directory:
        root = Path(directory)
        redis = RedisServer(root)
        redis.start()
        database_url = f"sqlite://{root / 'bench.sqlite3'}"
        audiences = await prepare_database(database_url, args.subscribers)
        server = ApiServer(database_url, redis.url, root / "server.log")
        server.start()
        try:
            tick = args.tick_ms / 1000
            runs.append(await run_routed(server, redis.url, audiences, args.rate, count, tick))
            runs.append(await run_raw_redis(redis, audiences, args.rate, count, tick))
            if args.broadcast:
                runs.append(
                    await run_broadcast(
                        server,
                        redis.url,
                        audiences[0],
                        args.subscribers,
                        args.broadcast_rate,
                        broadcast_count,
                        tick,
                    )
                )
                runs.append(
                    await run_raw_redis(
                        redis, audiences, args.broadcast_rate, broadcast_count, tick, broadcast=True
                    )
                )
                runs.append(
                    await run_market(
                        server,
                        redis.url,
                        audiences[0].token,
                        args.market_subscribers,
                        args.market_symbols,
                    )
                )
        finally:
            server.stop()
            redis.stop()
    share_after = cpu_share()
    print(
        f"{args.subscribers} subscribers for {args.duration:.0f} s of publishing each; a busy "
        f"process got {share_before:.0%} of a core before the runs, {share_after:.0%} after"
    )
    print(
        f"routed: {args.rate:.0f} events/s ({count} events), each to one subscriber; "
        f"the publisher sends what is due every {args.tick_ms:g} ms"
    )
    if args.broadcast:
        print(
            f"broadcast: {args.broadcast_rate:.0f} events/s ({broadcast_count} events), each "
            f"to all; market: {args.market_subscribers} subscribers on {args.market_symbols} "
            "symbols, one close of every symbol"
        )
    for run in runs:
        print(run.report())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="routed events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    parser.add_argument("--broadcast", action="store_true", help="add broadcast and market")
    parser.add_argument(
        "--broadcast-rate", type=float, default=500.0, help="broadcast events per second"
    )
    parser.add_argument(
        "--tick-ms",
        type=float,
        default=10.0,
        help="the publisher sends what is due every this many ms (0: each event at its time)",
    )
    parser.add_argument("--market-subscribers", type=int, default=1000)
    parser.add_argument("--market-symbols", type=int, default=50)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
