"""Fixtures of the trading tests: a small sandbox for the workflows' screens, the API
callers of the API tests, and an embedded engine's trading desk on a simulated market."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from app.bootstrap import build_desk
from app.core.settings import Settings
from app.engine.clock import RealtimeClock
from app.engine.desk import TradingDesk
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox, SandboxLimits
from tests.api.conftest import alice, app, bob, client
from tests.trading.desk import SYMBOLS

__all__ = ["alice", "app", "bob", "client", "desk", "market", "sandbox"]

LIMITS = SandboxLimits(eval_seconds=0.5, grace_seconds=1.0, batch_cpu_seconds=30)


@pytest.fixture
async def sandbox() -> AsyncIterator[FilterSandbox]:
    async with FilterSandbox(workers=1, limits=LIMITS) as pool:
        yield pool


@pytest.fixture
def market() -> MarketData:
    feed = SimulatedFeed(SYMBOLS, intervals=("1m",), seed=5, speed=None)
    store = KlineStore(depth=200)
    feed.backfill(store)
    return MarketData(feed, store)


@pytest.fixture
def desk(app: Starlette, market: MarketData) -> TradingDesk:
    """The trading desk of an engine embedded in the app's process."""
    runtime = app.state.runtime
    runtime.desk = build_desk(runtime.bus, RealtimeClock(), market, Settings())
    return runtime.desk
