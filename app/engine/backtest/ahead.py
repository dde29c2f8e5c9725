"""Screens of the closes to come, several at a time: a replay's screener.

Live, each candle close is one message per sandbox worker, and it has to be: the next close
has not happened. A replay knows every close, so `ScreenAhead` answers a close's screen from
a batch that screened it together with the next `ahead - 1` closes of its interval, in one
message per worker (`FilterSandbox.run_closes`): the fixed cost of a round trip (snapshots,
the message, the thread hop, the answer) is paid once per batch instead of once per close.
And while the replay runs the stages over one batch's closes, the workers already screen the
next batch (with the same traders and budgets), so the engine and the workers work at once.

Exit filters are screened ahead too: the exit stage asks at each close for the exit filter
over the symbols held then, which only the replay itself decides, and a round trip of its
own would wait behind the batch being screened ahead. So as soon as a batch's entries are
screened, each trader's exit filter is run over the batch's closes on the symbols it may
hold at each of them: those it holds or has an active signal on now, and those its entry
filter matched from now to that close (a position only opens from a signal, and a signal
only from a match). An exit filter's evaluation of one symbol does not depend on the other
symbols, so the answer for the symbols held is the one a run over them alone gives; a
question it cannot answer (a failed run, another filter, a symbol it did not screen) is
asked of the sandbox as live.

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
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from app.domain.filter_validation import FilterValidationError
from app.domain.intervals import interval_ms
from app.domain.trader_spec import TraderSpec
from app.engine.backtest.replay import ReplayMarket
from app.engine.exit_signals import exit_job
from app.engine.klines import Candles
from app.engine.sandbox import FilterJob, FilterOutcome, FilterSandbox, SandboxError
from app.engine.sandbox.pool import Close
from app.engine.screening import MarketView, ScreenerEngine, filter_jobs

log = logging.getLogger(__name__)

AHEAD = 24

Holdings = Callable[[Sequence[TraderSpec]], Awaitable[dict[uuid.UUID, set[str]]]]
"""The symbols each trader holds a position in or has an active signal on, now."""


def may_exit(spec: TraderSpec) -> bool:
    """Whether the trader has a valid exit filter to screen ahead (an invalid one is left
    to the exit stage, which reports it as live)."""
    try:
        return spec.exit_filter is not None
    except FilterValidationError:
        return False


def _filter_of(job: FilterJob) -> tuple[object, ...]:
    """What a job runs, whatever symbols it runs over."""
    return job.code, job.interval, job.timeframes, job.params, job.budget_seconds


def narrowed(job: FilterJob, kept: tuple[FilterJob, FilterOutcome]) -> FilterOutcome | None:
    """The outcome of `job` from an exit run ahead over more symbols: its matches among the
    job's symbols; None when that run cannot answer it (another filter or more symbols, or
    the run failed: how far a failing run got depends on the symbols it ran over)."""
    ran, outcome = kept
    if outcome.failure is not None or outcome.lost is not None:
        return None
    if _filter_of(ran) != _filter_of(job):
        return None
    asked = set(job.symbols)
    if not asked <= set(ran.symbols):
        return None
    share = len(asked) / max(1, len(ran.symbols))
    return FilterOutcome(
        job.key,
        tuple(match for match in outcome.matches if match.symbol in asked),
        evaluated=min(outcome.evaluated, len(asked)),
        spent_seconds=outcome.spent_seconds * share,
    )


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
        holdings: Holdings,
        ahead: int = AHEAD,
    ) -> None:
        """`closes`: every (moment, intervals closing then) the replay steps through."""
        super().__init__(sandbox)
        self.market = market
        self.holdings = holdings
        self.ahead = max(1, ahead)
        self._of_interval: dict[str, list[int]] = {}
        for moment, intervals in closes:
            for interval in intervals:
                self._of_interval.setdefault(interval, []).append(moment)
        self._kept: dict[tuple[uuid.UUID, int], tuple[float | None, FilterOutcome]] = {}
        self._exits: dict[tuple[str, int], tuple[FilterJob, FilterOutcome]] = {}
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
        self._kept = {key: kept for key, kept in self._kept.items() if key[1] >= at}
        self._exits = {key: kept for key, kept in self._exits.items() if key[1] >= at}
        outcomes: dict[uuid.UUID, FilterOutcome] = {}
        missing: dict[str, list[TraderSpec]] = {}
        for spec in specs:
            kept = self._kept.get((spec.id, at))
            if kept is not None and kept[0] == budgets.get(spec.id):
                outcomes[spec.id] = kept[1]
            else:
                missing.setdefault(spec.interval, []).append(spec)
        for interval, waiting in missing.items():
            last = await self._screen_ahead(waiting, interval, at, budgets)
            outcomes |= {spec.id: self._kept[(spec.id, at)][1] for spec in waiting}
            self._prefetch(waiting, interval, last, budgets)
        return outcomes

    async def screen_exits(
        self, jobs: Sequence[FilterJob], view: MarketView
    ) -> dict[str, FilterOutcome]:
        at = self.market.at
        outcomes: dict[str, FilterOutcome] = {}
        missing = []
        for job in jobs:
            kept = self._exits.get((job.key, at)) if at is not None else None
            outcome = None if kept is None else narrowed(job, kept)
            if outcome is None:
                missing.append(job)
            else:
                outcomes[job.key] = outcome
        if missing:
            outcomes |= await super().screen_exits(missing, view)
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
        task = asyncio.create_task(self._screen_ahead(specs, interval, start, budgets))
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

    async def _screen_ahead(
        self,
        specs: Sequence[TraderSpec],
        interval: str,
        at: int,
        budgets: Mapping[uuid.UUID, float],
    ) -> int:
        """The entries of a batch from `at`, then the exit filters over its closes; the
        batch's last close."""
        last = await self._screen_batch(specs, interval, at, budgets)
        await self._screen_exits_ahead(specs, interval, at, last)
        return last

    async def _screen_exits_ahead(
        self, specs: Sequence[TraderSpec], interval: str, first: int, last: int
    ) -> None:
        """Screen the exit filters over the closes from `first` to `last`, whose entries are
        screened, on the symbols each trader may hold at one of them: those it holds or has
        an active signal on now, and those its entries matched from now to the last (kept
        until the replay passes them); the same symbols at every close, so the run's tasks
        are made as columns. Nothing is kept when the sandbox failed: the exit stage then
        asks it as live."""
        exiting = [spec for spec in specs if may_exit(spec)]
        if not exiting:
            return
        held = await self.holdings(exiting)
        moments = self._of_interval.get(interval, [])
        for moment in moments[
            bisect.bisect_left(moments, self._revealed(first)) : bisect.bisect_right(moments, last)
        ]:
            for spec in exiting:
                kept = self._kept.get((spec.id, moment))
                if kept is not None:
                    held[spec.id] |= {match.symbol for match in kept[1].matches}
        jobs = [
            job
            for spec in exiting
            if held[spec.id] and (job := exit_job(spec, sorted(held[spec.id]))) is not None
        ]
        if not jobs:
            return
        batch = moments[bisect.bisect_left(moments, first) : bisect.bisect_right(moments, last)]
        closes = [Close(moment, jobs, self.market.tickers_at(moment)) for moment in batch]
        try:
            answers = await self.sandbox.run_closes(
                closes, self._wide(first, last), self.market.depth
            )
        except SandboxError:
            log.exception("screening exit filters ahead failed; the exit stage asks again")
            return
        for moment, close, found in zip(batch, closes, answers, strict=True):
            for job in close.jobs:
                self._exits[(job.key, moment)] = (job, found[job.key])

    def _wide(self, first: int, last: int) -> WideView:
        """The source of a batch's snapshots, deep enough for the moment the replay is at
        too: the workers' replicas keep what a batch's snapshots hold, and a run of the
        sandbox at that moment (exits it could not answer ahead) must still find its whole
        window there."""
        return WideView(self.market, self._revealed(first), last)

    def _revealed(self, first: int) -> int:
        """The earliest close a batch from `first` concerns: `first`, or the moment the
        replay is at when that is earlier."""
        return first if self.market.at is None else min(first, self.market.at)

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
        invalid, _ = filter_jobs(specs, lambda each: (), budgets)
        closes = []
        for moment in batch:
            _, jobs = filter_jobs(specs, partial(self.market.symbols, at=moment), budgets)
            closes.append(Close(moment, jobs, self.market.tickers_at(moment)))
        wide = self._wide(batch[0], batch[-1])
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
