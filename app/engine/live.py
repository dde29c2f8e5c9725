"""The live engine: a market feed, the close trigger, and the workflow it drives.

It is one process's engine, embedded in the API process (`TRADERS_ENGINE=embedded`) or run
on its own. Everything it needs from the outside comes in through ports (built by
`app.bootstrap`); `heartbeat` is told, at start and then every `heartbeat_ms` of the clock,
what market this engine sees, so that API processes without an engine can answer `market`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from app.domain.market_info import MarketInfo
from app.engine.clock import Clock
from app.engine.close_trigger import CloseTrigger
from app.engine.market import MarketData
from app.engine.screening import CandleClose, ScreenerEngine, ScreenReport
from app.engine.workflow import Workflow

log = logging.getLogger(__name__)

HEARTBEAT_MS = 10_000
Heartbeat = Callable[[str, MarketInfo], Awaitable[None]]


class LiveEngine:
    def __init__(
        self,
        market: MarketData,
        workflow: Workflow,
        clock: Clock,
        *,
        heartbeat: Heartbeat | None = None,
        heartbeat_ms: int = HEARTBEAT_MS,
        settle_ms: int = 200,
        max_settle_ms: int = 5000,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.market = market
        self.workflow = workflow
        self.clock = clock
        self.trigger = CloseTrigger(market.store, self._on_close, clock, settle_ms, max_settle_ms)
        self._heartbeat = heartbeat
        self._heartbeat_ms = heartbeat_ms
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def screener(self) -> ScreenerEngine:
        return self.workflow.screener

    async def _on_close(self, close: CandleClose) -> ScreenReport | None:
        return await self.workflow.on_close(close, self.market.view(close.at))

    async def start(self) -> None:
        """The sandbox workers and the trigger listen before the feed starts filling."""
        await self.workflow.screener.start()
        self._tasks.append(asyncio.create_task(self.trigger.run(), name="close trigger"))
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
            await self.clock.sleep_until(self.clock.now() + self._heartbeat_ms)
