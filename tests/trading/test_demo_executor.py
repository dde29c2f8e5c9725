"""`DemoTradeExecutor` through the `TradeExecutor` protocol: what each order type gets from
the market it meets, and what it answers to fetch, cancel and balances."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from app.domain.enums import (
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    TradingMode,
)
from app.domain.fill_model import FillModel
from app.domain.ledger import Ledger
from app.domain.orders import Order
from app.engine.clock import ReplayClock
from app.engine.executors.base import TradeExecutor
from app.engine.executors.demo import DemoTradeExecutor
from app.engine.klines import KlineStore
from app.engine.prices import MarketQuotes, PriceBoard
from tests.trading.replay import INTERVAL, START, STEP, FixedInstruments

D = Decimal
MODEL = FillModel(spread=D("0.0002"), impact=D("0.1"))


def executor() -> tuple[DemoTradeExecutor, KlineStore, ReplayClock]:
    store = KlineStore(depth=50)
    store.append("BTC/USDT", INTERVAL, [[START, 100.0, 100.5, 99.5, 100.0, 1000.0]])
    clock = ReplayClock(START + STEP)
    ledger = Ledger.opened(D(1000)).buy("BTC/USDT", D(2), D(100), D("0.2"))

    async def account() -> Ledger:
        return ledger

    quotes = MarketQuotes(store, INTERVAL, clock)
    return DemoTradeExecutor(quotes, FixedInstruments(), clock, account, MODEL), store, clock


def order(kind: OrderType, side: OrderSide, amount: str, **prices: Any) -> Order:
    return Order(
        uuid.uuid4(), f"o-{uuid.uuid4().hex}", uuid.uuid4(), 1, uuid.uuid4(), TradingMode.DEMO,
        OrderPurpose.ENTRY, "BTC/USDT", side, kind, D(amount), START + STEP,
        status=OrderStatus.OPEN, **prices,
    )  # fmt: skip


async def test_a_market_order_pays_half_the_spread_and_its_impact() -> None:
    demo, _, _ = executor()
    assert isinstance(demo, TradeExecutor)
    buy = await demo.place(order(OrderType.MARKET, OrderSide.BUY, "10"))
    (fill,) = buy.fills
    # half spread 0.01% + impact 0.1 x 10/1000 = 0.1%: 100 x 1.0011 = 100.11
    assert (buy.status, fill.price, fill.expected_price) == (
        OrderStatus.CLOSED,
        D("100.11"),
        D(100),
    )
    assert (fill.fee, fill.liquidity) == (D("1.00110000"), Liquidity.TAKER)
    sell = await demo.place(order(OrderType.MARKET, OrderSide.SELL, "1"))
    assert sell.fills[0].price == D("99.98")  # 100 x (1 - 0.0002), rounded down


async def test_a_limit_order_rests_then_fills_in_parts_capped_by_volume() -> None:
    demo, store, clock = executor()
    limit = order(OrderType.LIMIT, OrderSide.BUY, "200", price=D(99))
    assert (await demo.place(limit)).status == OrderStatus.OPEN
    assert await demo.fetch(limit) == (await demo.fetch(limit))
    store.append("BTC/USDT", INTERVAL, [[START + STEP, 100.0, 100.2, 98.5, 99.5, 1000.0]])
    store.append("BTC/USDT", INTERVAL, [[START + 2 * STEP, 99.5, 99.8, 98.8, 99.0, 800.0]])
    clock.advance(START + 3 * STEP)
    fetched = await demo.fetch(limit)
    assert fetched is not None and fetched.status == OrderStatus.OPEN
    # 10% of each candle's volume: 100 of 1000, then 80 of 800, at the limit, as a maker.
    assert [(f.amount, f.price, f.liquidity) for f in fetched.fills] == [
        (D(100), D(99), Liquidity.MAKER),
        (D(80), D(99), Liquidity.MAKER),
    ]
    cancelled = await demo.cancel(limit)
    assert cancelled.status == OrderStatus.CANCELED and len(cancelled.fills) == 2


async def test_a_marketable_limit_fills_at_once_and_a_stop_past_the_price_is_refused() -> None:
    demo, _, _ = executor()
    crossing = await demo.place(order(OrderType.LIMIT, OrderSide.BUY, "1", price=D(101)))
    assert crossing.status == OrderStatus.CLOSED and crossing.fills[0].price <= D(101)
    stop = order(OrderType.STOP_MARKET, OrderSide.SELL, "1", stop_price=D(101))
    refused = await demo.place(stop)
    assert (refused.status, refused.reason) == (
        OrderStatus.REJECTED,
        "the stop would trigger immediately",
    )


async def test_a_stop_market_triggers_on_touch_and_fills_from_its_stop() -> None:
    demo, store, clock = executor()
    stop = order(OrderType.STOP_MARKET, OrderSide.SELL, "2", stop_price=D(98))
    assert (await demo.place(stop)).status == OrderStatus.OPEN
    store.append("BTC/USDT", INTERVAL, [[START + STEP, 100.0, 100.1, 97.5, 97.8, 1000.0]])
    clock.advance(START + 2 * STEP)
    fetched = await demo.fetch(stop)
    assert fetched is not None and fetched.status == OrderStatus.CLOSED
    (fill,) = fetched.fills
    assert (fill.expected_price, fill.price) == (D(98), D("97.97"))  # 98 x (1 - 0.0003)


async def test_an_intent_is_unknown_to_the_paper_venue_and_balances_are_the_ledger() -> None:
    demo, _, _ = executor()
    intent = order(OrderType.MARKET, OrderSide.BUY, "1")
    intent = Order(
        **{**{f: getattr(intent, f) for f in intent.__slots__}, "status": OrderStatus.INTENT}
    )
    assert await demo.fetch(intent) is None
    balances = await demo.balances()
    assert balances["USDT"].free == D("799.8") and balances["BTC"].total == D(2)


def test_a_mark_is_the_last_price_of_the_quote_from_a_tick_or_the_last_closed_candle() -> None:
    store = KlineStore(depth=50)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        store.append(symbol, INTERVAL, [[START, 100.0, 100.5, 99.5, 100.25, 1000.0]])
    store.append("BTC/USDT", INTERVAL, [[START + STEP, 100.0, 101.0, 99.0, 100.75, 1000.0]])
    board = PriceBoard()

    def no_ticker(symbol: str) -> None:
        return None

    quotes = MarketQuotes(store, INTERVAL, ReplayClock(START + STEP), board, no_ticker)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]

    def last_prices() -> dict[str, Decimal]:
        return {s: quote.last for s in symbols if (quote := quotes.quote(s)) is not None}

    # The second BTC candle has not closed yet; SOL has no price at all.
    expected = {"BTC/USDT": D("100.25"), "ETH/USDT": D("100.25")}
    assert quotes.marks(symbols) == last_prices() == expected
    board.update("ETH/USDT", START + STEP + 1, D("99.5"))
    expected["ETH/USDT"] = D("99.5")
    assert quotes.marks(symbols) == last_prices() == expected
