"""The live engine's clock tick: one screen per interval and candle, as candles close.

The kline store publishes a candle-closed event per symbol. After the first close of an
(interval, candle) the trigger waits until every symbol of that interval has the candle (at
least `settle_ms`, so that the other intervals closing at the same moment arrive too, and at
most `max_settle_ms`: a symbol late beyond that is screened on its previous candle), then
hands the close to the workflow once.

`caught_up()` tells whether every close the store has published was handled; a replay feed
paces itself on it (`SteppedFeed`), so a replayed market never runs ahead of the engine.

A screen that falls behind is coalesced, never queued: while one close of an interval is
being handled, newer closes replace each other and only the newest is handled next; the
stale ones are dropped and counted (`dropped`). A backlog cannot outlive its cause, and a
screen always works on the freshest candle. Waiting is done on the engine's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.engine.clock import Clock
from app.engine.klines import CandleClosed, KlineStore
from app.engine.screening import CandleClose

log = logging.getLogger(__name__)

Handler = Callable[[CandleClose], Awaitable[object]]


SETTLE_MS = 200


@dataclass(slots=True)
class LaneStats:
    """What one interval's lane did since start: closes seen, handled, dropped as stale."""

    seen: int = 0
    handled: int = 0
    dropped: int = 0
    last_handled: int | None = None


@dataclass(slots=True, eq=False)
class _Lane:
    interval: str
    newest: int = -1
    missing: set[str] = field(default_factory=set)
    unhandled: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    stats: LaneStats = field(default_factory=LaneStats)


class CloseTrigger:
    def __init__(
        self,
        store: KlineStore,
        handle: Handler,
        clock: Clock,
        settle_ms: int = SETTLE_MS,
        max_settle_ms: int = 5000,
    ) -> None:
        self.store = store
        self.handle = handle
        self.clock = clock
        self.settle_ms = settle_ms
        self.max_settle_ms = max_settle_ms
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handling: set[str] = set()
        self.progress = asyncio.Event()

    @property
    def stats(self) -> dict[str, LaneStats]:
        return {interval: lane.stats for interval, lane in self._lanes.items()}

    def caught_up(self) -> bool:
        """Whether the newest close of every interval in the store has been handled."""
        for interval in self.store.intervals():
            lane = self._lanes.get(interval)
            newest = self.store.newest_time(interval)
            if lane is None or interval in self._handling or lane.stats.last_handled != newest:
                return False
        return True

    async def run(self) -> None:
        """Listen to the store until cancelled; handlers run in one task per interval."""
        queue = self.store.subscribe()
        try:
            while True:
                self._arrived(await queue.get())
        finally:
            self.store.unsubscribe(queue)
            for task in self._tasks:
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _arrived(self, event: CandleClosed) -> None:
        lane = self._lanes.get(event.interval)
        if lane is None:
            lane = self._lanes[event.interval] = _Lane(event.interval)
            task = asyncio.create_task(self._drive(lane), name=f"close trigger {event.interval}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if event.time > lane.newest:
            lane.newest = event.time
            lane.missing = set(self.store.symbols(event.interval))
            lane.complete.clear()
            lane.unhandled += 1
            lane.stats.seen += 1
            lane.wake.set()
        if event.time >= lane.newest:
            lane.missing.discard(event.symbol)
            if not lane.missing:
                lane.complete.set()
        self.progress.set()

    async def _drive(self, lane: _Lane) -> None:
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            target = lane.newest
            await self._settle(lane)
            if lane.newest != target:
                continue  # a newer close arrived while settling: that one is handled instead
            lane.stats.dropped += lane.unhandled - 1
            lane.unhandled = 0
            self._handling.add(lane.interval)
            try:
                await self.handle(CandleClose(lane.interval, target))
            except Exception:
                log.exception("handling the %s close of %s failed", lane.interval, target)
            finally:
                self._handling.discard(lane.interval)
            lane.stats.handled += 1
            lane.stats.last_handled = target
            self.progress.set()

    async def _settle(self, lane: _Lane) -> None:
        started = self.clock.now()
        await self.clock.sleep_until(started + self.settle_ms)
        if lane.complete.is_set():
            return
        complete = asyncio.ensure_future(lane.complete.wait())
        deadline = asyncio.ensure_future(self.clock.sleep_until(started + self.max_settle_ms))
        try:
            await asyncio.wait((complete, deadline), return_when=asyncio.FIRST_COMPLETED)
        finally:
            complete.cancel()
            deadline.cancel()
