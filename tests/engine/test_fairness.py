"""One user cannot take screening away from another (the attack review's stall, reproduced).

An attacker's traders run filters that never fail any per-evaluation limit (each symbol
costs well under the 0.5 s limit) but cost seconds per candle close; a victim's trader is
trivial. The victim's screens and dry runs stay fast once the attacker's traders have shown
they are heavy (they are screened after everyone else), the attacker's traders exceed their
share of their owner's budget and end in error with the reason, and a screen that falls
behind never queues a backlog: stale closes are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from app.bootstrap import build_workflow
from app.core.events import Event, EventType, InProcessEventBus
from app.core.settings import Settings
from app.db.models import Trader, User
from app.domain.enums import TraderStatus
from app.engine.clock import RealtimeClock
from app.engine.close_trigger import CloseTrigger
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox, SandboxLimits
from app.engine.screening import CandleClose
from app.engine.workflow import Workflow
from app.services.filter_check import FilterChecker, validate_filter
from tests.screening.conftest import START_MS

BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LINK", "LTC", "BCH", "ATOM", "UNI")
SYMBOLS = [f"{base}/USDT" for base in BASES]
HOUR = 3_600_000
# About 0.1-0.4 s of Python per symbol: under the evaluation limit, never a failure by itself.
SLOW = "x = 0\nfor i in range(3_000_000):\n    x += i\nreturn False"
# Matches one symbol per candle, a different one each close: a new signal at every close.
ROTATING = (
    "names = " + repr(SYMBOLS) + "\n"
    "return names.index(symbol) == int(candles.time[-1] // 3600000) % len(names)"
)
LIMITS = SandboxLimits(eval_seconds=0.5, grace_seconds=1.0, batch_cpu_seconds=60)


@pytest.fixture
def backend() -> str:
    return "sqlite"


class StampedBus(InProcessEventBus):
    """Notes when each signal event was published (after its signal was committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[tuple[float, Event]] = []

    async def publish(self, event: Event) -> None:
        if event.type == EventType.SIGNAL:
            self.signals.append((time.monotonic(), event))
        await super().publish(event)


@pytest.fixture
def feed() -> SimulatedFeed:
    return SimulatedFeed(SYMBOLS, intervals=("1h",), seed=3, speed=None, start_ms=START_MS)


@pytest.fixture
def store(feed: SimulatedFeed) -> KlineStore:
    store = KlineStore(depth=200)
    feed.backfill(store)
    return store


@pytest.fixture
async def sandbox() -> AsyncIterator[FilterSandbox]:
    async with FilterSandbox(workers=2, limits=LIMITS) as pool:
        yield pool


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


async def _close(workflow: Workflow, market: MarketData) -> float:
    """Screen the newest close; when it started (monotonic)."""
    newest = market.store.last_time(SYMBOLS[0], "1h")
    assert newest is not None
    close = CandleClose("1h", newest)
    started = time.monotonic()
    await workflow.on_close(close, market.view(close.at))
    return started


async def test_an_attackers_slow_traders_do_not_stall_a_victims_screens_or_dry_runs(
    db: str, feed: SimulatedFeed, store: KlineStore, sandbox: FilterSandbox
) -> None:
    mallory, victor = await User.create(name="mallory"), await User.create(name="victor")
    attackers = [await _trader(mallory, f"slow {n}", SLOW) for n in range(4)]
    victim = await _trader(victor, "rotating", ROTATING)
    bus = StampedBus()
    market = MarketData(feed, store)
    # Four traders share 0.8 s per worker: 0.2 s each, two or three of the slow symbols.
    settings = Settings(screen_seconds_per_user=0.8)
    workflow = build_workflow(bus, RealtimeClock(), sandbox, market, settings)
    checker = FilterChecker.from_settings(market, Settings())
    await checker.start()
    delays, dry_runs = [], []
    try:
        for _ in range(4):
            feed.step(store)
            started = await _close(workflow, market)
            await workflow.signals.notifier.flush()  # published within a bounded wait
            mine = [at for at, event in bus.signals if event.trader_id == str(victim.id)]
            delays.append(mine[-1] - started)
            if workflow.screener.reports[-1].seconds > 0.5:
                # while another heavy close runs, the victim checks a filter
                feed.step(store)
                close = asyncio.create_task(_close(workflow, market))
                await asyncio.sleep(0.3)
                began = time.monotonic()
                check = await validate_filter("return True", checker=checker, user_id=victor.id)
                dry_runs.append(time.monotonic() - began)
                assert check.ran and len(check.matches) == len(SYMBOLS)
                await close
    finally:
        await checker.close()

    # The first close knew nothing of the attacker: the victim waited at most for the
    # attacker's whole budget (and an evaluation over it). From then on the attacker's
    # traders run after the victim's.
    assert delays[0] < 0.8 + 0.5 + 1.5, delays
    assert all(delay < 1.0 for delay in delays[1:]), delays
    assert dry_runs and all(seconds < 2.0 for seconds in dry_runs), dry_runs
    for attacker in attackers:
        stored = await Trader.get(id=attacker.id)
        assert stored.status == TraderStatus.ERROR, stored.status_reason
        assert "time limit exceeded" in (stored.status_reason or "")
    assert (await Trader.get(id=victim.id)).status == TraderStatus.RUNNING


async def test_disabled_traders_leave_no_backlog_and_late_closes_are_coalesced(
    db: str, feed: SimulatedFeed, store: KlineStore, sandbox: FilterSandbox
) -> None:
    mallory = await User.create(name="mallory")
    attackers = [await _trader(mallory, f"slow {n}", SLOW) for n in range(2)]
    market = MarketData(feed, store)
    workflow = build_workflow(InProcessEventBus(), RealtimeClock(), sandbox, market)
    handled: list[int] = []

    async def handle(close: CandleClose) -> None:
        await workflow.on_close(close, market.view(close.at))
        handled.append(close.time)

    trigger = CloseTrigger(store, handle, RealtimeClock(), settle_ms=0, max_settle_ms=100)
    task = asyncio.create_task(trigger.run())
    try:
        await asyncio.sleep(0)
        feed.step(store)
        await asyncio.sleep(0.5)  # the first close is being screened, slowly
        for _ in range(5):
            feed.step(store)  # five more closes arrive meanwhile
        for attacker in attackers:
            await Trader.filter(id=attacker.id).update(enabled=False, status=TraderStatus.PAUSED)
        newest = store.last_time(SYMBOLS[0], "1h")
        for _ in range(200):
            if handled and handled[-1] == newest:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stats = trigger.stats["1h"]
    assert handled[-1] == newest
    assert stats.handled == 2 and stats.dropped == 4, stats
    assert workflow.screener.reports[-1].traders == 0, "disabled traders are not screened"
