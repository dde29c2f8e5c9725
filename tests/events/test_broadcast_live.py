"""Shared subscription documents end to end: a `traders serve` process (engine off), events
published through Redis as the engine publishes them, real websocket clients.

Subscribers of one document share its execution; these tests hold what must not change
with that: each user still hears only their own events, and a client that stops reading
falls behind alone and is closed with a reason, while the others get every event.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.api.outbox import SLOW_CONSUMER
from app.core.events import Event, EventType
from app.core.redis_bus import RedisEventBus
from app.db.models import Trader, User
from app.services.users import create_user
from tests.events.live import (
    PROTOCOLS,
    TIMEOUT,
    ApiServer,
    RedisServer,
    first_event,
    next_result,
    subscription,
)

SIGNALS = "subscription { signalEvents { eventId traderId symbol reason } }"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def engine_bus(module_redis: RedisServer) -> AsyncIterator[RedisEventBus]:
    """The bus an engine process publishes on."""
    bus = RedisEventBus(module_redis.url)
    await bus.start()
    yield bus
    await bus.stop()


def serve(db: str, redis_server: RedisServer, log: Path, **settings: str) -> Iterator[ApiServer]:
    server = ApiServer(db, redis_server.url, log, settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_server(
    database_url_for: Callable[[str], str],
    module_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    """The default server, for the module's tests that make their own users."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    yield from serve(database_url_for("sqlite"), module_redis, log)


@pytest.fixture
def server(db: str, shared_server: ApiServer) -> ApiServer:
    return shared_server


@pytest.fixture
def impatient_server(db: str, module_redis: RedisServer, tmp_path: Path) -> Iterator[ApiServer]:
    """A server that keeps 64 results waiting per websocket and closes one after 16 drops."""
    yield from serve(
        db,
        module_redis,
        tmp_path / "serve.log",
        TRADERS_SUBSCRIPTION_SEND_QUEUE="64",
        TRADERS_SUBSCRIPTION_MAX_DROPPED="16",
    )


async def user_with_trader(name: str) -> tuple[User, str, Trader]:
    user, token = await create_user(name)
    return user, token, await Trader.create(owner=user, name=name)


def signal(trader: Trader, symbol: str, reason: str = "") -> Event:
    return Event(
        EventType.SIGNAL, trader.owner_id, str(trader.id), {"symbol": symbol, "reason": reason}
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_users_subscribed_to_one_document_each_receive_only_their_own_events(
    server: ApiServer, engine_bus: RedisEventBus, protocol: str
) -> None:
    _, alice, alices = await user_with_trader("alice")
    _, bob, bobs = await user_with_trader("bob")

    async with (
        subscription(server.ws_url, alice, SIGNALS, protocol) as alice_first,
        subscription(server.ws_url, alice, SIGNALS, protocol) as alice_second,
        subscription(server.ws_url, bob, SIGNALS, protocol) as bob_results,
    ):
        for results, trader in (
            (alice_first, alices),
            (alice_second, alices),
            (bob_results, bobs),
        ):

            async def warm_up(trader: Trader = trader) -> None:
                await engine_bus.publish(signal(trader, "WARM/UP"))  # a fresh event each try

            await first_event(results, warm_up)
        for n in range(5):
            await engine_bus.publish(signal(alices, f"A{n}/USDT"))
            await engine_bus.publish(signal(bobs, f"B{n}/USDT"))
        await engine_bus.publish(signal(alices, "END/USDT"))
        await engine_bus.publish(signal(bobs, "END/USDT"))

        seen = [await _until_end(results) for results in (alice_first, alice_second, bob_results)]

    alice_expected = [(str(alices.id), f"A{n}/USDT") for n in range(5)]
    bob_expected = [(str(bobs.id), f"B{n}/USDT") for n in range(5)]
    assert seen == [alice_expected, alice_expected, bob_expected]


async def _until_end(results: AsyncIterator[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (trader, symbol) of each event after the warm-up ones, up to END/USDT."""
    seen: list[tuple[str, str]] = []
    for _ in range(100):
        event = (await next_result(results))["signalEvents"]
        if event["symbol"] == "END/USDT":
            return seen
        if event["symbol"] != "WARM/UP":
            seen.append((event["traderId"], event["symbol"]))
    raise AssertionError(f"no END/USDT after {seen}")


async def _subscriber(url: str, token: str, *, reading: bool = True) -> ClientConnection:
    """A graphql-transport-ws client; one not `reading` stops taking data off its socket
    once a message is waiting, with a receive buffer as small as the system allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if not reading:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])))
    websocket = await connect(
        url,
        sock=sock,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        max_queue=None if reading else 1,
        max_size=None,
        ping_interval=None,
    )
    await websocket.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert json.loads(await websocket.recv())["type"] == "connection_ack"
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SIGNALS}}
    await websocket.send(json.dumps(subscribe))
    return websocket


def _symbol(raw: str | bytes) -> str:
    message = json.loads(raw)
    assert message["type"] == "next", message
    return str(message["payload"]["data"]["signalEvents"]["symbol"])


async def _symbols(websocket: ClientConnection, until: str) -> list[str]:
    """Symbols of the `next` messages read, up to and including `until`."""
    symbols: list[str] = []
    while not symbols or symbols[-1] != until:
        symbols.append(_symbol(await asyncio.wait_for(websocket.recv(), TIMEOUT)))
    return symbols


async def _metric(server: ApiServer, name: str) -> float:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        text = (await client.get(server.http_url.replace("/graphql", "/metrics"))).text
    [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def test_a_client_that_stops_reading_is_dropped_with_a_reason_and_the_others_keep_up(
    impatient_server: ApiServer, engine_bus: RedisEventBus
) -> None:
    server = impatient_server
    _, token, trader = await user_with_trader("alice")
    fast = [await _subscriber(server.ws_url, token) for _ in range(2)]
    slow = await _subscriber(server.ws_url, token, reading=False)
    firsts = {websocket: asyncio.ensure_future(websocket.recv()) for websocket in [*fast, slow]}
    for n in range(50):  # a subscription is live once it has its first event
        warmed = f"W{n}/USDT"
        await engine_bus.publish(signal(trader, warmed))
        await asyncio.wait(firsts.values(), timeout=0.2)
        if all(first.done() for first in firsts.values()):
            break
    for websocket in fast:
        if _symbol(firsts[websocket].result()) != warmed:
            await _symbols(websocket, warmed)

    # Large events fill the slow client's socket buffers quickly; publish until the server
    # reports that it gave up on it (bounded), the fast clients reading every batch (fewer
    # than their outboxes hold).
    bulky = "x" * 16_384
    for batch in range(100):
        symbols = [f"S{batch}x{n}/USDT" for n in range(20)]
        for symbol in symbols:
            await engine_bus.publish(signal(trader, symbol, bulky))
        for websocket in fast:
            assert (await _symbols(websocket, symbols[-1])) == symbols
        if await _metric(server, "traders_websockets_closed_slow_total") >= 1:
            break
    else:
        raise AssertionError("the server never closed the client that does not read")

    assert await _metric(server, "traders_events_dropped_total") >= 16
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(slow.recv(), TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == SLOW_CONSUMER
    assert "slow consumer" in closed.value.rcvd.reason
    # The others go on as before.
    await engine_bus.publish(signal(trader, "AFTER/USDT"))
    for websocket in fast:
        assert await _symbols(websocket, "AFTER/USDT") == ["AFTER/USDT"]
        await websocket.close()
