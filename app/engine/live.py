"""The live engine: a market feed, the close trigger, and the workflow it drives.

It is one process's engine, embedded in the API process (`TRADERS_ENGINE=embedded`) or run
on its own. Everything it needs from the outside comes in through ports (built by
`app.bootstrap`); `heartbeat` is told, at start and then every `heartbeat_ms` of the clock,
what market this engine sees, so that API processes without an engine can answer `market`.

The stages read the market's time (the feed's clock, assembled into the workflow); what
the engine itself waits on (settling a close, polling, the heartbeat) is wall time.

On a real-time market each later stage of the workflow runs in a task of its own, so a slow
one (a model call) never delays a screen or another stage: it is woken after every close and
whenever another stage handled something, a price-driven one (the position monitor) also on
every price update, and each looks again every `poll_ms` anyway (a lease that ran out, work
another process left). A bookkeeping stage (equity snapshots, decision outcomes) waits
while the stages on the way to an order are busy, so a close's entries do not queue behind
its records. A stepped feed (a replay) waits for the engine anyway, so there the
engine handles each close as a backtest does, with the very same `Workflow.drain` after the
screen: the stages run in their order until none has anything left, before the next close
is released. That is what makes a replay through the live engine and a backtest of the
same candles agree trade for trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from app.domain.market_info import MarketInfo
from app.engine.clock import Clock, RealtimeClock
from app.engine.close_trigger import SETTLE_MS, CloseTrigger
from app.engine.feeds.base import SteppedFeed
from app.engine.market import MarketData
from app.engine.screening import CandleClose, ScreenerEngine, ScreenReport
from app.engine.workflow import Bookkeeping, PriceDriven, Workflow

log = logging.getLogger(__name__)

HEARTBEAT_MS = 10_000
POLL_MS = 2_000
BOOKKEEPING_WAIT_MS = 2_000
Heartbeat = Callable[[str, MarketInfo], Awaitable[None]]


class LiveEngine:
    def __init__(
        self,
        market: MarketData,
        workflow: Workflow,
        wall: Clock | None = None,
        *,
        heartbeat: Heartbeat | None = None,
        heartbeat_ms: int = HEARTBEAT_MS,
        poll_ms: int = POLL_MS,
        bookkeeping_wait_ms: int = BOOKKEEPING_WAIT_MS,
        settle_ms: int = SETTLE_MS,
        max_settle_ms: int = 5000,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.market = market
        self.workflow = workflow
        self.wall = wall or RealtimeClock()
        self.trigger = CloseTrigger(
            market.store, self._on_close, self.wall, settle_ms, max_settle_ms
        )
        self._heartbeat = heartbeat
        self._heartbeat_ms = heartbeat_ms
        self._poll_ms = poll_ms
        self._bookkeeping_wait_ms = bookkeeping_wait_ms
        self._wakes = [asyncio.Event() for _ in workflow.stages]
        self._busy: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def screener(self) -> ScreenerEngine:
        return self.workflow.screener

    @property
    def stepped(self) -> bool:
        """Whether the feed waits for the engine before each close (a replay)."""
        return isinstance(self.market.feed, SteppedFeed)

    async def _on_close(self, close: CandleClose) -> ScreenReport | None:
        view = self.market.view(close.at)
        report = await self.workflow.on_close(close, view)
        if self.stepped:
            await self.workflow.drain(view)
        else:
            self._wake_stages()
        return report

    def _wake_stages(self) -> None:
        for wake in self._wakes:
            wake.set()

    async def _run_stage(self, index: int) -> None:
        stage, wake = self.workflow.stages[index], self._wakes[index]
        while True:
            waits = [
                asyncio.ensure_future(wake.wait()),
                asyncio.ensure_future(self.wall.sleep_until(self.wall.now() + self._poll_ms)),
            ]
            if isinstance(stage, PriceDriven):
                waits.append(asyncio.ensure_future(stage.prices_moved()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
            wake.clear()
            if isinstance(stage, Bookkeeping):
                await self._after_order_path()
            self._busy.add(index)
            try:
                while await stage.run(self.market.view()):
                    self._wake_stages()
            except Exception:
                log.exception("stage %s failed; it runs again at the next wake-up", stage.name)
            finally:
                self._busy.discard(index)
                self.trigger.progress.set()

    async def _after_order_path(self) -> None:
        """Return once the stages on the way to an order are idle, or after
        `bookkeeping_wait_ms` (a position monitor busy with every tick never starves the
        bookkeeping)."""
        order_path = [
            index
            for index, stage in enumerate(self.workflow.stages)
            if not isinstance(stage, Bookkeeping)
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._bookkeeping_wait_ms / 1000):
                while any(i in self._busy or self._wakes[i].is_set() for i in order_path):
                    self.trigger.progress.clear()
                    await self.trigger.progress.wait()

    def idle(self) -> bool:
        """Every close handled and every stage done with what it was woken for."""
        return (
            self.trigger.caught_up()
            and not self._busy
            and not any(wake.is_set() for wake in self._wakes)
        )

    async def caught_up(self) -> None:
        """Return once the engine is idle (a stepped replay feed waits on this)."""
        while not self.idle():
            self.trigger.progress.clear()
            await self.trigger.progress.wait()

    async def start(self) -> None:
        """The sandbox workers and the trigger listen before the feed starts filling; a
        replayed feed is stepped by the engine."""
        await self.workflow.screener.start()
        if isinstance(self.market.feed, SteppedFeed):
            self.market.feed.pace_with(self.caught_up)
        self._tasks.append(asyncio.create_task(self.trigger.run(), name="close trigger"))
        if not self.stepped:
            for index, stage in enumerate(self.workflow.stages):
                self._tasks.append(asyncio.create_task(self._run_stage(index), name=stage.name))
        await self.market.start()
        if self._heartbeat is not None:
            self._tasks.append(asyncio.create_task(self._beat(), name="engine heartbeat"))

    async def stop(self) -> None:
        await self.market.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.workflow.screener.stop()

    async def _beat(self) -> None:
        assert self._heartbeat is not None
        while True:
            try:
                await self._heartbeat(self.id, self.market.info())
            except Exception:
                log.warning("engine heartbeat failed", exc_info=True)
            await self.wall.sleep_until(self.wall.now() + self._heartbeat_ms)
