"""Prometheus metrics at `/metrics`: the event bus, the market feed and screening, read live.

The bus, the market and the screener already keep their own counts, so one custom collector
reads them at scrape time rather than mirroring every change into prometheus_client
instruments on the hot paths. Each app has its own `CollectorRegistry`, never the library's
global one, so that several apps in one process (as in the tests) do not collide.

The body is the text exposition format 0.0.4 and is labelled as such: prometheus_client
0.23 moved `CONTENT_TYPE_LATEST` to `version=1.0.0`, but `generate_latest` with its default
escaping writes 0.0.4-compatible text, which every Prometheus server parses.

Families of a part that does not run in this process (the market and the screener when the
engine is off or runs elsewhere; the Redis counters on the in-process bus) are absent, not
zero: an absent series says "not here", a zero would claim "nothing happened".
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from app.core.events import EventBus
from app.engine.market import MarketData
from app.engine.screening import ScreenerEngine
from app.services.runtime import Runtime

# (attribute of the bus, metric family, help). The in-process bus has only `published`; the
# Redis bus has them all. Each bus shows the counters it really has.
BUS_COUNTERS = (
    ("published", "traders_events_published", "Events this process published on the bus."),
    (
        "publish_failures",
        "traders_event_publish_failures",
        "Events this process failed to publish (logged and dropped, never raised).",
    ),
    ("received", "traders_events_received", "Messages this process received from Redis."),
    ("malformed", "traders_events_malformed", "Messages received that were not events, skipped."),
    (
        "subscription_errors",
        "traders_event_subscription_errors",
        "Failed or lost Redis subscriptions (each retried with back-off).",
    ),
    (
        "reconnects",
        "traders_event_subscription_reconnects",
        "Redis subscriptions re-established after a loss.",
    ),
)

# (attribute of `ScreenTotals`, metric family, help), each labelled by interval.
SCREEN_COUNTERS = (
    ("screens", "traders_screens", "Candle closes screened."),
    (
        "evaluations",
        "traders_screen_evaluations",
        "Filter evaluations (trader x symbol) run by screening.",
    ),
    ("matches", "traders_screen_matches", "Filter matches found by screening."),
    ("failures", "traders_screen_failures", "Trader runs that failed during screening."),
    ("seconds", "traders_screen_seconds", "Time spent screening."),
)


class TradersCollector:
    """Reads the runtime's bus, market and screener at each scrape.

    Collection runs on the event loop (the endpoint is async and never awaits while
    collecting), the thread that owns the state it reads, so it needs no lock.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from _bus_metrics(self.runtime.bus)
        engine = self.runtime.engine
        if engine is not None:
            yield from _market_metrics(engine.market)
            yield from _screen_metrics(engine.screener)


def _screen_metrics(screener: ScreenerEngine) -> Iterator[Metric]:
    totals = sorted(screener.totals.items())
    for attribute, name, documentation in SCREEN_COUNTERS:
        family = CounterMetricFamily(name, documentation, labels=["interval"])
        for interval, each in totals:
            family.add_metric([interval], getattr(each, attribute))
        yield family
    last = GaugeMetricFamily(
        "traders_screen_last_duration_seconds",
        "Duration of the latest screen of each interval.",
        labels=["interval"],
    )
    for interval, each in totals:
        last.add_metric([interval], each.last_seconds)
    yield last


def _bus_metrics(bus: EventBus) -> Iterator[Metric]:
    for attribute, name, documentation in BUS_COUNTERS:
        value = getattr(bus, attribute, None)
        if value is not None:
            yield CounterMetricFamily(name, documentation, value=value)
    broadcaster = bus.broadcaster
    yield CounterMetricFamily(
        "traders_events_dropped",
        "Events dropped for listeners that fell behind (oldest first).",
        value=broadcaster.dropped,
    )
    yield CounterMetricFamily(
        "traders_websockets_closed_slow",
        "Websocket connections closed (code 4420) for falling too far behind.",
        value=broadcaster.slow_closed,
    )
    yield GaugeMetricFamily(
        "traders_event_listeners",
        "Subscriptions listening to events in this process.",
        value=broadcaster.listener_count,
    )
    subscribed = getattr(bus, "subscribed", None)
    if subscribed is not None:
        yield GaugeMetricFamily(
            "traders_event_subscription_up",
            "1 while this process's Redis subscription is up.",
            value=int(subscribed),
        )


def _market_metrics(market: MarketData) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "traders_market_info", "The market data source of this process.", labels=["source", "live"]
    )
    info.add_metric([market.source, str(market.is_live_market).lower()], 1)
    yield info
    yield GaugeMetricFamily(
        "traders_market_feed_running",
        "1 while the market feed task runs (a finished replay reads 0).",
        value=int(market.running),
    )
    yield GaugeMetricFamily(
        "traders_market_series",
        "Symbol x interval series in the kline store.",
        value=len(market.store.keys()),
    )
    newest = market.last_candle_at()
    if newest is not None:
        yield GaugeMetricFamily(
            "traders_market_last_candle_timestamp_seconds",
            "Open time of the newest candle in the store (Unix seconds).",
            value=newest.timestamp(),
        )


def registry_of(app: Starlette) -> CollectorRegistry:
    """The app's own registry, built at its first scrape and kept in `app.state`, so that the
    app needs nothing but the route; the process collectors make it a complete exporter."""
    registry: CollectorRegistry | None = getattr(app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry()
        registry.register(TradersCollector(app.state.runtime))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        app.state.metrics_registry = registry
    return registry


async def metrics(request: Request) -> Response:
    return Response(generate_latest(registry_of(request.app)), media_type=CONTENT_TYPE_PLAIN_0_0_4)
