"""Trading latency: from a candle close to each trader's recorded order, 50 traders.

    python -m benchmarks.trading [--traders 50] [--symbols 100] [--closes 5]
                                 [--database-url postgres://postgres@127.0.0.1:5432/test]

The live wiring of `app.bootstrap` (database repositories, the rule engine, the demo
executor, the event bus, the trading desk) on a seeded simulated market: 50 enabled traders
with the screening benchmark's filters, each over every symbol. The simulated market makes
each candle as it does live (`SimulatedFeed.advance`): its prices come as ticks along the
candle's path, each handled by the engine until it is idle before the next (a live engine
has minutes between them), so the position monitor takes the stops and targets the candle
touches at their ticks, as live; the close lies between the extremes the ticks touched, so
the close's own work is the entries (the run prints where positions were closed). Each
candle close runs the whole workflow as the live engine runs it: the screen (sandbox
workers, signals recorded), then the later stages through the live engine's `StageTasks`
(each in its own task, woken by the close and by the others' work) until all are idle: the
analyzer decides on the new signals with the rule engine, the signal monitor re-checks the
signals watched since the previous close, the trade stage enters those they marked ready,
and the position monitor scans the open positions at the close's prices. The engine's clock
reads each close's moment as the close is handed over (`MarketClock`), as a live engine's
does. Measured per entry:

- close -> order: from handing the close to the workflow to the entry's intent being
  recorded (the order exists, before it is sent), the screen and the analysis included;
- screen -> order: from the end of the screen to the intent (analysis and risk, the
  trade stage's reads and writes);
- order -> fill: from the intent to the demo fill being booked (ledger, trade, audit), for
  the entries at market (a limit entry waits for its price).

The baseline beside them is the screening time of the same closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.bootstrap import build_desk, build_workflow
from app.core.events import InProcessEventBus
from app.core.heap import freeze_long_lived
from app.core.settings import Settings
from app.db.config import close_db, init_db, migrate_db
from app.db.models import Decision
from app.domain.orders import Order
from app.domain.trade import Trade
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose
from app.engine.stage_tasks import StageTasks
from app.engine.workflow import EngineGate
from app.services.traders import TraderManager
from app.services.users import create_user
from benchmarks.screening import START_MS, strategies

TICK_PAUSE_S = 0.01


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<18} p50 {percentile(ms, 0.5):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   ({len(ms)} orders)"
    )


class MarketClock(RealtimeClock):
    """The wall clock as a live engine reads it at each close: set to the close's moment as
    the close is handed over (`reach`), moving at wall speed after. The simulated candles
    lie in the past, and the replay steps from one close to the next within a second, so
    on the bare wall clock every lease, cooldown and watched signal's next check would be
    long due at once (a watched signal would expire on the spot for want of a candle)."""

    def __init__(self, at: int) -> None:
        self._offset = at - super().now()

    def now(self) -> int:
        return super().now() + self._offset

    def reach(self, at: int) -> None:
        self._offset = max(self._offset, at - super().now())


class Timing:
    """When each entry's intent was recorded and its fill booked (perf_counter), and how
    many positions were closed at candle closes and at the ticks between them."""

    def __init__(self) -> None:
        self.intents: dict[uuid.UUID, float] = {}
        self.fills: dict[uuid.UUID, float] = {}
        self.at_close = False
        self.exits = {"close": 0, "tick": 0}

    def watch(self, store: Any) -> None:
        begin_entries, record_many = store.begin_entries, store.record_many

        async def timed_entries(entries: list[tuple[Trade, Order]]) -> set[uuid.UUID]:
            recorded = await begin_entries(entries)
            now = time.perf_counter()
            for trade, _ in entries:
                if trade.id in recorded and trade.signal_id is not None:
                    self.intents[trade.signal_id] = now
            return recorded

        async def timed_record(reports: list[tuple[Order, Any]], now: int) -> list[Any]:
            booked = await record_many(reports, now)
            at = time.perf_counter()
            for done in booked:
                if done is not None and done.opened and done.trade.signal_id is not None:
                    self.fills[done.trade.signal_id] = at
                if done is not None and done.closed:
                    self.exits["close" if self.at_close else "tick"] += 1
            return booked

        store.begin_entries, store.record_many = timed_entries, timed_record


async def _postgres(server_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(server_url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str | None) -> AsyncIterator[str]:
    """An empty database for one run: a new SQLite file, or a database of its own created on
    the PostgreSQL server of `server_url` and dropped after the run. A run that met an
    earlier run's traders, still enabled, would screen and trade for them too."""
    if server_url is None:
        yield f"sqlite://{Path(tempfile.mkdtemp(prefix='traders-bench-')) / 'bench.sqlite3'}"
        return
    name = f"traders_bench_{uuid.uuid4().hex[:12]}"
    await _postgres(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await _postgres(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main(args: argparse.Namespace) -> None:
    async with fresh_database(args.database_url) as url:
        await run(args, url)


async def run(args: argparse.Namespace, url: str) -> None:
    await migrate_db(url)
    await close_db()
    await init_db(url)
    symbols = [f"C{index:03d}/USDT" for index in range(args.symbols)]
    feed = SimulatedFeed(symbols, intervals=("1h", "4h"), seed=18, speed=None, start_ms=START_MS)
    store = KlineStore(depth=args.candles)
    feed.backfill(store)
    market = MarketData(feed, store)
    bus = InProcessEventBus()
    backfilled = store.last_time(symbols[0], "1h")
    assert backfilled is not None
    clock = MarketClock(CandleClose("1h", backfilled).at)
    # One user owns all 50 traders: a budget they share without a trader failing its close.
    settings = Settings(database_url=url, screen_seconds_per_user=60)
    gate = EngineGate()
    desk = build_desk(bus, clock, market, settings, gate)
    timing = Timing()
    timing.watch(desk.store)
    sandbox = FilterSandbox(workers=args.workers)
    workflow = build_workflow(bus, clock, sandbox, market, settings, desk=desk, gate=gate)

    owner, _ = await create_user(f"bench-{uuid.uuid4().hex[:6]}")
    manager = TraderManager(bus)
    traders = []
    for strategy in strategies()[: args.traders]:
        row = await manager.create(
            owner,
            {
                "name": strategy.name,
                "enabled": True,
                "interval": "1h",
                "symbols": symbols,
                "filter_code": strategy.code,
                "position_size_percent": Decimal(1),
                "stop_loss": Decimal(5),
                "take_profit": Decimal(5),
            },
        )
        traders.append(row)
    print(
        f"{len(traders)} traders x {len(symbols)} symbols x {args.candles} candles (1h), "
        f"{args.workers} sandbox workers, {os.cpu_count()} CPUs, database {url.split(':')[0]}"
    )

    screens: list[float] = []
    close_to_order: list[float] = []
    screen_to_order: list[float] = []
    order_to_fill: list[float] = []
    raised = 0
    await sandbox.start()
    stages = StageTasks(workflow, market, clock)
    stages.start()
    freeze_long_lived()  # as `traders serve` does once started
    moment = feed.now_ms

    async def between(ms: int) -> None:
        """The engine handles each price of the candle before the next comes (a live one
        has minutes for it): a moment to see it, then until every stage is idle and what
        they changed is published; the clock moves on to the next price's moment."""
        nonlocal moment
        await asyncio.sleep(TICK_PAUSE_S)
        await stages.until_idle()
        await desk.notifier.flush()  # the events and metrics published meanwhile
        moment += ms
        clock.reach(moment)

    try:
        for number in range(args.closes + 1):
            await feed.advance(store, between)
            newest = store.last_time(symbols[0], "1h")
            assert newest is not None
            close = CandleClose("1h", newest)
            clock.reach(close.at)
            view = market.view(close.at)
            timing.intents.clear()
            timing.at_close = number > 0
            started = time.perf_counter()
            report = await workflow.on_close(close, view)
            screened = time.perf_counter()
            assert report is not None and report.failures == 0, report
            stages.wake()
            await stages.until_idle()
            timing.at_close = False
            if number == 0:
                continue  # the first close warms the sandbox replicas and the pool
            screens.append(screened - started)
            raised += report.matches
            for signal_id, recorded in timing.intents.items():
                close_to_order.append(recorded - started)
                screen_to_order.append(recorded - screened)
                if signal_id in timing.fills:  # not a limit entry waiting for its price
                    order_to_fill.append(timing.fills[signal_id] - recorded)
        await desk.notifier.flush()
        decided = await Decision.all().count()
    finally:
        await stages.stop()
        await sandbox.close()
        await close_db()

    print(
        f"{args.closes} closes: {raised} signals raised; {decided} decisions of the rule engine "
        f"(the warm-up close's included); "
        f"{len(close_to_order)} entered ({len(order_to_fill)} at market); positions closed "
        f"at the closes {timing.exits['close']}, at the ticks between {timing.exits['tick']}"
    )
    print(summary("close -> order", close_to_order))
    print(summary("screen -> order", screen_to_order))
    print(summary("order -> fill", order_to_fill))
    median = statistics.median(screens)
    print(
        f"{'screening':<18} median {median * 1000:7.1f} ms per close, max "
        f"{max(screens) * 1000:.1f} ms ({len(screens)} closes; the baseline: the screen "
        "alone, before any order)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=300)
    parser.add_argument("--closes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (the run creates a database of its own on it and drops it "
        "after); default: a fresh SQLite file",
    )
    asyncio.run(main(parser.parse_args()))
