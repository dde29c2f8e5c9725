"""Subscriptions end to end: `traders serve` processes, real websocket clients, real Redis.

The servers share one PostgreSQL database (the production topology of several API
processes) and a private Redis server. The outage test has its own server and Redis, which
it kills and restarts; the other tests share two servers and the module's Redis: an API
process keeps nothing of a user between requests, and each test starts from empty tables
with users of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gql import Client
from gql.transport.exceptions import TransportConnectionFailed, TransportServerError
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from app.bootstrap import build_workflow
from app.core.events import InProcessEventBus
from app.core.redis_bus import DEFAULT_CHANNEL, RedisEventBus
from app.db import models
from app.db.models import Trader, User
from app.domain.enums import Side
from app.domain.signal import Signal
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterMatch, FilterOutcome, FilterSandbox
from app.services.repositories.traders import spec_of
from app.services.traders import TraderManager
from app.services.users import create_user
from tests.events.live import (
    PROTOCOLS,
    ApiServer,
    RedisServer,
    first_event,
    next_result,
    subscription,
    transport,
)

CREATE = "mutation($name: String!) { createTrader(input: {name: $name}) { id } }"
SIGNALS = """
subscription($id: ID) {
  signalEvents(traderId: $id) { traderId kind signalId symbol interval side status price score }
}"""
STATUS = "subscription($id: ID) { traderStatus(traderId: $id) { traderId status enabled } }"


@pytest.fixture
def backend() -> str:
    """Several API processes share PostgreSQL in production; these tests run that way."""
    return "postgres"


@pytest.fixture(scope="module")
def running(
    database_url_for: Callable[[str], str],
    module_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two API servers on the PostgreSQL database and the module's Redis."""
    directory = tmp_path_factory.mktemp("servers")
    url = database_url_for("postgres")
    pair = tuple(ApiServer(url, module_redis.url, directory / f"server-{n}.log") for n in (0, 1))
    try:
        for server in pair:
            server.start()
        yield pair[0], pair[1]
    finally:
        for server in pair:
            server.stop()


@pytest.fixture
def server(db: str, running: tuple[ApiServer, ApiServer]) -> ApiServer:
    return running[0]


@pytest.fixture
def servers(
    db: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[[], ApiServer]]:
    """Start API servers on the test's database and Redis; all are stopped at the end."""
    started: list[ApiServer] = []

    def start() -> ApiServer:
        server = ApiServer(db, redis_server.url, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


async def user_with_trader(name: str) -> tuple[User, str, Trader]:
    user, token = await create_user(name)
    return user, token, await TraderManager(InProcessEventBus()).create(user, {"name": name})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_created_signal_reaches_a_subscriber(
    server: ApiServer, module_redis: RedisServer, protocol: str
) -> None:
    """Signals are created by the engine, here in this process as an engine worker would."""
    _, token, trader = await user_with_trader("alice")
    engine_bus = RedisEventBus(module_redis.url)
    await engine_bus.start()
    market = MarketData(SimulatedFeed(speed=None), KlineStore())
    signals = build_workflow(engine_bus, RealtimeClock(), FilterSandbox(), market).signals
    created: dict[str, Signal] = {}
    symbols = (f"S{n}/USDT" for n in itertools.count())

    async def create_signal() -> None:
        match = FilterMatch(next(symbols), Side.LONG, 0.5, 101.25, 1_767_225_600_000, {})
        outcome = FilterOutcome(str(trader.id), (match,))
        for signal in await signals.record_run(spec_of(trader), outcome):
            created[str(signal.id)] = signal

    try:
        async with subscription(
            server.ws_url, token, SIGNALS, protocol, id=str(trader.id)
        ) as results:
            result = await first_event(results, create_signal)
    finally:
        await engine_bus.stop()

    event = result["signalEvents"]
    signal = created[event["signalId"]]
    assert Decimal(event.pop("price")) == Decimal("101.25")
    assert event == {
        "traderId": str(trader.id),
        "kind": "created",
        "signalId": str(signal.id),
        "symbol": signal.symbol,
        "interval": "1h",
        "side": "LONG",
        "status": "NEW",
        "score": 0.5,
    }
    assert await models.Signal.exists(id=signal.id)


async def test_an_event_caused_through_one_process_reaches_a_subscriber_on_another(
    db: str, running: tuple[ApiServer, ApiServer]
) -> None:
    one, two = running
    _, token, trader = await user_with_trader("alice")

    async with subscription(two.ws_url, token, STATUS) as results:
        result = await first_event(results, lambda: one.set_enabled(token, str(trader.id), True))

    assert result["traderStatus"] == {
        "traderId": str(trader.id),
        "status": "RUNNING",
        "enabled": True,
    }


async def test_a_user_receives_none_of_another_users_events(server: ApiServer) -> None:
    _, alice, alices = await user_with_trader("alice")
    bob_user, bob, bobs = await user_with_trader("bob")
    alice_trader_ids = {str(alices.id)}

    async with (
        subscription(server.ws_url, alice, STATUS) as alice_results,
        subscription(server.ws_url, bob, STATUS) as bob_results,
    ):
        await first_event(alice_results, lambda: server.set_enabled(alice, str(alices.id), True))
        await first_event(bob_results, lambda: server.set_enabled(bob, str(bobs.id), True))

        second = await server.graphql(
            alice, 'mutation { createTrader(input: {name: "a2"}) { id } }'
        )
        alice_trader_ids.add(second["createTrader"]["id"])
        marker = await server.graphql(bob, CREATE, name="b2")

        seen_by_alice = await _until_trader(alice_results, second["createTrader"]["id"])
        seen_by_bob = await _until_trader(bob_results, marker["createTrader"]["id"])

    assert {event["traderId"] for event in seen_by_alice} <= alice_trader_ids
    assert {event["traderId"] for event in seen_by_bob} <= {
        str(bobs.id),
        marker["createTrader"]["id"],
    }
    assert await Trader.filter(owner_id=bob_user.id).count() == 2


async def _until_trader(
    results: AsyncIterator[dict[str, Any]], trader_id: str
) -> list[dict[str, Any]]:
    """The status events received up to and including the first of `trader_id`."""
    seen: list[dict[str, Any]] = []
    for _ in range(100):
        seen.append((await next_result(results))["traderStatus"])
        if seen[-1]["traderId"] == trader_id:
            return seen
    raise AssertionError(f"no event of trader {trader_id} in {seen}")


async def test_a_trader_of_another_user_is_not_found(server: ApiServer) -> None:
    _, _, alices = await user_with_trader("alice")
    _, bob, _ = await user_with_trader("bob")

    async with subscription(server.ws_url, bob, STATUS, id=str(alices.id)) as results:
        with pytest.raises(Exception, match="trader not found"):
            await next_result(results)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "init_payload",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"token": "not-a-token"},
        {"Authorization": 42},
        {"token": ["not", "a", "token"]},
    ],
    ids=["none", "bad-bearer", "bad-token", "number-bearer", "list-token"],
)
async def test_a_connection_without_a_valid_token_is_refused(
    server: ApiServer, protocol: str, init_payload: dict[str, Any]
) -> None:
    with pytest.raises((TransportConnectionFailed, TransportServerError)) as refused:
        async with Client(transport=transport(server.ws_url, protocol, init_payload)):
            pass

    if protocol == "graphql-transport-ws":
        closed = refused.value.__cause__
        assert isinstance(closed, ConnectionClosed)
        assert closed.rcvd is not None and closed.rcvd.code == 4403
    else:
        assert isinstance(refused.value, TransportServerError)
        assert "invalid or missing token" in str(refused.value)


async def test_a_subscription_outlives_a_redis_outage(
    servers: Callable[[], ApiServer], redis_server: RedisServer
) -> None:
    server = servers()
    user, token, warmup = await user_with_trader("alice")
    later = await TraderManager(InProcessEventBus()).create(user, {"name": "later"})
    redis = Redis.from_url(redis_server.url)

    async with subscription(server.ws_url, token, STATUS) as results:
        await first_event(results, lambda: server.set_enabled(token, str(warmup.id), True))

        redis_server.stop()
        changed = await server.graphql(
            token,
            "mutation($id: ID!) { setTraderEnabled(id: $id, enabled: false) { enabled } }",
            id=str(later.id),
        )
        assert changed == {"setTraderEnabled": {"enabled": False}}
        assert not (await Trader.get(id=later.id)).enabled

        redis_server.start()
        await _until_resubscribed(redis)
        await server.set_enabled(token, str(later.id), True)
        events = await _until_trader(results, str(later.id))
    await redis.aclose()

    assert events[-1] == {"traderId": str(later.id), "status": "RUNNING", "enabled": True}


async def _until_resubscribed(redis: Redis) -> None:
    """The server's one subscription is back on the restarted Redis."""
    for _ in range(200):
        [(_, count)] = await redis.pubsub_numsub(DEFAULT_CHANNEL)
        if count >= 1:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the server did not subscribe again")
