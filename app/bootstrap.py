"""Wiring: the one place that builds the live engine and the process runtime from settings.

Stages know only their ports; this module picks what stands behind each one in a live
process (the database repositories, the event bus, the wall clock, the configured feed),
and hands the API its ports to the engine: the embedded engine when it runs here, the
database heartbeats of engines elsewhere when `TRADERS_ENGINE=off`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.bus import create_event_bus
from app.core.events import EventBus
from app.core.settings import Settings
from app.engine.clock import Clock, RealtimeClock
from app.engine.live import LiveEngine
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.engine.signals import SignalManager
from app.engine.workflow import Workflow
from app.services.filter_check import FilterChecker
from app.services.market import EmbeddedMarket, record_heartbeat
from app.services.notifier import BusNotifier
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import DbTraderRepository
from app.services.runtime import Runtime
from app.services.traders import TraderManager


def build_workflow(bus: EventBus, clock: Clock, sandbox: FilterSandbox) -> Workflow:
    traders = DbTraderRepository(TraderManager(bus))
    signals = SignalManager(DbSignalRepository(), traders, BusNotifier(bus), clock)
    return Workflow(traders, ScreenerEngine(sandbox), signals)


async def build_engine(
    settings: Settings, bus: EventBus, clock: Clock | None = None, **options: int
) -> LiveEngine:
    """The live engine on the configured feed; `options` go to `LiveEngine` (settling)."""
    clock = clock or RealtimeClock()
    market = await MarketData.create(settings)
    sandbox = FilterSandbox(workers=os.cpu_count() or 1)
    workflow = build_workflow(bus, clock, sandbox)
    return LiveEngine(market, workflow, clock, heartbeat=record_heartbeat, **options)


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(settings=settings, bus=create_event_bus(settings))


@asynccontextmanager
async def engine_running(runtime: Runtime) -> AsyncIterator[LiveEngine]:
    """Run the live engine inside this process for the duration of the block, with the
    dry-run lane of `validateFilter` beside it on the same market."""
    engine = await build_engine(runtime.settings, runtime.bus)
    checker = FilterChecker.from_settings(engine.market, runtime.settings)
    try:
        await engine.start()
        await checker.start()
        runtime.engine, runtime.market = engine, EmbeddedMarket(engine.market)
        runtime.filter_checker = checker
        yield engine
    finally:
        runtime.filter_checker = None
        await checker.close()
        await engine.stop()
