"""Screens of the closes to come, several at a time: a replay's screener.

Live, each candle close is one message per sandbox worker, and it has to be: the next close
has not happened. A replay knows every close, so `ScreenAhead` answers a close's screen from
a batch that screened it together with the next `ahead - 1` closes of its interval, in one
message per worker (`FilterSandbox.run_closes`): the fixed cost of a round trip (snapshots,
the message, the thread hop, the answer) is paid once per batch instead of once per close.
And while the replay runs the stages over one batch's closes, the workers already screen the
next batch (with the same traders and budgets), so the engine and the workers work at once.

Nothing else changes. Each close's evaluations see only the candles closed by its moment, at
the market's depth, and the tickers of that moment (the sandbox gives each task its own
window of the replicas, copied: the later candles are not reachable), so an outcome is the
one screening that close alone gives; the parity and look-ahead tests hold it to that.
Outcomes are kept per (trader, close) with the budget they ran under, and a close asked
with another budget (the traders changed: one stopped) or another trader is screened anew.
"""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from app.domain.intervals import interval_ms
from app.domain.trader_spec import TraderSpec
from app.engine.backtest.replay import ReplayMarket
from app.engine.klines import Candles
from app.engine.sandbox import FilterOutcome, FilterSandbox
from app.engine.sandbox.pool import Close
from app.engine.screening import MarketView, ScreenerEngine, filter_jobs

AHEAD = 24


@dataclass(frozen=True, slots=True)
class WideView:
    """The replayed market at the last close of a batch (`last`), deep enough for the window
    of its first (`first`): the source a batch's snapshots are taken from."""

    market: ReplayMarket
    first: int
    last: int

    @property
    def source_id(self) -> str:
        return self.market.source_id

    def candles(self, symbol: str, interval: str) -> Candles:
        later = (self.last - self.first) // interval_ms(interval)
        return self.market.candles(symbol, interval, self.last, self.market.depth + later)


class ScreenAhead(ScreenerEngine):
    def __init__(
        self,
        sandbox: FilterSandbox,
        market: ReplayMarket,
        closes: Sequence[tuple[int, Sequence[str]]],
        ahead: int = AHEAD,
    ) -> None:
        """`closes`: every (moment, intervals closing then) the replay steps through."""
        super().__init__(sandbox)
        self.market = market
        self.ahead = max(1, ahead)
        self._moments = [moment for moment, _ in closes]
        self._of_interval: dict[str, list[int]] = {}
        for moment, intervals in closes:
            for interval in intervals:
                self._of_interval.setdefault(interval, []).append(moment)
        self._kept: dict[tuple[uuid.UUID, int], tuple[float | None, FilterOutcome]] = {}
        self._next: dict[str, _Pending] = {}
        self._running: set[asyncio.Task[int]] = set()

    async def screen(
        self,
        specs: Sequence[TraderSpec],
        view: MarketView,
        budgets: Mapping[uuid.UUID, float] | None = None,
    ) -> dict[uuid.UUID, FilterOutcome]:
        budgets = budgets or {}
        at = self.market.at
        assert at is not None, "the replay reveals a close before it screens it"
        for interval in sorted({spec.interval for spec in specs}):
            await self._settle(interval, at)
        outcomes: dict[uuid.UUID, FilterOutcome] = {}
        missing: dict[str, list[TraderSpec]] = {}
        for spec in specs:
            kept = self._kept.pop((spec.id, at), None)
            if kept is not None and kept[0] == budgets.get(spec.id):
                outcomes[spec.id] = kept[1]
            else:
                missing.setdefault(spec.interval, []).append(spec)
        for interval, waiting in missing.items():
            last = await self._screen_batch(waiting, interval, at, budgets)
            outcomes |= {spec.id: self._kept.pop((spec.id, at))[1] for spec in waiting}
            self._prefetch(waiting, interval, last, budgets)
        return outcomes

    async def close(self) -> None:
        """Wait for the batches still being screened (a replay that ends or fails)."""
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        self._next.clear()

    def _batch(self, interval: str, at: int) -> list[int]:
        """The closes of `interval` a batch from `at` screens: `at` and the next ones."""
        moments = self._of_interval.get(interval, [])
        first = bisect.bisect_left(moments, at)
        batch = moments[first : first + self.ahead]
        return batch if batch and batch[0] == at else [at]

    def _prefetch(
        self,
        specs: Sequence[TraderSpec],
        interval: str,
        after: int,
        budgets: Mapping[uuid.UUID, float],
    ) -> None:
        """Start screening the batch after `after` while the replay works through this one:
        the workers screen the closes to come while the engine runs the stages."""
        moments = self._of_interval.get(interval, [])
        following = bisect.bisect_right(moments, after)
        if following >= len(moments):
            return
        start = moments[following]
        task = asyncio.create_task(self._screen_batch(specs, interval, start, budgets))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        self._next[interval] = _Pending(start, specs, budgets, task)

    async def _settle(self, interval: str, at: int) -> None:
        """Collect the batch being screened ahead once the replay reaches it, and start the
        next one with the same traders and budgets."""
        pending = self._next.get(interval)
        if pending is None or pending.start > at:
            return
        del self._next[interval]
        last = await pending.task
        self._prefetch(pending.specs, interval, last, pending.budgets)

    async def _screen_batch(
        self,
        specs: Sequence[TraderSpec],
        interval: str,
        at: int,
        budgets: Mapping[uuid.UUID, float],
    ) -> int:
        """Screen `specs` at `at` and the next closes of `interval`, keep every outcome; the
        batch's last close."""
        batch = self._batch(interval, at)
        start = bisect.bisect_left(self._moments, at)
        for moment in self._moments[start : bisect.bisect_right(self._moments, batch[-1])]:
            self.market.tickers_at(moment)  # the tickers roll forward through every close
        invalid, _ = filter_jobs(specs, lambda each: (), budgets)
        closes = []
        for moment in batch:
            _, jobs = filter_jobs(specs, partial(self.market.symbols, at=moment), budgets)
            closes.append(Close(moment, jobs, self.market.tickers_at(moment)))
        wide = WideView(self.market, batch[0], batch[-1])
        answers = (
            await self.sandbox.run_closes(closes, wide, self.market.depth) if closes[0].jobs else []
        )
        by_key = {str(spec.id): spec.id for spec in specs}
        for moment in batch:
            for trader, outcome in invalid.items():
                self._kept[(trader, moment)] = (budgets.get(trader), outcome)
        for moment, found in zip(batch, answers, strict=False):
            for key, outcome in found.items():
                trader = by_key[key]
                self._kept[(trader, moment)] = (budgets.get(trader), outcome)
        return batch[-1]


@dataclass(frozen=True, slots=True)
class _Pending:
    """A batch being screened ahead: from which close, for which traders, on which budgets."""

    start: int
    specs: Sequence[TraderSpec]
    budgets: Mapping[uuid.UUID, float]
    task: asyncio.Task[int]
