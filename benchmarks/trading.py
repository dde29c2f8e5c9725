"""Trading latency: from a candle close to each trader's recorded order, 50 traders.

    python -m benchmarks.trading [--traders 50] [--symbols 100] [--closes 5]
                                 [--database-url postgres://postgres@127.0.0.1:5432/test]

The live wiring of `app.bootstrap` (database repositories, the demo executor, the event
bus, the trading desk) on a seeded simulated market: 50 enabled traders with the
screening benchmark's filters, each over every symbol. For each candle close the workflow
screens (sandbox workers, signals recorded) and then, as the analysis stage would, one
signal per trader becomes ready; the later stages then run at once, as the live engine
runs them, each in its own task. Measured per order:

- close -> order: from handing the close to the workflow to the entry's intent being
  recorded (the order exists, before it is sent), the screen included;
- ready -> order: from the signals being ready to the intent being recorded;
- order -> fill: from the intent to the demo fill being booked (ledger, trade, audit).

The baseline beside them is the screening time of the same closes. The signals are made
ready directly, so the analysis (`benchmarks.analysis` measures it) is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.bootstrap import build_desk, build_workflow
from app.core.events import InProcessEventBus
from app.core.settings import Settings
from app.db.config import close_db, init_db, migrate_db
from app.domain.enums import Side, SignalStatus
from app.domain.orders import Order
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose
from app.engine.workflow import Stage
from app.services.repositories.signals import DbSignalRepository
from app.services.traders import TraderManager
from app.services.users import create_user
from benchmarks.screening import START_MS, strategies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<18} p50 {percentile(ms, 0.5):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   ({len(ms)} orders)"
    )


class Timing:
    """When each entry's intent was recorded and its fill booked (perf_counter)."""

    def __init__(self) -> None:
        self.intents: dict[uuid.UUID, float] = {}
        self.fills: dict[uuid.UUID, float] = {}

    def watch(self, store: Any) -> None:
        begin_entries, record = store.begin_entries, store.record

        async def timed_entries(entries: list[tuple[Trade, Order]]) -> set[uuid.UUID]:
            recorded = await begin_entries(entries)
            now = time.perf_counter()
            for trade, _ in entries:
                if trade.id in recorded and trade.signal_id is not None:
                    self.intents[trade.signal_id] = now
            return recorded

        async def timed_record(order: Order, report: Any, now: int) -> Any:
            booked = await record(order, report, now)
            if booked is not None and booked.opened and booked.trade.signal_id is not None:
                self.fills[booked.trade.signal_id] = time.perf_counter()
            return booked

        store.begin_entries, store.record = timed_entries, timed_record


async def until_idle(stage: Stage, view: Any) -> None:
    while await stage.run(view):
        pass


async def main(args: argparse.Namespace) -> None:
    directory = tempfile.mkdtemp(prefix="traders-bench-")
    url = args.database_url or f"sqlite://{Path(directory) / 'bench.sqlite3'}"
    await migrate_db(url)
    await close_db()
    await init_db(url)
    symbols = [f"C{index:03d}/USDT" for index in range(args.symbols)]
    feed = SimulatedFeed(symbols, intervals=("1h",), seed=18, speed=None, start_ms=START_MS)
    store = KlineStore(depth=args.candles)
    feed.backfill(store)
    market = MarketData(feed, store)
    bus = InProcessEventBus()
    clock = RealtimeClock()
    desk = build_desk(bus, clock, market, Settings(database_url=url))
    timing = Timing()
    timing.watch(desk.store)
    sandbox = FilterSandbox(workers=args.workers)
    workflow = build_workflow(bus, clock, sandbox, market, desk=desk)

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

    signals = DbSignalRepository()
    screens: list[float] = []
    close_to_order: list[float] = []
    ready_to_order: list[float] = []
    order_to_fill: list[float] = []
    await sandbox.start()
    try:
        for number in range(args.closes + 1):
            feed.step(store)
            newest = store.last_time(symbols[0], "1h")
            assert newest is not None
            close = CandleClose("1h", newest)
            view = market.view(close.at)
            started = time.perf_counter()
            report = await workflow.on_close(close, view)
            screened = time.perf_counter()
            assert report is not None and report.failures == 0, report
            ready = []
            for trader in traders:
                signal = Signal(
                    uuid.uuid4(), trader.id, owner.id, symbols[number % len(symbols)], "1h",
                    Side.LONG, Decimal(1), close.time, clock.now(), status=SignalStatus.READY,
                )  # fmt: skip
                if await signals.add(signal):
                    ready.append(signal.id)
            made_ready = time.perf_counter()
            await asyncio.gather(*(until_idle(stage, view) for stage in workflow.stages))
            if number == 0:
                continue  # the first close warms the sandbox replicas and the pool
            screens.append(screened - started)
            for signal_id in ready:
                recorded = timing.intents[signal_id]
                close_to_order.append(recorded - started - (made_ready - screened))
                ready_to_order.append(recorded - made_ready)
                order_to_fill.append(timing.fills[signal_id] - recorded)
        await desk.notifier.flush()
    finally:
        await sandbox.close()
        await close_db()

    print(summary("close -> order", close_to_order))
    print(summary("ready -> order", ready_to_order))
    print(summary("order -> fill", order_to_fill))
    median = statistics.median(screens)
    print(
        f"{'screening':<18} median {median * 1000:7.1f} ms per close, max "
        f"{max(screens) * 1000:.1f} ms ({len(screens)} closes; the baseline: the screen "
        "alone, before any order)"
    )
    print(
        "close -> order excludes the benchmark's own insertion of the ready signals, which "
        "stands in for the analysis stage"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=300)
    parser.add_argument("--closes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    asyncio.run(main(parser.parse_args()))
