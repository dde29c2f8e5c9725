"""The query cost limit: nested lists multiply, and a document over the limit never runs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from graphql import parse, validate

from app.api.app import create_app
from app.api.cost import cost_rule
from app.api.schema import build_schema
from app.core.settings import Settings
from app.db.models import Signal, Trader, User
from tests.api.conftest import CREATE_TRADER, Caller, create_trader
from tests.api.test_query_count import QUERY as DASHBOARD
from tests.api.test_query_count import counting_sql

GRAPHQL_RESPONSE = "application/graphql-response+json"
NESTED = """{ signals(first: 200) { nodes { id symbol trader {
    signals(first: 200) { nodes { id symbol trader {
        signals(first: 200) { nodes { id symbol } } } } } } } } }"""
README_CREATE = """mutation {
  createTrader(input: {
    name: "RSI dip buyer"
    interval: "1h"
    symbols: ["BTC/USDT", "ETH/USDT"]
    filter: { code: "return rsi(candles, 14)[-1] < 30", description: ["RSI(14) under 30"] }
    strategy: {
      instructions: "Buy oversold dips in an uptrend"
      riskManagement: { stopLoss: "2", takeProfit: "6", maxPositions: 3, positionSizePercent: "10" }
    }
  }) { id status }
}"""
README_LIST = """{ traders { nodes {
    name status metrics { totalPnL winRate demoMetrics { totalPnL } } } } }"""
SCHEMA = build_schema(Settings())


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    """The estimate, read from the error of a rule whose limit nothing stays under."""
    errors = validate(SCHEMA._schema, parse(query), [cost_rule(0, variables or {}, None)])
    return int(errors[0].extensions["cost"])  # type: ignore[index]


def test_page_sizes_multiply_along_the_path() -> None:
    # signals(first: 200) costs 1, and each of its 200 nodes 1 + id + symbol + trader,
    # where a trader costs 1 + the signals below it.
    innermost = 1 + 200 * 3
    middle = 1 + 200 * (3 + 1 + innermost)
    assert cost(NESTED) == 1 + 200 * (3 + 1 + middle) == 24_201_001
    assert cost("{ signals { nodes { id } } }") == 1 + 50 * 2  # the default first: 50
    assert cost("{ signals(first: 3) { edges { cursor node { id } } nodes { id } } }") == (
        1 + 3 * 4 + 3 * 2
    )


def test_variables_and_their_defaults_are_the_page_sizes() -> None:
    query = "query($n: Int! = 7) { signals(first: $n) { nodes { id } } }"
    assert cost(query) == 1 + 7 * 2
    assert cost(query, {"n": 100}) == 1 + 100 * 2


def test_fragments_count_where_they_are_spread_and_a_fragment_bomb_is_cheap_to_refuse() -> None:
    spread = "fragment S on Signal { id symbol } { signals(first: 4) { nodes { ...S } } }"
    assert cost(spread) == 1 + 4 * 3
    bomb = ["fragment F0 on Signal { id }"]
    bomb += [f"fragment F{i} on Signal {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 60)]
    document = "\n".join(bomb) + "\n{ signals(first: 1) { nodes { ...F59 } } }"
    assert cost(document) == 2 + 2**59  # counted in linear time, not by expansion


def test_candles_multiply_by_limit() -> None:
    query = '{ klines(symbol: "ETH/BTC", interval: "5m", limit: 100) { symbol candles { close } } }'
    assert cost(query) == 1 + 1 + 100 * 2


async def _signals(owner_id: int, count: int) -> None:
    trader = await Trader.create(owner=await User.get(id=owner_id), name="busy")
    now = datetime.now(UTC)
    await Signal.bulk_create(
        Signal(trader=trader, symbol=f"S{n}/USDT", interval="1h", price=Decimal(1), candle_time=now)
        for n in range(count)
    )


async def _post(caller: Caller, query: str, accept: str = GRAPHQL_RESPONSE) -> httpx.Response:
    return await caller.client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {caller.token}", "Accept": accept},
    )


async def test_the_nested_query_is_refused_before_any_resolver_runs(alice: Caller) -> None:
    await _signals(alice.user_id, 200)
    with counting_sql() as baseline:
        assert (await _post(alice, "{ me { name } }")).status_code == 200

    with counting_sql() as refused_sql:
        refused = await _post(alice, NESTED)

    assert refused.status_code == 400
    body = refused.json()
    assert "data" not in body
    error = body["errors"][0]
    assert error["message"].startswith(f"query cost {cost(NESTED):,} is over the limit of 20,000")
    assert error["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": cost(NESTED),
        "maxCost": 20_000,
    }
    # Only authentication touched the database: no resolver ran.
    assert len(refused_sql.statements) == len(baseline.statements)
    legacy = await _post(alice, NESTED, accept="application/json")
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_normal_queries_pass(alice: Caller) -> None:
    assert (await alice.data(README_CREATE))["createTrader"]["status"] == "PAUSED"
    await create_trader(alice)
    for query in (README_LIST, DASHBOARD, "{ traders { nodes { id } } }"):
        data = await alice.data(query)
        assert len(data["traders"]["nodes"]) == 2, query
    assert cost(CREATE_TRADER, {"input": {"name": "x"}}) < 100
    assert cost(README_LIST) < 1_000
    # The dashboard with the largest page of traders stays well under the default limit.
    assert cost(DASHBOARD.replace("first: 100", "first: 200")) < 20_000


async def test_the_limit_is_the_setting(db: str, alice: Caller) -> None:
    query = "{ signals(first: 4) { nodes { id } } }"  # 1 + 4 x 2 = 9
    for limit, refused in ((9, False), (8, True)):
        app = create_app(Settings(database_url=db, max_query_cost=limit))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await _post(Caller(client, alice.token, alice.user_id), query)
        assert (response.status_code == 400) is refused, response.text
        if refused:
            assert "over the limit of 8" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("operation", ["One", "Two"])
async def test_only_the_operation_run_is_costed(alice: Caller, operation: str) -> None:
    document = (
        "query One { signals(first: 1) { nodes { id } } }\n"
        "query Two { signals(first: 200) { nodes { id trader { "
        "signals(first: 200) { nodes { id } } } } } }"
    )
    response = await alice.client.post(
        "/graphql",
        json={"query": document, "operationName": operation},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert response.status_code == (200 if operation == "One" else 400), response.text
