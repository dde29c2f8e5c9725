"""Indicator series for `klines` are computed off the event loop: /healthz keeps answering.

The heavy indicator is a registered one that does not finish until the test lets it (at
most `HOLD_SECONDS`), as a slow computation holds its thread: computed on the loop, it would
hold every other request as long; computed in a worker thread, the probes answer meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from starlette.applications import Starlette

from app.domain.indicators import INDICATORS, IndicatorSpec, Outputs
from app.engine.feeds.replay import ReplayFeed
from app.engine.indicators import IndicatorCache
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.services.market import EmbeddedMarket
from tests.api.conftest import Caller
from tests.market.conftest import CANDLES_DIR

HOLD_SECONDS = 10.0
PROBE_BOUND = 0.5
QUERY = """{ klines(symbol: "ETH/BTC", interval: "5m", limit: 3,
    indicators: [{name: "slow"}, {name: "rsi"}]) {
    candles { close } indicators { name outputs { values } } } }"""


@dataclass
class Hold:
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
async def slow_market(app: Starlette) -> Hold:
    hold = Hold()

    def slow(candles: object) -> Outputs:
        hold.started.set()
        hold.release.wait(HOLD_SECONDS)
        return {"value": np.ones(len(candles))}  # type: ignore[arg-type]

    spec = IndicatorSpec("slow", slow, (), ("value",), "runs until released")
    market = MarketData(ReplayFeed(CANDLES_DIR, speed=None, warmup=10**6), KlineStore(depth=300))
    await market.feed.run(market.store)
    market.indicators = IndicatorCache(market.store, registry={**INDICATORS, "slow": spec})
    app.state.runtime.market = EmbeddedMarket(market)
    return hold


async def test_a_heavy_klines_request_does_not_block_healthz(
    alice: Caller, slow_market: Hold
) -> None:
    heavy = asyncio.create_task(alice.data(QUERY))
    assert await asyncio.to_thread(slow_market.started.wait, 10)

    for _ in range(5):
        started = time.perf_counter()
        probe = await alice.client.get("/healthz")
        assert probe.json() == {"status": "ok"}
        assert time.perf_counter() - started < PROBE_BOUND
    assert not heavy.done()
    slow_market.release.set()

    data = await heavy
    slow, rsi = data["klines"]["indicators"]
    assert slow["outputs"][0]["values"] == [1.0, 1.0, 1.0]
    assert rsi["name"] == "rsi" and len(rsi["outputs"][0]["values"]) == 3
