"""Feed choice from settings, the offline fallback of `auto`, and MarketData's lifecycle."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import pytest

from app.core.settings import Settings
from app.engine.clock import RealtimeClock
from app.engine.feeds.base import Backoff
from app.engine.feeds.ccxt_feed import CcxtFeed
from app.engine.feeds.factory import create_feed
from app.engine.feeds.replay import ReplayFeed
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from tests.market.fake_binance import FakeBinance, Pair


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def binance_at(base_url: str) -> Any:
    client = ccxt_async.binance({"enableRateLimit": True})
    server = FakeBinance([], now=0)
    server.base_url = base_url
    return server.point(client)


def internet_reachable() -> bool:
    try:
        socket.getaddrinfo("api.binance.com", 443)
    except OSError:
        return False
    return True


async def test_auto_falls_back_to_simulated_when_binance_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        feed = await create_feed(
            Settings(feed="auto"), lambda _: binance_at(f"http://127.0.0.1:{port}")
        )
    assert time.perf_counter() - started < 3.5
    assert isinstance(feed, SimulatedFeed)
    assert feed.source == "simulated" and feed.is_live_market is False
    assert any("SIMULATED" in record.getMessage() for record in caplog.records)


async def test_auto_with_the_real_client_decides_quickly() -> None:
    """The default factory: simulated on a machine without internet (this sandbox, CI),
    the real Binance feed where api.binance.com answers."""
    offline = not internet_reachable()
    started = time.perf_counter()
    feed = await create_feed(Settings(feed="auto"))
    assert time.perf_counter() - started < 4.0
    if offline:
        assert feed.source == "simulated"
    else:
        assert feed.source in ("ccxt:binance", "simulated")
        if isinstance(feed, CcxtFeed):
            await feed.client.close()


async def test_auto_uses_binance_when_it_answers() -> None:
    server = FakeBinance([Pair("ETH", "BTC", 1.0)], now=1_700_000_000_000)
    await server.start()
    try:
        feed = await create_feed(
            Settings(feed="auto"), lambda _: server.point(ccxt_async.binance())
        )
        assert isinstance(feed, CcxtFeed)
        assert feed.source == "ccxt:binance" and feed.is_live_market is True
        assert server.requests["/api/v3/time"] == 1
        await feed.client.close()
    finally:
        await server.stop()


async def test_auto_closes_the_probe_client_when_cancelled() -> None:
    class Silent:
        id, timeout, closed = "silent", 0, False

        async def fetch_time(self) -> int:
            await asyncio.sleep(3600)
            return 0

        async def close(self) -> None:
            self.closed = True

    client = Silent()
    task = asyncio.create_task(create_feed(Settings(feed="auto"), lambda _: client, 60.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.closed


async def test_explicit_choices(candles_dir: Path) -> None:
    assert (await create_feed(Settings(feed="simulated"))).source == "simulated"
    replay = await create_feed(Settings(feed=f"replay:{candles_dir}"))
    assert isinstance(replay, ReplayFeed) and replay.source == f"replay:{candles_dir}"
    kraken = await create_feed(Settings(feed="ccxt:kraken"))
    assert kraken.source == "ccxt:kraken" and kraken.is_live_market
    await kraken.client.close()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no exchange"):
        await create_feed(Settings(feed="ccxt:nosuchexchange"))


@pytest.fixture
async def market(candles_dir: Path, tmp_path: Path) -> AsyncIterator[MarketData]:
    """Two of the recorded series (the whole directory took 5-7 s to replay, past the
    test's bound when the machine was loaded)."""
    for name in ("ETH_BTC-5m.csv", "XRP_USDT-1h-futures.csv"):
        shutil.copy(candles_dir / name, tmp_path)
    data = MarketData(ReplayFeed(tmp_path, speed=None, warmup=100), KlineStore(depth=300))
    yield data
    await data.stop()


async def test_market_data_runs_the_feed(market: MarketData) -> None:
    assert market.last_candle_at() is None and not market.running
    await market.start()
    await asyncio.wait_for(market._task, 10)  # type: ignore[arg-type]
    last = market.last_candle_at()
    assert last is not None and last.year == 2021
    assert market.source.startswith("replay:") and not market.is_live_market
    rsi = market.indicators.get("ETH/BTC", "5m", "rsi")
    assert isinstance(rsi, np.ndarray) and len(rsi) == 300


class Flaky:
    source = "flaky"
    is_live_market = False
    symbols: list[str] = []
    intervals: list[str] = []
    clock = RealtimeClock()

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, store: KlineStore) -> None:
        self.runs += 1
        if self.runs < 3:
            raise RuntimeError("feed bug")

    def tickers(self) -> dict[str, Any]:
        return {}

    def ticker(self, symbol: str) -> None:
        return None


async def test_a_failing_feed_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    feed = Flaky()
    market = MarketData(feed, KlineStore(), restart_backoff=Backoff(0.001, 0.01))
    await market.start()
    await asyncio.wait_for(market._task, 5)  # type: ignore[arg-type]
    assert feed.runs == 3
    assert sum("failed; restart" in r.getMessage() for r in caplog.records) == 2
