"""`/metrics`: Prometheus text format 0.0.4, with values that follow what the process did."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from starlette.applications import Starlette

from app.bootstrap import build_workflow
from app.core.events import Event, EventType
from app.core.redis_bus import RedisEventBus
from app.db.models import Trader, User
from app.domain.enums import TraderStatus
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.live import LiveEngine
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose, ScreenReport
from tests.events.live import until
from tests.screening.conftest import LIMITS, START_MS, SYMBOLS

TIMEOUT = 10.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of one scrape, keyed by sample name and sorted labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def embed(app: Starlette, market: MarketData, sandbox: FilterSandbox | None = None) -> LiveEngine:
    """A live engine on `market` in the app's runtime, as the lifespan would embed it."""
    runtime = app.state.runtime
    clock = RealtimeClock()
    workflow = build_workflow(runtime.bus, clock, sandbox or FilterSandbox(workers=1), market)
    runtime.engine = LiveEngine(market, workflow)
    return runtime.engine


def event(n: int) -> Event:
    return Event(type=EventType.TRADE, owner_id=1, trader_id="t1", payload={"n": n})


async def test_bus_counters_follow_publishes_and_listeners(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    bus = app.state.runtime.bus
    before = await scrape(client)
    assert value(before, "traders_events_published_total") == 0
    assert value(before, "traders_event_listeners") == 0

    stream = bus.listen(1, [EventType.TRADE])
    first = asyncio.ensure_future(anext(stream))
    await until(lambda: bus.broadcaster.listener_count == 1)
    for n in range(3):
        await bus.publish(event(n))
    during = await scrape(client)
    assert value(during, "traders_events_published_total") == 3
    assert value(during, "traders_event_listeners") == 1
    assert value(during, "traders_events_dropped_total") == 0

    assert (await first).payload == {"n": 0}
    await stream.aclose()
    after = await scrape(client)
    assert value(after, "traders_event_listeners") == 0
    assert value(after, "traders_events_published_total") == 3


async def test_events_dropped_for_a_listener_that_falls_behind_are_counted(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    bus = app.state.runtime.bus
    stream = bus.listen(1, [EventType.TRADE])
    first = asyncio.ensure_future(anext(stream))
    await until(lambda: bus.broadcaster.listener_count == 1)
    try:
        # The broadcaster keeps 1000 events per listener; nothing is read while publishing.
        for n in range(1002):
            await bus.publish(event(n))
        samples = await scrape(client)
        assert value(samples, "traders_events_dropped_total") == 2
        assert value(samples, "traders_events_published_total") == 1002
    finally:
        first.cancel()  # the cancelled read ends the stream, which unregisters the listener
        with contextlib.suppress(asyncio.CancelledError):
            await first
    assert bus.broadcaster.listener_count == 0


async def test_engine_families_are_absent_when_the_engine_is_off(
    client: httpx.AsyncClient,
) -> None:
    present = names(await scrape(client))

    assert not {name for name in present if name.startswith(("traders_market", "traders_screen"))}
    # The in-process bus has no Redis: its counters are absent rather than zero.
    assert "traders_events_received_total" not in present
    assert "traders_event_subscription_up" not in present
    assert "process_resident_memory_bytes" in present


async def test_the_redis_bus_shows_all_its_counters(
    app: Starlette, client: httpx.AsyncClient, redis_url: str
) -> None:
    channel = f"traders:test:{uuid.uuid4().hex}"
    bus = app.state.runtime.bus = RedisEventBus(redis_url, channel)
    await bus.publish(event(0))  # not started yet: counted as a failure
    await bus.start()
    raw = Redis.from_url(redis_url)
    try:
        await asyncio.wait_for(bus.wait_subscribed(), TIMEOUT)
        await raw.publish(channel, b"\xff not an event")
        await bus.publish(event(1))
        await bus.publish(event(2))
        await until(lambda: bus.received == 3)

        samples = await scrape(client)
        assert value(samples, "traders_events_published_total") == 2
        assert value(samples, "traders_event_publish_failures_total") == 1
        assert value(samples, "traders_events_received_total") == 3
        assert value(samples, "traders_events_malformed_total") == 1
        assert value(samples, "traders_event_subscription_errors_total") == 0
        assert value(samples, "traders_event_subscription_reconnects_total") == 0
        assert value(samples, "traders_event_subscription_up") == 1
    finally:
        await raw.aclose()
        await bus.stop()
    assert value(await scrape(client), "traders_event_subscription_up") == 0


async def test_market_gauges_follow_the_feed(app: Starlette, client: httpx.AsyncClient) -> None:
    store = KlineStore(depth=50)
    feed = SimulatedFeed(SYMBOLS, intervals=("1h", "4h"), seed=7, start_ms=START_MS)
    market = embed(app, MarketData(feed, store)).market

    idle = await scrape(client)
    assert value(idle, "traders_market_info", source="simulated", live="false") == 1
    assert value(idle, "traders_market_feed_running") == 0
    assert value(idle, "traders_market_series") == 0
    assert "traders_market_last_candle_timestamp_seconds" not in names(idle)

    await market.start()  # the simulated feed back-fills its store, then waits an hour
    try:
        await until(lambda: len(store.keys()) == len(SYMBOLS) * 2)
        running = await scrape(client)
        assert value(running, "traders_market_feed_running") == 1
        assert value(running, "traders_market_series") == 12
        newest = max(store.candles(symbol, "1h").last_time or 0 for symbol in SYMBOLS)
        assert value(running, "traders_market_last_candle_timestamp_seconds") == newest / 1000
    finally:
        await market.stop()
    assert value(await scrape(client), "traders_market_feed_running") == 0


@pytest.fixture
async def sandbox() -> AsyncIterator[FilterSandbox]:
    async with FilterSandbox(workers=1, limits=LIMITS) as pool:
        yield pool


class Screener:
    """Screens the newest close of an interval through the app's embedded engine, and waits
    for what it changed to be published."""

    def __init__(self, app: Starlette, sandbox: FilterSandbox) -> None:
        feed = SimulatedFeed(SYMBOLS, intervals=("1h", "4h"), seed=7, speed=None, start_ms=START_MS)
        store = KlineStore(depth=100)
        feed.backfill(store)
        self.app, self.sandbox, self.market = app, sandbox, MarketData(feed, store)
        self.engine = embed(app, self.market, sandbox)

    async def screen(self, interval: str) -> ScreenReport:
        newest = self.market.store.last_time(SYMBOLS[0], interval)
        assert newest is not None
        close = CandleClose(interval, newest)
        report = await self.engine.workflow.on_close(close, self.market.view(close.at))
        assert report is not None
        await self.engine.workflow.signals.notifier.flush()
        return report


@pytest.fixture
def screener(app: Starlette, sandbox: FilterSandbox) -> Screener:
    return Screener(app, sandbox)


async def _trader(owner: User, name: str, code: str) -> Trader:
    return await Trader.create(
        owner=owner,
        name=name,
        enabled=True,
        status=TraderStatus.RUNNING,
        interval="1h",
        symbols=SYMBOLS,
        filter_code=code,
    )


async def test_screening_counters_follow_screens(
    client: httpx.AsyncClient, screener: Screener
) -> None:
    owner = await User.create(name="alice")
    await _trader(owner, "btc", "return symbol == 'BTC/USDT'")
    await _trader(owner, "broken", "x = 0\nreturn 1 / x")

    one_hour = await screener.screen("1h")
    await screener.screen("4h")
    samples = await scrape(client)

    assert value(samples, "traders_screens_total", interval="1h") == 1
    assert value(samples, "traders_screens_total", interval="4h") == 1
    assert value(samples, "traders_screen_matches_total", interval="1h") == 1
    assert value(samples, "traders_screen_failures_total", interval="1h") == 1
    # The matching trader evaluates every symbol; the broken one stops at its first.
    assert value(samples, "traders_screen_evaluations_total", interval="1h") >= len(SYMBOLS)
    assert value(samples, "traders_screen_evaluations_total", interval="4h") == 0
    assert value(samples, "traders_screen_last_duration_seconds", interval="1h") == (
        one_hour.seconds
    )
    assert value(samples, "traders_screen_seconds_total", interval="1h") == one_hour.seconds
    # The match became a signal, whose event went out on the bus.
    assert value(samples, "traders_events_published_total") >= 1

    await screener.screen("1h")
    again = await scrape(client)
    assert value(again, "traders_screens_total", interval="1h") == 2
    assert value(again, "traders_screen_matches_total", interval="1h") == 2


async def test_screen_counters_keep_counting_past_the_reports_the_screener_keeps(
    app: Starlette, client: httpx.AsyncClient, screener: Screener
) -> None:
    for _ in range(60):
        await screener.screen("1h")
    assert value(await scrape(client), "traders_screens_total", interval="1h") == 60

    for _ in range(60):
        await screener.screen("1h")
    assert len(screener.engine.screener.reports) < 120, "the screener keeps its latest reports"
    assert value(await scrape(client), "traders_screens_total", interval="1h") == 120

    await Screener(app, screener.sandbox).screen("1h")
    assert value(await scrape(client), "traders_screens_total", interval="1h") == 1
