"""The first working slice: a user creates, lists, edits, enables and deletes traders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.db.models import Signal, Trader
from app.domain.enums import TradingMode
from app.services.repositories.traders import spec_of
from app.services.repositories.trading import DbTradeStore
from tests.api.conftest import Caller, create_trader
from tests.trading.booking import close_trade, open_trade


async def test_create_then_list_with_metrics(alice: Caller) -> None:
    created = await create_trader(
        alice,
        interval="15m",
        symbols=["BTC/USDT", "ETH/USDT"],
        filter={"code": "return rsi(14) < 30", "description": ["RSI oversold"]},
        strategy={
            "instructions": "Buy oversold dips in an uptrend",
            "riskManagement": {"stopLoss": "2", "takeProfit": "6", "maxPositions": 3},
        },
    )
    assert created["status"] == "PAUSED"
    assert created["strategy"]["riskManagement"]["stopLoss"] == "2"
    data = await alice.data(
        "{ traders { nodes { id name metrics { totalPnL winRate totalSignals } } } }"
    )
    assert data["traders"]["nodes"] == [
        {
            "id": created["id"],
            "name": "momentum",
            "metrics": {"totalPnL": "0", "winRate": "0", "totalSignals": 0},
        }
    ]


async def test_metrics_follow_signals_and_trades(alice: Caller) -> None:
    created = await create_trader(alice, enabled=True)
    trader = await Trader.get(id=created["id"])
    now = datetime.now(UTC)
    await Signal.create(
        trader=trader, symbol="BTC/USDT", interval="1h", price=Decimal("100"), candle_time=now
    )
    store, spec, free = DbTradeStore(), spec_of(trader), Decimal(0)
    for exit_price in (Decimal("130"), Decimal("90")):
        trade = await open_trade(store, spec, "BTC/USDT", Decimal(1), Decimal(100), 0, free)
        await close_trade(store, trade, exit_price, 60_000, free)
    await open_trade(store, spec, "ETH/USDT", Decimal(2), Decimal(50), 120_000, free)
    data = await alice.data(
        """query($id: ID!) { trader(id: $id) { metrics {
            totalSignals activePositions closedPositions totalPnL totalPnLPercent winRate
            avgWin avgLoss lastSignalAt
            demoMetrics { closedPositions totalPnL } liveMetrics { closedPositions totalPnL }
        } } }""",
        {"id": created["id"]},
    )
    metrics = data["trader"]["metrics"]
    assert metrics["totalSignals"] == 1
    assert metrics["activePositions"] == 1
    assert metrics["closedPositions"] == 2
    assert Decimal(metrics["totalPnL"]) == Decimal("20")
    assert Decimal(metrics["totalPnLPercent"]) == Decimal("10")
    assert Decimal(metrics["winRate"]) == Decimal("50")
    assert Decimal(metrics["avgWin"]) == Decimal("30")
    assert Decimal(metrics["avgLoss"]) == Decimal("-10")
    assert metrics["lastSignalAt"] is not None
    assert Decimal(metrics["demoMetrics"]["totalPnL"]) == Decimal("20")
    assert metrics["liveMetrics"]["closedPositions"] == 0


async def test_update_enable_mode_and_delete(alice: Caller) -> None:
    trader_id = (await create_trader(alice))["id"]
    updated = await alice.data(
        """mutation($id: ID!) { updateTrader(id: $id, input: {
            name: "renamed", strategy: { riskManagement: { stopLoss: "3.5" } } }) {
            name strategy { riskManagement { stopLoss takeProfit } } } }""",
        {"id": trader_id},
    )
    assert updated["updateTrader"]["name"] == "renamed"
    assert updated["updateTrader"]["strategy"]["riskManagement"]["stopLoss"] == "3.5"

    enabled = await alice.data(
        "mutation($id: ID!) { setTraderEnabled(id: $id, enabled: true) { enabled status } }",
        {"id": trader_id},
    )
    assert enabled["setTraderEnabled"] == {"enabled": True, "status": "RUNNING"}

    mode = await alice.data(
        "mutation($id: ID!) { setTraderMode(id: $id, mode: DEMO) { mode } }", {"id": trader_id}
    )
    assert mode["setTraderMode"]["mode"] == "DEMO"
    live = await alice.gql(
        "mutation($id: ID!) { setTraderMode(id: $id, mode: LIVE) { mode } }", {"id": trader_id}
    )
    assert live["errors"][0]["extensions"]["fields"][0]["field"] == "mode"
    assert (await Trader.get(id=trader_id)).mode == TradingMode.DEMO

    deleted = await alice.data(
        "mutation($id: ID!) { deleteTrader(id: $id, confirm: true) }", {"id": trader_id}
    )
    assert deleted["deleteTrader"] == trader_id
    assert not await Trader.exists(id=trader_id)


async def test_signals_and_trades_paginate_by_cursor(alice: Caller) -> None:
    created = await create_trader(alice)
    trader = await Trader.get(id=created["id"])
    now = datetime.now(UTC)
    for index in range(5):
        await Signal.create(
            trader=trader, symbol=f"S{index}/USDT", interval="1h", price=Decimal(1), candle_time=now
        )
    query = """query($id: ID!, $after: String) {
        signals(traderId: $id, first: 2, after: $after) {
            edges { cursor node { symbol } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = (await alice.data(query, {"id": created["id"], "after": after}))["signals"]
        seen += [edge["node"]["symbol"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == [f"S{i}/USDT" for i in range(5)]
    assert len(seen) == 5
    only = await alice.data(
        'query($id: ID!) { signals(traderId: $id, symbol: "S3/USDT") { nodes { symbol } } }',
        {"id": created["id"]},
    )
    assert only["signals"]["nodes"] == [{"symbol": "S3/USDT"}]


async def test_traders_paginate_by_cursor_and_filter(alice: Caller, bob: Caller) -> None:
    names = [f"t{index}" for index in range(5)]
    for name in names:
        await create_trader(alice, name=name)
    await create_trader(bob, name="not alice's")
    running = await create_trader(alice, name="running", enabled=True)
    query = """query($after: String, $enabled: Boolean, $status: TraderStatus) {
        traders(first: 2, after: $after, enabled: $enabled, status: $status, mode: DEMO) {
            edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = (await alice.data(query, {"after": after, "enabled": False}))["traders"]
        seen += [edge["node"]["name"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names[::-1]

    enabled = await alice.data(query, {"enabled": True})
    assert [e["node"]["name"] for e in enabled["traders"]["edges"]] == [running["name"]]
    status = await alice.data(query, {"status": "RUNNING"})
    assert status == enabled
    live = await alice.data("{ traders(mode: LIVE) { nodes { id } } }")
    assert live["traders"]["nodes"] == []
