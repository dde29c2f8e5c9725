"""Nested fields batch: the query count does not grow with the number of traders."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from app.api.context import Context
from app.api.schema import build_schema
from app.core.events import InProcessEventBus
from app.core.settings import Settings
from app.db.models import Signal, Trade, Trader, User
from app.domain.enums import Side, TraderStatus, TradingMode
from app.services.repositories.traders import spec_of
from app.services.repositories.trading import DbTradeStore
from app.services.runtime import Runtime
from app.services.users import create_user
from tests.api.conftest import Caller
from tests.trading.booking import close_trade, open_trade

QUERY = """{ traders(first: 100) { nodes {
    id name
    metrics { totalSignals totalPnL winRate demoMetrics { totalPnL } liveMetrics { totalPnL } }
    signals(first: 5) { edges { node { id symbol trader { name } } } pageInfo { hasNextPage } }
    trades(first: 3) { nodes { id pnl } }
} } }"""
STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class _SqlCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().lstrip()
        if message.upper().startswith(STATEMENTS):
            self.statements.append(message)


@contextmanager
def counting_sql() -> Iterator[_SqlCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = _SqlCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


async def _make_traders(owner_id: int, count: int) -> None:
    owner = await User.get(id=owner_id)
    now = datetime.now(UTC)
    for index in range(count):
        trader = await Trader.create(owner=owner, name=f"t{index}")
        await Signal.bulk_create(
            Signal(
                trader=trader, symbol=f"S{n}/USDT", interval="1h", price=Decimal(1), candle_time=now
            )
            for n in range(7)
        )
        await Trade.create(
            trader=trader,
            mode=TradingMode.DEMO,
            symbol="S0/USDT",
            side=Side.LONG,
            amount=Decimal(1),
            entry_price=Decimal(2),
        )


async def _count(alice: Caller) -> tuple[int, dict]:
    with counting_sql() as counter:
        data = await alice.data(QUERY)
    return len(counter.statements), data


async def test_query_count_is_the_same_for_5_and_50_traders(alice: Caller) -> None:
    await _make_traders(alice.user_id, 5)
    few, data = await _count(alice)
    assert len(data["traders"]["nodes"]) == 5
    assert all(len(t["signals"]["edges"]) == 5 for t in data["traders"]["nodes"])
    assert all(t["signals"]["pageInfo"]["hasNextPage"] for t in data["traders"]["nodes"])

    await _make_traders(alice.user_id, 45)
    many, data = await _count(alice)
    assert len(data["traders"]["nodes"]) == 50
    assert all(t["metrics"]["totalSignals"] == 7 for t in data["traders"]["nodes"])
    assert few == many
    assert 3 <= few <= 8


TRADING = """{ traders(first: 50) { nodes {
    metrics { expectancy profitFactor feesPaid unrealisedPnL
        demoMetrics { equity maxDrawdown sharpeRatio sortinoRatio timeInMarket } }
    trades(first: 3) { nodes {
        id signal { id trade { id } }
        orders { clientOrderId fills { price expectedPrice } }
        fills { amount }
    } }
} } }"""


async def _make_trading(owner_id: int, count: int) -> None:
    """Traders with a signal, a closed trade through its orders and fills, and a ledger."""
    owner = await User.get(id=owner_id)
    now = datetime.now(UTC)
    for index in range(count):
        trader = await Trader.create(
            owner=owner, name=f"q{index}", enabled=True, status=TraderStatus.RUNNING
        )
        signal = await Signal.create(
            trader=trader, symbol="S/USDT", interval="1h", price=Decimal(1), candle_time=now
        )
        spec = spec_of(trader)
        trade = await open_trade(DbTradeStore(), spec, "S/USDT", Decimal(1), Decimal(2), 0)
        await Trade.filter(id=trade.id).update(signal_id=signal.id)
        await close_trade(DbTradeStore(), trade, Decimal(3), 60_000)


async def test_trading_fields_cost_the_same_queries_for_5_and_50_traders(alice: Caller) -> None:
    await _make_trading(alice.user_id, 5)
    with counting_sql() as counter:
        data = await alice.data(TRADING)
    few = len(counter.statements)
    assert all(len(t["trades"]["nodes"][0]["orders"]) == 2 for t in data["traders"]["nodes"])
    await _make_trading(alice.user_id, 45)
    with counting_sql() as counter:
        data = await alice.data(TRADING)
    assert len(data["traders"]["nodes"]) == 50
    node = data["traders"]["nodes"][0]["trades"]["nodes"][0]
    assert node["signal"]["trade"]["id"] == node["id"] and len(node["fills"]) == 2
    assert len(counter.statements) == few


async def test_operations_sharing_a_context_do_not_share_loaded_rows(db: str) -> None:
    """A websocket connection runs all its operations with one context."""
    owner, _ = await create_user("carol")
    await _make_traders(owner.id, 1)
    context = Context(
        request=None,  # type: ignore[arg-type]
        runtime=Runtime(Settings(), InProcessEventBus()),
        user=owner,
    )
    schema = build_schema(Settings())
    query = "{ traders { nodes { metrics { totalSignals } } } }"

    first = await schema.execute(query, context_value=context)
    trader = await Trader.get(owner_id=owner.id)
    await Signal.create(
        trader=trader,
        symbol="X/USDT",
        interval="1h",
        price=Decimal(1),
        candle_time=datetime.now(UTC),
    )
    second = await schema.execute(query, context_value=context)

    assert first.data == {"traders": {"nodes": [{"metrics": {"totalSignals": 7}}]}}
    assert second.data == {"traders": {"nodes": [{"metrics": {"totalSignals": 8}}]}}
