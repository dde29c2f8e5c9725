"""Trading over GraphQL (both back ends): manual control, the links between signals,
trades, orders and fills, the performance query and the audit log, each scoped to its
owner; and the risk and exit-filter settings of a trader as inputs."""

from __future__ import annotations

import uuid
from decimal import Decimal

from app.core.events import InProcessEventBus
from app.db import models
from app.domain.enums import ExitReason, OrderStatus, TradeStatus, TradingMode
from app.engine.clock import to_ms
from app.engine.desk import TradingDesk
from app.engine.memory import CollectingNotifier
from app.engine.orders import OrderManager
from app.engine.positions import PositionMonitor
from app.engine.prices import PriceBoard
from app.services.trading import TradingControl
from tests.api.conftest import Caller, create_trader
from tests.trading.desk import SYMBOLS, enter

TRADE = """query($id: ID!) { trader(id: $id) { trades(first: 5) { nodes {
    id status exitReason stopLoss takeProfit
    signal { id status trade { id } }
    orders { clientOrderId purpose type status filled fills { price expectedPrice liquidity } }
    fills { amount price fee }
} } } }"""
CLOSE = "mutation($id: ID!) { closePosition(tradeId: $id) { id status exitReason pnl } }"
CANCEL = "mutation($id: ID!) { cancelOrder(orderId: $id) { id status filled } }"
PERFORMANCE = """query($id: ID!) { traderPerformance(traderId: $id, mode: DEMO) {
    mode metrics { closedPositions activePositions feesPaid equity totalPnL unrealisedPnL }
    equityCurve { time equity }
} }"""


async def trader(caller: Caller) -> str:
    created = await create_trader(
        caller, enabled=True, interval="1m", strategy={"riskManagement": {"stopLoss": "5"}}
    )
    return str(created["id"])


async def test_a_trade_links_its_signal_orders_and_fills_and_closes_by_hand(
    alice: Caller, bob: Caller, desk: TradingDesk
) -> None:
    trader_id = await trader(alice)
    trade_id = await enter(desk, trader_id, SYMBOLS[0])
    (trade,) = (await alice.data(TRADE, {"id": trader_id}))["trader"]["trades"]["nodes"]
    assert trade["status"] == "OPEN" and trade["signal"]["trade"]["id"] == str(trade_id)
    assert trade["signal"]["status"] == "ENTERED"
    (entry,) = trade["orders"]
    assert (entry["purpose"], entry["type"], entry["status"]) == ("ENTRY", "MARKET", "CLOSED")
    (fill,) = entry["fills"]
    assert Decimal(fill["price"]) > Decimal(fill["expectedPrice"])  # a buyer pays the spread
    assert fill["liquidity"] == "TAKER"

    other = await bob.gql(CLOSE, {"id": str(trade_id)})
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    closed = (await alice.data(CLOSE, {"id": str(trade_id)}))["closePosition"]
    assert (closed["status"], closed["exitReason"]) == ("CLOSED", "MANUAL")
    again = await alice.gql(CLOSE, {"id": str(trade_id)})
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    (trade,) = (await alice.data(TRADE, {"id": trader_id}))["trader"]["trades"]["nodes"]
    assert [o["purpose"] for o in trade["orders"]] == ["ENTRY", "EXIT"]
    assert len(trade["fills"]) == 2

    audit = await alice.data(
        "query($id: ID!) { auditLog(traderId: $id) { nodes { action clientOrderId } } }",
        {"id": trader_id},
    )
    actions = [n["action"] for n in audit["auditLog"]["nodes"]]
    assert sorted(actions) == sorted(["order_intent", "order_fill", "order_closed"] * 2)
    hidden = await bob.gql(
        "query($id: ID!) { auditLog(traderId: $id) { nodes { action } } }", {"id": trader_id}
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_cancelling_a_resting_entry_cancels_its_trade(
    alice: Caller, desk: TradingDesk
) -> None:
    trader_id = await trader(alice)
    trade_id = await enter(desk, trader_id, SYMBOLS[1], Decimal("0.5"))
    order = await models.Order.get(trade_id=trade_id)
    assert order.status == OrderStatus.OPEN
    listed = await alice.data("{ orders(status: OPEN) { nodes { id type } } }")
    assert listed["orders"]["nodes"] == [{"id": str(order.id), "type": "LIMIT"}]
    cancelled = (await alice.data(CANCEL, {"id": str(order.id)}))["cancelOrder"]
    assert (cancelled["status"], cancelled["filled"]) == ("CANCELED", "0")
    assert (await models.Trade.get(id=trade_id)).status == TradeStatus.CANCELLED
    again = await alice.gql(CANCEL, {"id": str(order.id)})
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_performance_gives_the_metrics_and_equity_curve_of_a_mode(
    alice: Caller, desk: TradingDesk
) -> None:
    trader_id = await trader(alice)
    trade_id = await enter(desk, trader_id, SYMBOLS[2])
    ledger = await desk.store.ledger(uuid.UUID(trader_id), TradingMode.DEMO)
    marks = desk.quotes.marks(ledger.positions)
    for minute in range(3):
        time = to_ms((await models.Trade.get(id=trade_id)).opened_at)
        equity = ledger.equity(marks) + minute
        await desk.store.snapshot(
            uuid.UUID(trader_id), TradingMode.DEMO, time + minute * 60_000, equity, marks
        )
    data = (await alice.data(PERFORMANCE, {"id": trader_id}))["traderPerformance"]
    assert data["mode"] == "DEMO"
    curve = [Decimal(point["equity"]) for point in data["equityCurve"]]
    assert [equity - curve[0] for equity in curve] == [0, 1, 2]
    metrics = data["metrics"]
    assert (metrics["activePositions"], metrics["closedPositions"]) == (1, 0)
    assert Decimal(metrics["feesPaid"]) > 0
    assert Decimal(metrics["unrealisedPnL"]) < 0  # the spread and the fee, at the same price
    assert Decimal(metrics["equity"]) == Decimal(10_000) + Decimal(metrics["unrealisedPnL"])


async def test_a_close_asked_from_a_process_without_the_engine_is_done_by_the_engine(
    alice: Caller, desk: TradingDesk
) -> None:
    trader_id = await trader(alice)
    trade_id = await enter(desk, trader_id, SYMBOLS[3])
    user = await models.User.get(id=alice.user_id)
    remote = TradingControl(InProcessEventBus(), None)
    assert await remote.close_position(user, str(trade_id)) == trade_id
    assert (await models.Trade.get(id=trade_id)).status == TradeStatus.OPEN
    assert "close_requested" in await models.TradeAuditLog.all().values_list("action", flat=True)
    orders = OrderManager(
        desk.store,
        desk.orders.executors,
        CollectingNotifier(),
        desk.orders.clock,
        desk.orders.instruments,
    )
    monitor = PositionMonitor(desk.store, orders, PriceBoard().subscribe(), orders.clock)
    assert await monitor.run(None) == 1  # type: ignore[arg-type]
    trade = await models.Trade.get(id=trade_id)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.MANUAL)
    assert trade.close_requested is None


async def test_risk_settings_and_the_exit_filter_are_inputs_like_the_others(alice: Caller) -> None:
    risk = {
        "stopLoss": "2", "trailingStop": "1.5", "cooldownCandles": 4, "stopLossGuard": 3,
        "stopLossGuardCandles": 24, "reviewCandles": 6,
    }  # fmt: skip
    created = (
        await alice.data(
            """mutation($input: CreateTraderInput!) { createTrader(input: $input) {
            exitFilter { code }
            strategy { riskManagement { trailingStop cooldownCandles stopLossGuard
                stopLossGuardCandles reviewCandles } }
        } }""",
            {
                "input": {
                    "name": "r",
                    "exitFilter": {"code": "return rsi(candles, 14)[-1] > 70"},
                    "strategy": {"riskManagement": risk},
                }
            },
        )
    )["createTrader"]
    assert created["exitFilter"]["code"] == "return rsi(candles, 14)[-1] > 70"
    assert created["strategy"]["riskManagement"] == {
        k: v for k, v in risk.items() if k != "stopLoss"
    }
    bad = await alice.gql(
        "mutation($input: CreateTraderInput!) { createTrader(input: $input) { id } }",
        {"input": {"name": "r", "exitFilter": {"code": "import os"},
                   "strategy": {"riskManagement": {"cooldownCandles": 0, "trailingStop": "100"}}}},
    )  # fmt: skip
    fields = sorted(f["field"] for f in bad["errors"][0]["extensions"]["fields"])
    assert fields == [
        "exitFilter.code",
        "strategy.riskManagement.cooldownCandles",
        "strategy.riskManagement.trailingStop",
    ]
