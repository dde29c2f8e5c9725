"""The live engine: a market feed, the close trigger, and the workflow it drives.

It is one process's engine, embedded in the API process (`TRADERS_ENGINE=embedded`) or run
on its own. Everything it needs from the outside comes in through ports (built by
`app.bootstrap`); `heartbeat` is told, at start and then every `heartbeat_ms` of the clock,
what market this engine sees, so that API processes without an engine can answer `market`.

The stages read the market's time (the feed's clock, assembled into the workflow); what
the engine itself waits on (settling a close, polling, the heartbeat) is wall time.

On a real-time market each later stage of the workflow runs in a task of its own
(`StageTasks`: screens first, then the stages on the way to an order, bookkeeping last).
A stepped feed (a replay) waits for the engine anyway, so there the engine handles each
close as a backtest does, with the very same `Workflow.drain` after the screen: the stages
run in their order until none has anything left, before the next close is released. That
is what makes a replay through the live engine and a backtest of the same candles agree
trade for trade.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from app.core.tasks import cancel_and_wait
from app.domain.market_info import MarketInfo
from app.engine.clock import Clock, RealtimeClock
from app.engine.close_trigger import SETTLE_MS, CloseTrigger
from app.engine.feeds.base import SteppedFeed
from app.engine.market import MarketData
from app.engine.screening import CandleClose, ScreenerEngine, ScreenReport
from app.engine.stage_tasks import BOOKKEEPING_WAIT_MS, POLL_MS, StageTasks
from app.engine.workflow import Workflow

log = logging.getLogger(__name__)

HEARTBEAT_MS = 10_000
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
        self.stage_tasks = StageTasks(
            workflow,
            market,
            self.wall,
            poll_ms=poll_ms,
            bookkeeping_wait_ms=bookkeeping_wait_ms,
            progress=self.trigger.progress,
        )
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
            self.stage_tasks.wake()
        return report

    def idle(self) -> bool:
        """Every close handled and every stage done with what it was woken for."""
        return self.trigger.caught_up() and self.stage_tasks.idle()

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
            self.stage_tasks.start()
        await self.market.start()
        if self._heartbeat is not None:
            self._tasks.append(asyncio.create_task(self._beat(), name="engine heartbeat"))

    async def stop(self) -> None:
        await self.market.stop()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.stage_tasks.stop()
        await self.workflow.screener.stop()

    async def _beat(self) -> None:
        assert self._heartbeat is not None
        while True:
            try:
                await self._heartbeat(self.id, self.market.info())
            except Exception:
                log.warning("engine heartbeat failed", exc_info=True)
            await self.wall.sleep_until(self.wall.now() + self._heartbeat_ms)
