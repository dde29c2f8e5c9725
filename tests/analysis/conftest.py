"""Fixtures of the analysis tests: the fake Gemini server, the real client on it, market
views on simulated or scripted candles, and the analysis stages on memory repositories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pytest

from app.domain.decision import Decision
from app.domain.enums import Side
from app.domain.fill_model import FillModel
from app.domain.intervals import interval_ms
from app.domain.ledger import DEFAULT_BALANCE
from app.domain.signal import Signal, price_of
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.assembly import StageOptions, assemble_workflow, memory_ports
from app.engine.clock import Clock, RealtimeClock, ReplayClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.instruments import DerivedInstruments
from app.engine.klines import KlineStore
from app.engine.llm.client import LlmClient, LlmLimits, gemini_models
from app.engine.llm.ports import CallLog, ResponseCache
from app.engine.market import StoreView
from app.engine.memory import (
    MemoryCallLog,
    MemoryResponseCache,
)
from app.engine.prices import CandleUpdates, MarketQuotes
from app.engine.sandbox import FilterSandbox
from app.engine.screening import MarketView
from tests.fakes.gemini import API_KEY, FakeGemini

HOUR = 3_600_000
START = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
FAST = LlmLimits(timeout_seconds=2.0, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@dataclass
class Clients:
    """Builds real google-genai clients on the fake, and closes them."""

    fake: FakeGemini
    closers: list = field(default_factory=list)

    def client(
        self,
        limits: LlmLimits = FAST,
        calls: CallLog | None = None,
        cache: ResponseCache | None = None,
        clock: Clock | None = None,
    ) -> LlmClient:
        models, close = gemini_models(API_KEY, self.fake.base_url, limits.timeout_seconds)
        self.closers.append(close)
        return LlmClient(
            models,
            calls if calls is not None else MemoryCallLog(),
            cache if cache is not None else MemoryResponseCache(),
            clock or RealtimeClock(),
            limits,
        )


@pytest.fixture
async def clients(gemini: FakeGemini) -> AsyncIterator[Clients]:
    made = Clients(gemini)
    try:
        yield made
    finally:
        for close in made.closers:
            await close()


def simulated_store(
    symbols: Sequence[str] = SYMBOLS, intervals: Sequence[str] = ("1h", "4h")
) -> KlineStore:
    feed = SimulatedFeed(
        list(symbols), intervals=tuple(intervals), seed=11, speed=None, start_ms=START
    )
    store = KlineStore(depth=300)
    feed.backfill(store)
    return store


def view_of(store: KlineStore, at: int | None = None) -> StoreView:
    return StoreView(store, at, {})


def spec(
    *,
    interval: str = "1h",
    filter_code: str = "return True",
    risk: RiskSettings | None = None,
    owner_id: int = 1,
    name: str = "dip buyer",
) -> TraderSpec:
    return TraderSpec(
        id=uuid.uuid4(),
        owner_id=owner_id,
        name=name,
        interval=interval,
        filter_code=filter_code,
        filter_description=("always",),
        strategy_instructions="Buy dips in an uptrend.",
        risk=risk or RiskSettings(stop_loss=Decimal(5)),
    )


def signal_on(
    trader: TraderSpec, view: MarketView, symbol: str = "BTC/USDT", side: Side = Side.LONG
) -> Signal:
    candles = view.candles(symbol, trader.interval)
    return Signal(
        id=uuid.uuid4(),
        trader_id=trader.id,
        owner_id=trader.owner_id,
        symbol=symbol,
        interval=trader.interval,
        side=side,
        price=price_of(float(candles.close[-1])),
        candle_time=int(candles.time[-1]),
        created_at=int(candles.time[-1]) + interval_ms(trader.interval),
        indicators={"1h.rsi(14)": 27.5},
    )


def scripted_rows(closes: Sequence[float], start: int = START, spread: float = 0.001) -> np.ndarray:
    """Hourly candles closing at `closes`, each opening at the previous close."""
    closes_arr = np.asarray(closes, dtype=np.float64)
    opens = np.concatenate(([closes_arr[0]], closes_arr[:-1]))
    highs = np.maximum(opens, closes_arr) * (1 + spread)
    lows = np.minimum(opens, closes_arr) * (1 - spread)
    times = start + np.arange(len(closes_arr)) * HOUR
    return np.column_stack((times, opens, highs, lows, closes_arr, np.full(len(closes_arr), 100.0)))


class Backtest:
    """The analysis stages as a backtest wires them: memory repositories, a replay clock, and
    candles revealed one close at a time."""

    def __init__(
        self,
        engine: AnalysisEngine,
        traders: Sequence[TraderSpec],
        *,
        rechecks: int = 5,
        horizon: int = 24,
        store: KlineStore | None = None,
    ) -> None:
        self.clock = ReplayClock()
        self.store = store or KlineStore(depth=500, source_id="backtest")
        ports = memory_ports(
            tuple(traders),
            self.clock,
            MarketQuotes(self.store, "1h", self.clock),
            CandleUpdates(self.store, "1h", self.clock),
            DerivedInstruments(),
            FillModel(),
            DEFAULT_BALANCE,
        )
        self.traders, self.signals = ports.traders, ports.signals
        self.decisions, self.notifier = ports.decisions, ports.notifier
        options = StageOptions(watch_rechecks=rechecks, outcome_horizon_candles=horizon)
        self.workflow = assemble_workflow(
            ports,
            self.clock,
            FilterSandbox(workers=1),
            engine,
            owner="backtest",
            options=options,
        )

    def reveal(self, symbol: str, rows: np.ndarray) -> StoreView:
        """Store `rows`, move the clock to the close of the last one, and view the market."""
        self.store.append(symbol, "1h", rows)
        at = int(rows[-1][0]) + HOUR
        self.clock.advance(at)
        return view_of(self.store, at)

    async def drain(self, view: MarketView) -> int:
        return await self.workflow.drain(view)

    def decisions_of(self, signal: Signal) -> list[Decision]:
        return sorted(
            (d for d in self.decisions.decisions.values() if d.signal_id == signal.id),
            key=lambda d: d.created_at,
        )
