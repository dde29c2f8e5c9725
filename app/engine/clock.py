"""The engine's only source of time: a `Clock`, realtime when live, replayed in a backtest.

Every workflow time (the candle a screen is for, when a signal, decision, fill or equity
snapshot happened, when a lease runs out) is read from the clock the stages are wired to,
never from `datetime.now()`, `time.time()`, a database default or `asyncio.sleep`. That is
what lets one stage code run live and in a backtest (hummingbot's `Clock` with its realtime
and backtest modes, nautilus_trader's live and test clocks): the realtime clock reads and
waits on the wall; the replay clock is moved by the replay loop from one event to the next
and never sleeps, so a year of candles replays as fast as the CPU allows and the same input
always gives the same result.

Times are epoch milliseconds (UTC), the unit of candle times; `to_datetime` converts at the
edges that store or show them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """The current time in epoch milliseconds."""
        ...

    async def sleep_until(self, when: int) -> None:
        """Return once the clock has reached `when` (at once if it already has)."""
        ...


def to_datetime(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class RealtimeClock:
    """The wall clock, for the live engine."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, when: int) -> None:
        delay = (when - self.now()) / 1000
        if delay > 0:
            await asyncio.sleep(delay)


class ReplayClock:
    """Time that moves only when the replay loop says so, for backtests.

    `advance(to)` moves the clock forward (never back) and wakes every sleeper whose time
    has come, in the order of their wake-up times; a sleeper never waits for real time.
    """

    def __init__(self, start: int = 0) -> None:
        self._now = start
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> int:
        return self._now

    async def sleep_until(self, when: int) -> None:
        if when <= self._now:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), waiter))
        await waiter

    def advance(self, to: int) -> None:
        if to < self._now:
            raise ValueError(f"a replay clock does not go back (at {self._now}, asked {to})")
        self._now = to
        while self._sleepers and self._sleepers[0][0] <= to:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)
