"""Paper trading end to end in one `traders serve` on the simulated feed: trades open and close
by themselves, metrics and the equity curve change, and `tradeEvents` and `pnlUpdates`
(and `signalEvents`) reach the owner's websocket.

The first test starts from a ready signal recorded in the server's database through the
signal repository, as the analysis stage would leave it. The second is the whole workflow
from a template (acceptance 1 of issue 18): a trader generated offline from a sentence and
saved through the API, screened, analyzed by the rule engine, traded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest

from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.services.repositories.signals import DbSignalRepository
from app.services.users import create_user
from tests.events.live import TIMEOUT, ApiServer, engine_server, transport

CREATE = """mutation($code: String!) { createTrader(input: {
    name: "scalper", interval: "1m", symbols: ["BTC/USDT"], enabled: true,
    filter: {code: $code},
    strategy: {riskManagement: {stopLoss: "0.2", takeProfit: "0.2", positionSizePercent: "20"}}
}) { id } }"""
TRADES = "subscription { tradeEvents { traderId kind status exitReason fillPrice expectedPrice } }"
PNL = "subscription { pnlUpdates { traderId metrics { closedPositions activePositions } } }"
SIGNALS = "subscription { signalEvents { traderId kind status } }"
# The offline generator adapts its closest template to the sentence (RSI mean reversion,
# threshold 45 on one-minute candles), so matches come within seconds at the test's feed speed.
SENTENCE = "Buy when RSI is under 45 on the 1m chart"
GENERATED_FIELDS = ("suggestedName", "description", "filterCode", "filterDescription",
                    "strategyInstructions", "interval")  # fmt: skip
GENERATE = """mutation($d: String!) { generateTrader(description: $d) {
    template adaptations suggestedName description filterCode filterDescription
    strategyInstructions interval } }"""
FROM_GENERATION = """mutation($input: GeneratedTraderInput!) {
    createTraderFromGeneration(input: $input) { id } }"""
RISK = {"stopLoss": "0.2", "takeProfit": "0.2", "positionSizePercent": "20"}
PERFORMANCE = """query($id: ID!) {
  traderPerformance(traderId: $id) { metrics { closedPositions totalPnL feesPaid }
    equityCurve { equity } }
  trader(id: $id) { trades(first: 5) { nodes { status exitReason signal { status } } } }
}"""


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def server(db: str, tmp_path: Path) -> Iterator[ApiServer]:
    with engine_server(db, tmp_path / "serve.log") as api:
        yield api


async def collect(
    results: AsyncGenerator[dict[str, Any], None], into: list[dict[str, Any]]
) -> None:
    async for result in results:
        into.append(next(iter(result.values())))


async def until(condition: Any, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("not reached")


async def trade_round_trip(
    server: ApiServer, token: str, trader_id: str, start: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Subscribe, then `start()`, and wait for a trade to open and close."""
    trades: list[dict[str, Any]] = []
    pnl: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    client = Client(
        transport=transport(server.ws_url, "graphql-transport-ws", {"token": token}),
        execute_timeout=TIMEOUT,
    )
    async with client as session:
        tasks = [
            asyncio.ensure_future(collect(session.subscribe(GraphQLRequest(q)), into))
            for q, into in ((TRADES, trades), (PNL, pnl), (SIGNALS, signals))
        ]
        await asyncio.sleep(1.0)
        await start()
        try:
            await until(lambda: any(t["kind"] == "closed" for t in trades), 90)
            await until(lambda: any(p["metrics"]["closedPositions"] == 1 for p in pnl), 20)
        finally:
            for task in tasks:
                task.cancel()
    return trades, pnl, signals


async def test_a_ready_signal_becomes_a_paper_trade_that_closes_by_itself(
    server: ApiServer,
) -> None:
    user, token = await create_user("alice")
    trader_id = (await server.graphql(token, CREATE, code="return False"))["createTrader"]["id"]

    async def ready() -> None:
        signal = Signal(
            uuid.uuid4(), uuid.UUID(trader_id), user.id, "BTC/USDT", "1m", Side.LONG,
            Decimal(1), 0, 0, status=SignalStatus.READY,
        )  # fmt: skip
        assert await DbSignalRepository().add(signal)

    trades, _, _ = await trade_round_trip(server, token, trader_id, ready)
    kinds = [t["kind"] for t in trades]
    assert kinds[:2] == ["filled", "opened"] and kinds[-2:] == ["filled", "closed"]
    assert all(t["traderId"] == trader_id for t in trades)
    fill = trades[0]
    assert Decimal(fill["fillPrice"]) > Decimal(fill["expectedPrice"])
    closed = trades[-1]
    assert (closed["status"], closed["exitReason"]) in {
        ("CLOSED", "stop_loss"),
        ("CLOSED", "take_profit"),
    }
    data = await server.graphql(token, PERFORMANCE, id=trader_id)
    metrics = data["traderPerformance"]["metrics"]
    assert metrics["closedPositions"] == 1 and Decimal(metrics["feesPaid"]) > 0
    assert len(data["traderPerformance"]["equityCurve"]) >= 1
    (trade,) = data["trader"]["trades"]["nodes"]
    assert trade["signal"]["status"] == "ENTERED"


async def test_a_template_trader_leads_to_analysed_signals_and_paper_trades(
    server: ApiServer,
) -> None:
    _, token = await create_user("bob")
    generated = (await server.graphql(token, GENERATE, d=SENTENCE))["generateTrader"]
    assert (generated["template"], generated["interval"]) == ("rsi_mean_reversion", "1m")
    assert any("45" in adaptation for adaptation in generated["adaptations"])
    preview = {key: generated[key] for key in GENERATED_FIELDS}
    created = await server.graphql(
        token, FROM_GENERATION, input={**preview, "enabled": True, "riskParameters": RISK}
    )
    trader_id = created["createTraderFromGeneration"]["id"]

    async def nothing() -> None:
        return None

    trades, _, signals = await trade_round_trip(server, token, trader_id, nothing)
    assert any(s["kind"] == "created" for s in signals)
    assert any(s["status"] == "ENTERED" for s in signals)
    assert [t["kind"] for t in trades][-1] == "closed"
    data = await server.graphql(token, PERFORMANCE, id=trader_id)
    assert data["traderPerformance"]["metrics"]["closedPositions"] >= 1
    assert data["traderPerformance"]["equityCurve"]
