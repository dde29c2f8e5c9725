"""The trading workflow running inside one process: market data, screening, signals.

The engine is built from the same settings as the API and shares its event bus; by default
it runs embedded in the API process (`TRADERS_ENGINE=embedded`), so one command runs it all.
"""

from __future__ import annotations

import os

from app.core.events import EventBus
from app.core.settings import Settings
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.services.filter_check import FilterChecker
from app.services.signals import SignalManager
from app.services.traders import TraderManager


class Engine:
    def __init__(
        self, market: MarketData, screener: ScreenerEngine, checker: FilterChecker
    ) -> None:
        self.market = market
        self.screener = screener
        self.checker = checker

    @classmethod
    async def create(cls, settings: Settings, bus: EventBus) -> Engine:
        market = await MarketData.create(settings)
        sandbox = FilterSandbox(workers=os.cpu_count() or 1)
        signals = SignalManager(bus, TraderManager(bus))
        screener = ScreenerEngine(market.store, sandbox, signals, market.tickers)
        return cls(market, screener, FilterChecker.from_settings(screener, settings))

    async def start(self) -> None:
        """The screener (with its sandbox workers) listens before the feed starts filling;
        dry runs have workers of their own."""
        await self.screener.start()
        await self.checker.start()
        await self.market.start()

    async def stop(self) -> None:
        await self.market.stop()
        await self.checker.close()
        await self.screener.stop()
