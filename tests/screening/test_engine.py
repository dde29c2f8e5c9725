"""The workflow on the simulated feed: signals attributed to their trader, never duplicated."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import talib

from app.bootstrap import build_workflow
from app.core.events import Event, EventType, InProcessEventBus
from app.db.models import Signal, Trader, User
from app.domain.enums import SignalStatus, TraderStatus
from app.engine.clock import RealtimeClock
from app.engine.close_trigger import CloseTrigger
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose, ScreenReport
from app.engine.workflow import Workflow
from tests.screening.conftest import SYMBOLS

ALWAYS = "return True"
ONLY_BTC = "return symbol == 'BTC/USDT'"
EVERY_OTHER_CANDLE = "return int(candles.time[-1] // 3600000) % 2 == 0"
STRONG = "r = rsi(candles, 14)\nreturn r[-1] > 50, 'short', r[-1] / 100"
BROKEN = "x = 0\nreturn 1 / x"


class RecordingBus(InProcessEventBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)
        await super().publish(event)


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


class Engine:
    """The live wiring (database repositories, bus, wall clock) screening the latest close."""

    def __init__(self, market: MarketData, workflow: Workflow) -> None:
        self.market = market
        self.workflow = workflow

    @property
    def reports(self) -> list[ScreenReport]:
        return self.workflow.screener.reports

    async def on_close(self, close: CandleClose) -> ScreenReport | None:
        return await self.workflow.on_close(close, self.market.view(close.at))

    async def screen(self, interval: str) -> ScreenReport:
        newest = self.market.store.last_time(SYMBOLS[0], interval)
        assert newest is not None
        report = await self.on_close(CandleClose(interval, newest))
        assert report is not None
        return report


@pytest.fixture
async def engine(
    db: str, store: KlineStore, feed: SimulatedFeed, sandbox: FilterSandbox, bus: RecordingBus
) -> AsyncIterator[Engine]:
    market = MarketData(feed, store)
    yield Engine(market, build_workflow(bus, RealtimeClock(), sandbox, market))


async def _triggered(engine: Engine, store: KlineStore) -> AsyncIterator[CloseTrigger]:
    trigger = CloseTrigger(store, engine.on_close, RealtimeClock(), settle_ms=50)
    task = asyncio.create_task(trigger.run())
    await asyncio.sleep(0)
    try:
        yield trigger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _handled(trigger: CloseTrigger, interval: str) -> None:
    for _ in range(200):
        stats = trigger.stats.get(interval)
        if stats is not None and stats.handled:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {interval} close was handled")


async def _trader(owner: User, name: str, code: str, enabled: bool = True) -> Trader:
    return await Trader.create(
        owner=owner,
        name=name,
        enabled=enabled,
        status=TraderStatus.RUNNING if enabled else TraderStatus.PAUSED,
        interval="1h",
        symbols=SYMBOLS,
        filter_code=code,
    )


async def _active(trader: Trader) -> list[tuple[str, str]]:
    rows = await Signal.filter(
        trader_id=trader.id, status__in=["new", "watching", "ready"]
    ).values_list("symbol", "status")
    return sorted(rows)


async def test_signals_are_attributed_to_the_trader_whose_filter_matched(
    engine: Engine, store: KlineStore, bus: RecordingBus
) -> None:
    owner = await User.create(name="alice")
    always = await _trader(owner, "always", ALWAYS)
    btc = await _trader(owner, "btc", ONLY_BTC)
    strong = await _trader(owner, "strong", STRONG)
    paused = await _trader(owner, "paused", ALWAYS, enabled=False)

    report = await engine.screen("1h")

    assert report.traders == 3
    assert sorted(await Signal.filter(trader_id=always.id).values_list("symbol", flat=True)) == (
        sorted(SYMBOLS)
    )
    assert await Signal.filter(trader_id=btc.id).values_list("symbol", flat=True) == ["BTC/USDT"]
    assert await Signal.filter(trader_id=paused.id).count() == 0
    strong_signals = await Signal.filter(trader_id=strong.id)
    closes = {symbol: store.candles(symbol, "1h").close for symbol in SYMBOLS}
    strong_symbols = {s for s in SYMBOLS if talib.RSI(closes[s], timeperiod=14)[-1] > 50}
    assert strong_symbols and strong_symbols != set(SYMBOLS)
    assert {signal.symbol for signal in strong_signals} == strong_symbols
    for signal in strong_signals:
        assert signal.side == "short"
        assert signal.indicators["1h.rsi(14)"] > 50
        assert signal.score == pytest.approx(signal.indicators["1h.rsi(14)"] / 100)
        assert signal.price == Decimal(str(float(closes[signal.symbol][-1])))
    published = [e for e in bus.events if e.type == EventType.SIGNAL]
    assert len(published) == await Signal.all().count()
    by_id = {str(s.id): s for s in await Signal.all()}
    for event in published:
        assert str(by_id[event.payload["signal_id"]].trader_id) == event.trader_id
        assert event.owner_id == owner.id


async def test_a_condition_that_stays_true_creates_no_duplicate_signal(
    engine: Engine, store: KlineStore, feed: SimulatedFeed
) -> None:
    owner = await User.create(name="bob")
    always = await _trader(owner, "always", ALWAYS)

    await engine.screen("1h")
    feed.step(store)
    await engine.screen("1h")
    engine.workflow.signals.forget(always.id)  # as after a restart: every match looks new
    await engine.screen("1h")

    assert await _active(always) == [(symbol, "new") for symbol in sorted(SYMBOLS)]


async def test_a_newly_matching_symbol_gets_a_signal_once_the_previous_one_is_over(
    engine: Engine, store: KlineStore, feed: SimulatedFeed
) -> None:
    owner = await User.create(name="carol")
    flip = await _trader(owner, "flip", EVERY_OTHER_CANDLE)
    assert int(store.candles("BTC/USDT", "1h").time[-1] // 3_600_000) % 2 == 1
    counts = []
    for step in range(6):
        await engine.screen("1h")
        counts.append(await Signal.filter(trader_id=flip.id).count())
        if step == 3:
            await Signal.filter(trader_id=flip.id).update(status=SignalStatus.EXPIRED)
        feed.step(store)

    n = len(SYMBOLS)
    # matches at steps 1, 3 and 5: at 3 the signals of 1 are still active, at 5 they are over
    assert counts == [0, n, n, n, n, 2 * n]


async def test_a_failing_filter_puts_its_trader_in_error_and_the_others_keep_running(
    engine: Engine, store: KlineStore, feed: SimulatedFeed, bus: RecordingBus
) -> None:
    owner = await User.create(name="dave")
    broken = await _trader(owner, "broken", BROKEN)
    btc = await _trader(owner, "btc", ONLY_BTC)

    for _ in range(3):
        await engine.screen("1h")
        feed.step(store)
    await engine.screen("1h")

    broken = await Trader.get(id=broken.id)
    assert broken.status == TraderStatus.ERROR
    assert "line 2, column 8: ZeroDivisionError" in (broken.status_reason or "")
    status_events = [e for e in bus.events if e.type == EventType.TRADER_STATUS]
    assert [e.trader_id for e in status_events] == [str(broken.id)]
    assert status_events[0].payload["status"] == "error"
    assert status_events[0].payload["reason"] == broken.status_reason
    assert await Signal.filter(trader_id=btc.id).count() == 1
    assert engine.reports[-1].traders == 1


async def test_a_candle_close_from_the_feed_triggers_one_screen_of_its_interval(
    engine: Engine, store: KlineStore, feed: SimulatedFeed
) -> None:
    owner = await User.create(name="erin")
    btc = await _trader(owner, "btc", ONLY_BTC)
    async for trigger in _triggered(engine, store):
        feed.step(store)
        await _handled(trigger, "1h")

    assert [report.interval for report in engine.reports].count("1h") == 1
    assert await Signal.filter(trader_id=btc.id).values_list("symbol", flat=True) == ["BTC/USDT"]


async def test_the_screen_waits_for_every_symbol_of_the_candle(
    engine: Engine, store: KlineStore
) -> None:
    owner = await User.create(name="frank")
    always = await _trader(owner, "always", ALWAYS)
    next_time = int(store.candles("BTC/USDT", "1h").time[-1]) + 3_600_000

    def close(symbols: list[str]) -> None:
        for symbol in symbols:
            price = float(store.candles(symbol, "1h").close[-1])
            store.append(symbol, "1h", [[next_time, price, price, price, price, 1.0]])

    async for trigger in _triggered(engine, store):
        close(SYMBOLS[:3])
        await asyncio.sleep(0.5)
        assert engine.reports == []
        close(SYMBOLS[3:])
        await _handled(trigger, "1h")

    times = [signal.candle_time for signal in await Signal.filter(trader_id=always.id)]
    assert len(times) == len(SYMBOLS)
    assert {int(t.timestamp() * 1000) for t in times} == {next_time}


async def test_new_signals_publish_the_traders_metrics_after_the_commit(
    engine: Engine, bus: RecordingBus
) -> None:
    owner = await User.create(name="alice")
    btc = await _trader(owner, "btc", ONLY_BTC)
    await engine.screen("1h")
    await engine.workflow.signals.notifier.flush()  # metrics are published coalesced
    pnl = [e for e in bus.events if e.type == EventType.PNL]
    assert len(pnl) == 1
    assert pnl[0].trader_id == str(btc.id)
    assert pnl[0].owner_id == owner.id
    assert pnl[0].payload["total_signals"] == 1
    assert pnl[0].payload["last_signal_at"] is not None
    assert pnl[0].payload["demo"]["total_signals"] == 1
    assert bus.events.index(pnl[0]) > max(
        i for i, e in enumerate(bus.events) if e.type == EventType.SIGNAL
    )


async def test_a_changed_filter_starts_a_fresh_match_history(
    engine: Engine, store: KlineStore
) -> None:
    owner = await User.create(name="alice")
    trader = await _trader(owner, "btc", ONLY_BTC)
    await engine.screen("1h")
    await Signal.filter(trader_id=trader.id).update(status=SignalStatus.EXPIRED)
    await engine.screen("1h")
    assert await Signal.filter(trader_id=trader.id).count() == 1, "still matching: not new"

    trader.filter_code = "return symbol in ('BTC/USDT', 'ETH/USDT')"
    await trader.save()
    await engine.screen("1h")
    symbols = await Signal.filter(trader_id=trader.id).values_list("symbol", flat=True)
    assert sorted(symbols) == ["BTC/USDT", "BTC/USDT", "ETH/USDT"]
