"""Fixtures of the screening tests: a seeded simulated market and a small sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterSandbox, SandboxLimits

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT"]
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
LIMITS = SandboxLimits(eval_seconds=0.3, grace_seconds=0.7, batch_cpu_seconds=20)


@pytest.fixture
def feed() -> SimulatedFeed:
    return SimulatedFeed(SYMBOLS, intervals=("1h", "4h"), seed=7, speed=None, start_ms=START_MS)


@pytest.fixture
def store(feed: SimulatedFeed) -> KlineStore:
    store = KlineStore(depth=300)
    feed.backfill(store)
    return store


@pytest.fixture
async def sandbox() -> AsyncIterator[FilterSandbox]:
    async with FilterSandbox(workers=2, limits=LIMITS) as pool:
        yield pool
