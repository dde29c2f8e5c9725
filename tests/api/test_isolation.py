"""User B sees none of user A's traders, signals and trades, and can change none of them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.db.models import Signal, Trade, Trader
from app.domain.enums import Side, TradingMode
from tests.api.conftest import Caller, create_trader

BY_ID_OPERATIONS = {
    "trader": "query($id: ID!) { trader(id: $id) { id } }",
    "signals": "query($id: ID!) { signals(traderId: $id) { nodes { id } } }",
    "trades": "query($id: ID!) { trades(traderId: $id) { nodes { id } } }",
    "updateTrader": 'mutation($id: ID!) { updateTrader(id: $id, input: {name: "mine"}) { id } }',
    "deleteTrader": "mutation($id: ID!) { deleteTrader(id: $id, confirm: true) }",
    "setTraderEnabled": "mutation($id: ID!) { setTraderEnabled(id: $id, enabled: true) { id } }",
    "setTraderMode": "mutation($id: ID!) { setTraderMode(id: $id, mode: DEMO) { id } }",
}


async def _alice_world(alice: Caller) -> Trader:
    created = await create_trader(alice, name="alice-trader")
    trader = await Trader.get(id=created["id"])
    await Signal.create(
        trader=trader,
        symbol="BTC/USDT",
        interval="1h",
        price=Decimal(1),
        candle_time=datetime.now(UTC),
    )
    await Trade.create(
        trader=trader,
        mode=TradingMode.DEMO,
        symbol="BTC/USDT",
        side=Side.LONG,
        amount=Decimal(1),
        entry_price=Decimal(1),
    )
    return trader


async def test_other_users_objects_are_not_found(alice: Caller, bob: Caller) -> None:
    trader = await _alice_world(alice)
    for name, operation in BY_ID_OPERATIONS.items():
        body = await bob.gql(operation, {"id": str(trader.id)})
        assert body["data"] is None, name
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", name
        assert body["errors"][0]["message"] == "trader not found", name

    lists = await bob.data(
        "{ traders { nodes { id } } signals { nodes { id } } trades { nodes { id } } }"
    )
    assert lists == {
        "traders": {"nodes": []},
        "signals": {"nodes": []},
        "trades": {"nodes": []},
    }

    unchanged = await Trader.get(id=trader.id)
    assert (unchanged.name, unchanged.enabled) == ("alice-trader", False)
    assert await Signal.filter(trader=trader).count() == 1
    own = await alice.data("{ signals { nodes { id } } trades { nodes { id } } }")
    assert len(own["signals"]["nodes"]) == 1
    assert len(own["trades"]["nodes"]) == 1


async def test_malformed_ids_are_not_found(alice: Caller) -> None:
    body = await alice.gql('{ trader(id: "not-a-uuid") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_requests_without_a_token_get_no_data(client) -> None:
    response = await client.post("/graphql", json={"query": "{ traders { nodes { id } } }"})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
