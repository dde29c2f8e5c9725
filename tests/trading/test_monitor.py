"""The Monitor stage of open positions: live ticks between candle closes, the exit filter in
the sandbox, the analysis review every N candles; and the simulated market's ticks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from decimal import Decimal

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction
from app.domain.enums import ExitReason, Side, TradeStatus
from app.domain.trader_spec import RiskSettings
from app.engine.analysis.base import AnalysisContext
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.live import LiveEngine
from app.engine.market import MarketData
from app.engine.memory import MemoryTraderRepository
from app.engine.positions import PositionMonitor
from app.engine.prices import PriceBoard
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.engine.signals import SignalManager
from app.engine.workflow import Workflow
from tests.trading.replay import Replay, spec
from tests.trading.test_scripted import RISK

D = Decimal
FLAT = (100.0, 100.5, 99.5, 100.0, 1e9)


async def test_the_exit_filter_closes_a_position_when_it_matches(sandbox: FilterSandbox) -> None:
    trader = spec(RISK, exit_filter_code="return candles.close[-1] > 102")
    replay = Replay([trader], sandbox)
    await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    await replay.close({"BTC/USDT": (100.0, 102.5, 99.8, 101.5, 1e9)})
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN
    hit = await replay.close({"BTC/USDT": (101.5, 103.0, 101.0, 102.8, 1e9)})
    (trade,) = replay.trades_of(trader)
    assert (trade.status, trade.exit_reason, trade.closed_at) == (
        TradeStatus.CLOSED,
        ExitReason.EXIT_SIGNAL,
        hit.at,
    )
    (exit_order,) = [o for o in replay.trades.orders_by_id.values() if o.exit_reason]
    assert exit_order.reason == "the exit filter matched"


class Reviewing:
    """An analysis engine that likes the setup twice, then calls it bad; it keeps what it was
    asked."""

    kind = AnalysisEngineKind.RULES

    def __init__(self) -> None:
        self.asked: list[AnalysisContext] = []

    async def analyze(self, context: AnalysisContext) -> Decision:
        self.asked.append(context)
        faded = len(self.asked) >= 3
        return Decision(
            id=uuid.uuid4(),
            signal_id=context.signal.id,
            trader_id=context.trader.id,
            action=DecisionAction.BAD_SETUP if faded else DecisionAction.GOOD_SETUP,
            direction=context.signal.side,
            confidence=0.2 if faded else 0.7,
            reasoning="momentum faded" if faded else "the trend holds",
            created_at=context.now,
            as_of=context.as_of,
        )


async def test_the_analysis_is_asked_every_n_candles_and_may_close(
    sandbox: FilterSandbox,
) -> None:
    trader = spec(RiskSettings(review_candles=2))
    engine = Reviewing()
    replay = Replay([trader], sandbox, analysis=engine)
    signal = await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    for _ in range(5):
        await replay.close({"BTC/USDT": FLAT})
    assert len(engine.asked) == 2
    asked = engine.asked[0]
    assert (asked.signal.id, asked.signal.symbol, asked.signal.side) == (
        signal.id,
        "BTC/USDT",
        Side.LONG,
    )
    assert asked.positions and asked.positions[0].symbol == "BTC/USDT"
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN
    await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(trader)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.ANALYSIS)
    (exit_order,) = [o for o in replay.trades.orders_by_id.values() if o.exit_reason]
    assert exit_order.reason == "rules review, confidence 0.20: momentum faded"


async def test_the_rule_engine_closes_a_long_whose_trend_broke(sandbox: FilterSandbox) -> None:
    trader = spec(RiskSettings(review_candles=1))
    replay = Replay([trader], sandbox)
    for step in range(70):  # a steady climb the rules like for a long
        price = 100.0 + step * 0.4
        await replay.close({"BTC/USDT": (price, price + 0.3, price - 0.1, price + 0.2, 1e9)})
    await replay.ready(trader)
    await replay.close({"BTC/USDT": (128.0, 128.3, 127.8, 128.1, 1e9)})
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN
    for step in range(40):  # then a slide under its averages
        price = 128.0 - step * 0.9
        await replay.close({"BTC/USDT": (price, price + 0.1, price - 0.6, price - 0.5, 1e9)})
        if replay.trades_of(trader)[0].status == TradeStatus.CLOSED:
            break
    (trade,) = replay.trades_of(trader)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.ANALYSIS)
    (exit_order,) = [o for o in replay.trades.orders_by_id.values() if o.exit_reason]
    assert exit_order.reason is not None and exit_order.reason.startswith("rules review")


async def test_a_tick_through_the_stop_closes_before_the_candle_does(
    sandbox: FilterSandbox,
) -> None:
    trader = spec(RISK)
    replay = Replay([trader], sandbox)
    await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(trader)
    board = PriceBoard()
    monitor = PositionMonitor(replay.trades, replay.orders, board.subscribe(), replay.clock)
    for price in ("99.50", "98.40"):
        board.update("BTC/USDT", replay.now + 1000, D(price))
        assert await monitor.run(None) == 0  # type: ignore[arg-type]
    board.update("BTC/USDT", replay.now + 2000, D("97.90"))
    assert await monitor.run(None) == 1  # type: ignore[arg-type]
    (trade,) = replay.trades_of(trader)
    assert (trade.status, trade.exit_reason) == (TradeStatus.CLOSED, ExitReason.STOP_LOSS)
    fill = [f for f in replay.trades.fills_of(trade.id) if f.expected_price == D("97.90")]
    assert len(fill) == 1  # the tick jumped past 98.03: the order met 97.90


class Counting:
    name = "counting"

    def __init__(self, board: PriceBoard) -> None:
        self.updates = board.subscribe()
        self.runs: list[float] = []

    async def on_close(self, close: object, view: object, traders: object) -> None:
        return None

    async def prompted(self) -> None:
        await self.updates.wait()

    async def run(self, view: object) -> int:
        if self.updates.take():
            self.runs.append(time.perf_counter())
        return 0


async def test_the_live_engine_wakes_a_price_driven_stage_on_every_tick() -> None:
    feed = SimulatedFeed(["BTC/USDT"], intervals=("1h",), speed=1.0)
    market = MarketData(feed, KlineStore(depth=100))
    stage = Counting(market.prices)
    traders = MemoryTraderRepository([])
    signals = SignalManager(None, traders, None, RealtimeClock())  # type: ignore[arg-type]
    workflow = Workflow(traders, ScreenerEngine(FilterSandbox(workers=1)), signals, [stage])
    engine = LiveEngine(market, workflow, RealtimeClock(), poll_ms=600_000)
    await engine.start()
    try:
        for n in range(3):
            sent = time.perf_counter()
            market.prices.update("BTC/USDT", RealtimeClock().now() + 60_000 + n, D(100 + n))
            for _ in range(100):
                if len(stage.runs) > n:
                    break
                await asyncio.sleep(0.01)
            assert len(stage.runs) == n + 1
            assert stage.runs[-1] - sent < 1.0
    finally:
        await engine.stop()


def test_the_simulated_market_ticks_along_each_candle_and_has_a_spread() -> None:
    feed = SimulatedFeed(["BTC/USDT", "ADA/USDT"], intervals=("1m",), seed=3, speed=None)
    store = KlineStore(depth=100)
    ticks: dict[int, list[float]] = defaultdict(list)
    enough = asyncio.Event()

    def on_tick(symbol: str, time: int, price: float) -> None:
        if symbol == "BTC/USDT":
            ticks[time - time % 60_000].append(price)
        if len(ticks) > 5:
            enough.set()

    feed.on_tick = on_tick

    async def candles() -> None:
        task = asyncio.create_task(feed.run(store))
        await enough.wait()
        task.cancel()

    asyncio.run(candles())
    stored = store.candles("BTC/USDT", "1m")
    closed = {int(t): i for i, t in enumerate(stored.time)}
    checked = 0
    for opened, prices in ticks.items():
        if opened in closed:
            row = closed[opened]
            assert len(prices) == 5
            assert (max(prices), min(prices)) == (stored.high[row], stored.low[row])
            checked += 1
    assert checked >= 4
    assert all(feed.ticker(symbol) == t for symbol, t in feed.tickers().items())
    assert feed.ticker("NOPE/USDT") is None
    spreads = {
        symbol: (ticker.ask - ticker.bid) / ticker.last
        for symbol, ticker in feed.tickers().items()
        if ticker.ask is not None and ticker.bid is not None
    }
    assert set(spreads) == {"BTC/USDT", "ADA/USDT"}
    assert all(D("0.00005") < spread < D("0.01") for spread in spreads.values())
