"""Wiring: the one place that builds the live engine and the process runtime from settings.

Stages know only their ports; this module picks what stands behind each one in a live
process (the database repositories, the event bus, the configured feed and its clock, the
demo executor), assembles the stages as every engine does (`app.engine.assembly`), and
hands the API its ports to the engine: the embedded engine and its trading desk when it
runs here, the database heartbeats of engines elsewhere when `TRADERS_ENGINE=off`. The
model client is built once per process and shared by the analyzer and the API's trader
generation, so its concurrency limits hold for both; without a Gemini key there is none and
the rule engine analyzes.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.bus import create_event_bus
from app.core.events import EventBus
from app.core.settings import Settings
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.filter_only import FilterOnlyEngine
from app.engine.analysis.gemini import GeminiAnalysisEngine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.assembly import Ports, StageOptions, assemble_desk, assemble_workflow, fill_model
from app.engine.clock import Clock, RealtimeClock
from app.engine.close_trigger import SETTLE_MS
from app.engine.desk import TradingDesk
from app.engine.instruments import DerivedInstruments
from app.engine.live import LiveEngine
from app.engine.llm.client import LlmClient, LlmLimits, gemini_models
from app.engine.market import MarketData
from app.engine.market_publisher import MarketPublisher
from app.engine.prices import MarketQuotes
from app.engine.sandbox import FilterSandbox
from app.engine.workflow import EngineGate, Workflow
from app.services.filter_check import FilterChecker
from app.services.market import EmbeddedMarket, record_heartbeat
from app.services.notifier import BusNotifier
from app.services.repositories.decisions import DbDecisionRepository
from app.services.repositories.llm import DbCallLog, DbResponseCache
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import DbTraderRepository
from app.services.repositories.trading import DbTradeStore
from app.services.runtime import Runtime
from app.services.traders import TraderManager

# Who holds a lease on a signal: this process, named so an operator can tell which it was.
PROCESS_ID = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def llm_limits(settings: Settings) -> LlmLimits:
    return LlmLimits(
        timeout_seconds=settings.gemini_timeout_seconds,
        attempts=settings.gemini_attempts,
        max_retry_delay=settings.gemini_max_retry_delay_seconds,
        concurrency=settings.llm_concurrency,
        concurrency_per_user=settings.llm_concurrency_per_user,
        daily_tokens_per_user=settings.llm_daily_tokens_per_user,
    )


def build_llm(settings: Settings, clock: Clock) -> LlmClient | None:
    """The Gemini client on the database's call log and cache; None without a key (or with
    the rule engine forced), when no model is ever called."""
    if not settings.uses_gemini or settings.gemini_api_key is None:
        return None
    models, close = gemini_models(
        settings.gemini_api_key.get_secret_value(),
        settings.gemini_base_url,
        settings.gemini_timeout_seconds,
    )
    return LlmClient(
        models, DbCallLog(), DbResponseCache(), clock, llm_limits(settings), close=close
    )


def analysis_engine(settings: Settings, llm: LlmClient | None) -> AnalysisEngine:
    if settings.analysis_engine == "filter":
        return FilterOnlyEngine()
    rules = RuleAnalysisEngine()
    return rules if llm is None else GeminiAnalysisEngine(llm, settings.gemini_model, rules)


def build_desk(
    bus: EventBus,
    clock: Clock,
    market: MarketData,
    settings: Settings,
    gate: EngineGate | None = None,
) -> TradingDesk:
    """The trading desk on the database and the live market (its ticks and closes); its
    notifier sends metrics when the engine's `gate` is quiet."""
    quotes = MarketQuotes(market.store, market.base_interval, clock, market.prices, market.ticker)
    return assemble_desk(
        DbTradeStore(settings.demo_balance),
        quotes,
        DerivedInstruments(),
        BusNotifier(bus, quotes.marks, gate),
        clock,
        fill_model(settings),
    )


def build_workflow(
    bus: EventBus,
    clock: Clock,
    sandbox: FilterSandbox,
    market: MarketData,
    settings: Settings | None = None,
    llm: LlmClient | None = None,
    desk: TradingDesk | None = None,
    gate: EngineGate | None = None,
) -> Workflow:
    """The live stages on the database; `settings` default to the embedded defaults. Give
    the `gate` that `desk` was built with, so that its notifier waits for these stages."""
    settings = settings or Settings()
    gate = gate or EngineGate()
    desk = desk or build_desk(bus, clock, market, settings, gate)
    ports = Ports(
        traders=DbTraderRepository(TraderManager(bus)),
        signals=DbSignalRepository(),
        decisions=DbDecisionRepository(),
        notifier=desk.notifier,
        desk=desk,
        prices=market.prices.subscribe(),
    )
    return assemble_workflow(
        ports,
        clock,
        sandbox,
        analysis_engine(settings, llm),
        owner=PROCESS_ID,
        options=StageOptions.from_settings(settings),
        gate=gate,
    )


async def build_engine(
    settings: Settings,
    bus: EventBus,
    llm: LlmClient | None = None,
    clock: Clock | None = None,
    settle_ms: int = SETTLE_MS,
) -> tuple[LiveEngine, TradingDesk]:
    """The live engine on the configured feed and its trading desk, on the market's clock
    (the feed's, unless `clock` is given), settling `settle_ms` after a close."""
    market = await MarketData.create(settings)
    clock = clock or market.feed.clock
    sandbox = FilterSandbox(workers=os.cpu_count() or 1)
    gate = EngineGate()
    desk = build_desk(bus, clock, market, settings, gate)
    workflow = build_workflow(bus, clock, sandbox, market, settings, llm, desk, gate)
    engine = LiveEngine(market, workflow, heartbeat=record_heartbeat, settle_ms=settle_ms)
    return engine, desk


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        bus=create_event_bus(settings),
        llm=build_llm(settings, RealtimeClock()),
    )


@asynccontextmanager
async def engine_running(runtime: Runtime) -> AsyncIterator[LiveEngine]:
    """Run the live engine inside this process for the duration of the block, with the
    dry-run lane of `validateFilter` beside it on the same market and its market publisher
    (candles and tickers on the bus); orders a previous run left as intents or open are
    settled first."""
    engine, desk = await build_engine(runtime.settings, runtime.bus, runtime.llm)
    checker = FilterChecker.from_settings(engine.market, runtime.settings)
    publisher = MarketPublisher(
        engine.market, runtime.bus, runtime.settings.ticker_interval_seconds
    )
    await desk.orders.reconcile()
    try:
        await publisher.start()
        await engine.start()
        await checker.start()
        runtime.engine, runtime.market = engine, EmbeddedMarket(engine.market)
        runtime.filter_checker, runtime.desk = checker, desk
        yield engine
    finally:
        runtime.filter_checker = runtime.desk = None
        await checker.close()
        await engine.stop()
        await publisher.stop()
        await desk.notifier.flush()
