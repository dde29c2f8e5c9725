"""The whole platform in one `traders serve`: feed -> kline store -> screening -> signal ->
event bus -> GraphQL subscription, with nothing stubbed. A user enables a trader, and its
filter's match on the simulated market reaches the user's websocket as a signal event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from gql import Client

from app.services.users import create_user
from tests.events.live import (
    TIMEOUT,
    ApiServer,
    engine_server,
    first_event,
    subscribed,
    transport,
)

SIGNALS = "subscription { signalEvents { traderId symbol interval price } }"
STATUS = "subscription { traderStatus { traderId enabled } }"
CREATE = """mutation($code: String!) { createTrader(input: {
    name: "btc watcher", interval: "1m", symbols: ["BTC/USDT"], filter: {code: $code}
}) { id } }"""
ENABLE = "mutation($id: ID!, $on: Boolean!) { setTraderEnabled(id: $id, enabled: $on) { id } }"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def server(db: str, tmp_path: Path) -> Iterator[ApiServer]:
    with engine_server(db, tmp_path / "serve.log") as api:
        yield api


async def test_an_enabled_traders_match_reaches_its_owner_live(server: ApiServer) -> None:
    _, token = await create_user("alice")
    code = "return candles.close[-1] > 0, 'long', 1.0"
    trader_id = (await server.graphql(token, CREATE, code=code))["createTrader"]["id"]
    market = await server.graphql(token, "{ market { source symbols } }")
    assert market["market"]["source"] == "simulated"
    assert "BTC/USDT" in market["market"]["symbols"]

    client = Client(
        transport=transport(server.ws_url, "graphql-transport-ws", {"token": token}),
        execute_timeout=TIMEOUT,
    )
    async with (
        client as session,
        subscribed(session, SIGNALS) as signals,
        subscribed(session, STATUS) as statuses,
    ):
        signal_pending = asyncio.ensure_future(anext(signals))

        async def toggle() -> None:
            await server.graphql(token, ENABLE, id=trader_id, on=False)

        await first_event(statuses, toggle)
        await server.graphql(token, ENABLE, id=trader_id, on=True)
        event = (await asyncio.wait_for(signal_pending, 30))["signalEvents"]

    assert event["traderId"] == trader_id
    assert event["symbol"] == "BTC/USDT"
    assert event["interval"] == "1m"
    stored = await server.graphql(
        token,
        "query($id: ID!) { trader(id: $id) { metrics { totalSignals lastSignalAt } "
        "signals(first: 5) { nodes { symbol price } } } }",
        id=trader_id,
    )
    trader = stored["trader"]
    assert trader["metrics"]["totalSignals"] == 1
    assert trader["metrics"]["lastSignalAt"] is not None
    assert trader["signals"]["nodes"] == [{"symbol": "BTC/USDT", "price": event["price"]}]
