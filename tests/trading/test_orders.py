"""Invariant 2 on the database, both back ends: every order is recorded as an intent before it
is sent, is never sent twice, and is settled after a crash.

A crash is an executor that dies in `place` (the process would have died there); the
engine that starts next is a fresh `OrderManager` on the same database, which reconciles.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest

from app.core.events import InProcessEventBus
from app.db import models
from app.db.models import Trader, User
from app.domain.enums import (
    ExitReason,
    OrderPurpose,
    OrderStatus,
    Side,
    SignalStatus,
    TradeStatus,
    TradingMode,
)
from app.domain.fill_model import FillModel
from app.domain.orders import Order, OrderReport
from app.domain.risk import EntryPlan
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import RiskSettings
from app.engine.clock import ReplayClock, to_ms
from app.engine.executors.base import Balance, ExecutorError, TradeExecutor
from app.engine.executors.demo import DemoTradeExecutor
from app.engine.klines import KlineStore
from app.engine.memory import CollectingNotifier
from app.engine.orders import ENTRY_INTENT_TTL_MS, STUCK_INTENT_MS, Exit, OrderManager
from app.engine.ports import Booked, ExitLevels
from app.engine.prices import MarketQuotes
from app.services.repositories import trading as trading_store
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import spec_of
from app.services.repositories.trading import DbTradeStore
from app.services.traders import TraderManager
from tests.trading.replay import INTERVAL, START, STEP, FixedInstruments

D = Decimal
PLAN = EntryPlan(amount=D(2), expected_price=D(100), estimated_cost=D("200.3"))


class Crash(BaseException):
    """The process dies: nothing after it runs, nothing catches it."""


class Venue:
    """An exchange that keeps its orders by client order id, like a real one."""

    def __init__(self, model: FillModel, quotes: MarketQuotes, clock: ReplayClock) -> None:
        self.demo = DemoTradeExecutor(quotes, FixedInstruments(), clock, self._ledger, model)
        self.orders: dict[str, OrderReport] = {}
        self.placed: list[str] = []
        self.crash_after_accepting = False

    async def _ledger(self):
        raise NotImplementedError

    async def place(self, order: Order) -> OrderReport:
        if order.client_order_id in self.orders:
            raise ExecutorError("duplicate client order id")
        self.placed.append(order.client_order_id)
        report = self.orders[order.client_order_id] = await self.demo.place(order)
        if self.crash_after_accepting:
            raise Crash
        return report

    async def cancel(self, order: Order) -> OrderReport:
        return self.orders.get(order.client_order_id) or OrderReport(OrderStatus.CANCELED)

    async def fetch(self, order: Order) -> OrderReport | None:
        return self.orders.get(order.client_order_id)

    async def balances(self) -> dict[str, Balance]:
        return {}


class Dying:
    """An executor whose process dies while sending."""

    async def place(self, order: Order) -> OrderReport:
        raise Crash

    async def cancel(self, order: Order) -> OrderReport:
        raise Crash

    async def fetch(self, order: Order) -> OrderReport | None:
        raise Crash

    async def balances(self) -> dict[str, Balance]:
        raise Crash


@pytest.fixture
def clock() -> ReplayClock:
    return ReplayClock(START + STEP)


@pytest.fixture
def quotes(clock: ReplayClock) -> MarketQuotes:
    store = KlineStore(depth=100)
    store.append("BTC/USDT", INTERVAL, [[START, 100.0, 100.5, 99.5, 100.0, 1e9]])
    return MarketQuotes(store, INTERVAL, clock)


def manager(executor: TradeExecutor, clock: ReplayClock) -> OrderManager:
    def route(order: Order) -> TradeExecutor:
        return executor

    return OrderManager(DbTradeStore(), route, CollectingNotifier(), clock, FixedInstruments())


def demo(quotes: MarketQuotes, clock: ReplayClock) -> DemoTradeExecutor:
    async def ledger():
        raise NotImplementedError

    return DemoTradeExecutor(quotes, FixedInstruments(), clock, ledger, FillModel())


async def ready_signal() -> tuple[Signal, object]:
    user = await User.create(name=f"u{uuid.uuid4().hex[:8]}")
    row = await TraderManager(InProcessEventBus()).create(
        user, {"name": "t", "enabled": True, "interval": INTERVAL, "stop_loss": D(2)}
    )
    signal = Signal(
        uuid.uuid4(), row.id, user.id, "BTC/USDT", INTERVAL, Side.LONG, D(100), START, START,
        status=SignalStatus.READY,
    )  # fmt: skip
    assert await DbSignalRepository().add(signal)
    return signal, spec_of(await Trader.get(id=row.id))


async def test_an_entry_that_died_before_its_fill_is_sent_once_after_restart(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    with pytest.raises(Crash):
        await manager(Dying(), clock).open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    (order,) = await models.Order.all()
    assert (order.status, order.client_order_id) == (OrderStatus.INTENT, f"e-{signal.id.hex}")
    assert [r.action for r in await models.TradeAuditLog.all()] == ["order_intent"]

    restarted = manager(demo(quotes, clock), clock)
    again = await restarted.open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    assert again is None  # the signal's entry exists: not a second order
    assert await restarted.reconcile() == 1
    assert await restarted.reconcile() == 0
    (order,) = await models.Order.all()
    assert (order.status, order.filled) == (OrderStatus.CLOSED, D(2))
    assert await models.Fill.all().count() == 1
    trade = await models.Trade.get()
    assert (trade.status, trade.amount) == (TradeStatus.OPEN, D(2))
    ledger = await DbTradeStore().ledger(spec.id, TradingMode.DEMO)  # type: ignore[attr-defined]
    assert ledger.cash == D(10_000) - trade.entry_cost - trade.entry_fee
    actions = [r.action for r in await models.TradeAuditLog.all().order_by("id")]
    assert actions == ["order_intent", "order_fill", "order_closed"]


async def test_a_stale_entry_intent_is_given_up_and_an_exit_intent_is_always_sent(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    with pytest.raises(Crash):
        await manager(Dying(), clock).open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    clock.advance(clock.now() + ENTRY_INTENT_TTL_MS + 1)
    restarted = manager(demo(quotes, clock), clock)
    assert await restarted.reconcile() == 1
    order = await models.Order.get()
    assert order.status == OrderStatus.REJECTED
    assert (await models.Trade.get()).status == TradeStatus.CANCELLED

    second, spec = await ready_signal()
    booked = await restarted.open(spec, second, PLAN, None)  # type: ignore[arg-type]
    assert booked is not None and booked.trade.status == TradeStatus.OPEN
    with pytest.raises(Crash):
        await manager(Dying(), clock).close(booked.trade, ExitReason.STOP_LOSS)
    clock.advance(clock.now() + 10 * ENTRY_INTENT_TTL_MS)
    assert await manager(demo(quotes, clock), clock).reconcile() == 1
    trade = await models.Trade.get(id=booked.trade.id)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.STOP_LOSS)


async def test_an_order_the_venue_accepted_before_the_crash_is_booked_not_resent(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    venue = Venue(FillModel(), quotes, clock)
    venue.crash_after_accepting = True
    with pytest.raises(Crash):
        await manager(venue, clock).open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    assert (await models.Order.get()).status == OrderStatus.INTENT
    venue.crash_after_accepting = False
    assert await manager(venue, clock).reconcile() == 1
    assert venue.placed == [f"e-{signal.id.hex}"]
    assert (await models.Order.get()).status == OrderStatus.CLOSED
    assert (await models.Trade.get()).status == TradeStatus.OPEN
    assert await models.Fill.all().count() == 1


async def test_two_exits_of_one_trade_never_fly_at_once(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    orders = manager(demo(quotes, clock), clock)
    booked = await orders.open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    assert booked is not None
    with pytest.raises(Crash):
        await manager(Dying(), clock).close(booked.trade, ExitReason.MANUAL)
    assert await orders.close(booked.trade, ExitReason.EMERGENCY) is None
    exits = await models.Order.filter(purpose=OrderPurpose.EXIT)
    assert [o.status for o in exits] == [OrderStatus.INTENT]
    assert await orders.reconcile() == 1
    trade = await models.Trade.get(id=booked.trade.id)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.MANUAL)


async def test_an_order_s_times_are_the_engine_clock_s(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    """Recorded and booked at the replay clock's moments, not the database's wall clock."""
    signal, spec = await ready_signal()
    with pytest.raises(Crash):
        await manager(Dying(), clock).open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    intent = await models.Order.get()
    assert to_ms(intent.created_at) == to_ms(intent.updated_at) == clock.now()
    clock.advance(clock.now() + 1_000)
    assert await manager(demo(quotes, clock), clock).reconcile() == 1
    booked = await models.Order.get()
    assert (booked.status, to_ms(booked.updated_at)) == (OrderStatus.CLOSED, clock.now())


async def test_an_exit_begun_from_a_stale_read_of_its_trade_is_refused(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    orders = manager(demo(quotes, clock), clock)
    trades = []
    for _ in range(3):
        signal, spec = await ready_signal()
        booked = await orders.open(spec, signal, PLAN, None)  # type: ignore[arg-type]
        assert booked is not None
        trades.append(booked.trade)
    closed, stale, fresh = trades
    assert await orders.close(closed, ExitReason.MANUAL) is not None  # closed since read
    await models.Trade.filter(id=stale.id).update(exit_attempts=1)  # another exit since
    store = DbTradeStore()
    exits = [(t, OrderManager._exit_order(Exit(t, ExitReason.MANUAL), START)) for t in trades]
    assert await store.begin_exits(exits) == {fresh.id}
    rows = {row.id: row for row in await models.Trade.filter(id__in=[t.id for t in trades])}
    assert [rows[t.id].exit_attempts for t in trades] == [1, 1, 1]
    assert (
        await models.Order.filter(purpose=OrderPurpose.EXIT, status=OrderStatus.INTENT).count() == 1
    )


async def test_no_entry_is_recorded_for_a_disabled_trader(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    await Trader.filter(id=signal.trader_id).update(enabled=False)
    assert await manager(demo(quotes, clock), clock).open(spec, signal, PLAN, None) is None  # type: ignore[arg-type]
    assert await models.Order.all().count() == 0


async def test_risk_settings_reach_the_spec(db: str) -> None:
    _, spec = await ready_signal()
    assert spec.risk == RiskSettings(stop_loss=D(2))  # type: ignore[attr-defined]


async def test_a_new_account_opened_by_racing_writers_is_opened_once(db: str) -> None:
    _, spec = await ready_signal()
    store = DbTradeStore()
    trader = spec.id  # type: ignore[attr-defined]
    await asyncio.gather(
        store.ledger(trader, TradingMode.DEMO),
        store.snapshot(trader, TradingMode.DEMO, START, D(10_000), {}),
        store.ledger(trader, TradingMode.DEMO),
        store.snapshot(trader, TradingMode.DEMO, START + STEP, D(10_001), {}),
    )
    assert await models.Ledger.filter(trader_id=trader).count() == 1
    assert await models.Performance.filter(trader_id=trader).count() == 1
    performance = await store.performance(trader, TradingMode.DEMO)
    assert (performance.snapshots, performance.peak_equity) == (2, D(10_001))


async def test_an_intent_whose_sending_failed_is_settled_by_the_next_poll(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    signal, spec = await ready_signal()
    orders = manager(demo(quotes, clock), clock)
    failing = manager(Failing(), clock)
    assert await failing.open(spec, signal, PLAN, None) is None  # type: ignore[arg-type]
    assert (await models.Order.get()).status == OrderStatus.INTENT
    assert await orders.poll() == 0  # too young: it may still be in flight
    clock.advance(clock.now() + STUCK_INTENT_MS)
    assert await orders.poll() == 1
    assert (await models.Order.get()).status == OrderStatus.CLOSED
    assert await models.Fill.all().count() == 1


class Failing(Dying):
    """A venue that does not answer (the send's outcome is unknown)."""

    async def place(self, order: Order) -> OrderReport:
        raise ExecutorError("timed out")


async def open_and_resting(orders: OrderManager) -> tuple[Booked, Booked]:
    """Two traders' entries: one filled at market, one resting as a limit order."""
    signal, spec = await ready_signal()
    opened = await orders.open(spec, signal, PLAN, None)  # type: ignore[arg-type]
    waiting, _ = await ready_signal()
    other = spec_of(await Trader.get(id=waiting.trader_id))
    resting = await orders.open(other, waiting, PLAN, None, limit_price=D(50))
    assert opened is not None and resting is not None
    assert resting.trade.status == TradeStatus.PENDING
    return opened, resting


async def test_the_open_positions_an_analysis_sees_are_the_open_trades_only(
    db: str, clock: ReplayClock, quotes: MarketQuotes
) -> None:
    orders = manager(demo(quotes, clock), clock)
    opened, resting = await open_and_resting(orders)
    trader, other = opened.trade.trader_id, resting.trade.trader_id
    store = DbTradeStore()
    quiet = uuid.uuid4()
    found = await store.open_positions([trader, other, quiet])
    (position,) = found[trader]
    assert (position.symbol, position.side, position.amount) == ("BTC/USDT", Side.LONG, D(2))
    assert position.entry_price == opened.trade.entry_price
    assert found[other] == [] and found[quiet] == []
    held = await store.active_symbols([trader, other, quiet])
    assert held == {trader: {"BTC/USDT"}, other: {"BTC/USDT"}, quiet: set()}
    await orders.close(opened.trade, ExitReason.MANUAL)
    assert await store.open_positions([trader]) == {trader: []}
    assert await store.active_symbols([trader]) == {trader: set()}


async def test_the_active_trades_kept_in_memory_are_those_of_the_database(
    db: str, clock: ReplayClock, quotes: MarketQuotes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store keeps every active trade and every ledger between reads (the position
    monitor's round at each price update, the risk check of a close's entries) and applies
    its own writes to them: after each kind of write they are what a fresh read of the
    database gives."""
    store = DbTradeStore()

    def route(order: Order) -> TradeExecutor:
        return demo(quotes, clock)

    orders = OrderManager(store, route, CollectingNotifier(), clock, FixedInstruments())
    accounts: list[tuple[uuid.UUID, TradingMode]] = []

    async def same() -> list[Trade]:
        kept = await store.active_trades()
        assert kept == await DbTradeStore().active_trades()
        traders = {trade.trader_id for trade in kept}
        assert await store.open_positions(traders) == await DbTradeStore().open_positions(traders)
        held = await store.active_symbols(traders)
        assert held == await DbTradeStore().active_symbols(traders)
        assert await store.ledgers(accounts) == await DbTradeStore().ledgers(accounts)
        return kept

    assert await same() == []
    opened, resting = await open_and_resting(orders)
    accounts += [(t.trader_id, t.mode) for t in (opened.trade, resting.trade)]
    assert {t.id: t.status for t in await same()} == {
        opened.trade.id: TradeStatus.OPEN,
        resting.trade.id: TradeStatus.PENDING,
    }
    levels = ExitLevels(opened.trade.id, D(90), D(130))
    assert await store.set_exit_levels([levels]) == {opened.trade.id}
    await store.set_highest(opened.trade.id, D(120))
    await store.set_highest(opened.trade.id, D(110))  # lower: not written
    kept = {t.id: t for t in await same()}[opened.trade.id]
    assert (kept.stop_loss, kept.take_profit, kept.highest_price) == (D(90), D(130), D(120))
    await orders.close(kept, ExitReason.MANUAL)
    (left,) = await same()
    assert left.id == resting.trade.id and left.stop_loss != D(40)
    # Another process's write shows once the kept trades are due to be read again.
    await models.Trade.filter(id=resting.trade.id).update(stop_loss=D(40))
    await models.Ledger.filter(trader_id=resting.trade.trader_id).update(cash=D(1))
    assert (await store.active_trades())[0].stop_loss == left.stop_loss
    assert (await store.ledger(resting.trade.trader_id, resting.trade.mode)).cash != D(1)
    monkeypatch.setattr(trading_store, "KEPT_FRESH_S", 0.0)
    assert (await same())[0].stop_loss == D(40)
    assert (await store.ledger(resting.trade.trader_id, resting.trade.mode)).cash == D(1)


def test_a_read_of_the_active_trades_begun_before_a_write_is_not_kept() -> None:
    active = trading_store._ActiveTrades()
    trade = Trade(uuid.uuid4(), uuid.uuid4(), 1, TradingMode.DEMO, "BTC/USDT", START)
    read = {trade.id: trade}
    begun = active.generation
    with active.writing():
        during = active.generation
    active.keep(read, begun, time.monotonic())
    active.keep(read, during, time.monotonic())
    assert active.sorted() is None
    with active.writing():
        active.keep(read, active.generation, time.monotonic())  # under way
    assert active.sorted() is None
    active.keep(read, active.generation, time.monotonic())
    assert active.sorted() == [trade]
