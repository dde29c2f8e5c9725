"""Indicator series for `klines` are computed off the event loop: /healthz keeps answering.

The heavy indicator is a real registered one that takes 1.5 s (it sleeps, as a slow numpy
computation would hold the thread): computed on the loop, it would hold every other request
for as long; computed in a worker thread, the probes answer while it runs.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from starlette.applications import Starlette

from app.domain.indicators import INDICATORS, IndicatorSpec, Outputs
from app.engine.feeds.replay import ReplayFeed
from app.engine.indicators import IndicatorCache
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from tests.api.conftest import Caller
from tests.market.conftest import CANDLES_DIR

SLOW_SECONDS = 1.5
PROBE_BOUND = 0.5
QUERY = """{ klines(symbol: "ETH/BTC", interval: "5m", limit: 3,
    indicators: [{name: "slow"}, {name: "rsi"}]) {
    candles { close } indicators { name outputs { values } } } }"""


@pytest.fixture
async def slow_market(app: Starlette) -> threading.Event:
    started = threading.Event()

    def slow(candles: object) -> Outputs:
        started.set()
        time.sleep(SLOW_SECONDS)
        return {"value": np.ones(len(candles))}  # type: ignore[arg-type]

    spec = IndicatorSpec("slow", slow, (), ("value",), "takes 1.5 s")
    market = MarketData(ReplayFeed(CANDLES_DIR, speed=None, warmup=10**6), KlineStore(depth=300))
    await market.feed.run(market.store)
    market.indicators = IndicatorCache(market.store, registry={**INDICATORS, "slow": spec})
    app.state.runtime.market = market
    return started


async def test_a_heavy_klines_request_does_not_block_healthz(
    alice: Caller, slow_market: threading.Event
) -> None:
    heavy = asyncio.create_task(alice.data(QUERY))
    assert await asyncio.to_thread(slow_market.wait, 10)

    for _ in range(5):
        started = time.perf_counter()
        probe = await alice.client.get("/healthz")
        assert probe.json() == {"status": "ok"}
        assert time.perf_counter() - started < PROBE_BOUND
    assert not heavy.done()

    data = await heavy
    slow, rsi = data["klines"]["indicators"]
    assert slow["outputs"][0]["values"] == [1.0, 1.0, 1.0]
    assert rsi["name"] == "rsi" and len(rsi["outputs"][0]["values"]) == 3
