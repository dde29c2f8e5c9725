"""FilterSandbox: a pool of filter workers; `run` screens many jobs at once, a bad job fails alone.

Why it is fast: symbols are split between workers (a symbol always goes to the same one),
and each worker keeps a replica of its symbols' candles per candle source, updated
incrementally: the engine remembers, per worker, source and series, the newest candle it
sent, and only newer rows travel. One message per worker per candle close carries all the
jobs' evaluations of its symbols; the worker computes each symbol's indicators once for
every job that reads them, and compiles each filter once.

Why it is safe: what a worker answers is plain data, checked against the batch (see
`messages`). When a worker dies or stalls in a filter, that job is blamed and a fresh worker
finishes the part without it. When a worker breaks the protocol or is lost outside any
filter, nobody is blamed: the part is retried once on a fresh worker, and a second time the
part's run is lost (`FilterOutcome.lost`), for its jobs only.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.domain.indicators import CandleArrays
from app.domain.intervals import interval_ms
from app.engine.sandbox.isolation import DEFAULT_USER
from app.engine.sandbox.jobs import (
    CandleSource,
    FilterJob,
    FilterMatch,
    FilterOutcome,
    SandboxError,
    SandboxLimits,
    TickerRows,
    TickerValues,
)
from app.engine.sandbox.messages import Answer, Batch, JobResult, JobSpec, SeriesUpdate
from app.engine.sandbox.namespace import sanitize
from app.engine.sandbox.process import WORKER_MODULE, Crash, WorkerProcess
from app.engine.sandbox.tasks import TaskBlock, TaskBuilder, Tasks

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Part:
    """What one worker screens in a run: its symbols' series that have candles, and each
    symbol with the jobs that screen it."""

    snapshots: dict[tuple[str, str], CandleArrays] = field(default_factory=dict)
    tasks: TaskBuilder = field(default_factory=TaskBuilder)
    built: Tasks | None = None

    @property
    def columns(self) -> Tasks:
        """The tasks once the run is partitioned."""
        if self.built is None:
            self.built = self.tasks.build()
        return self.built


class _Windows:
    """What each close of a run sees of each series: (the open time of its last candle, how
    many candles up to it, where it ends in the snapshot), found for every close of the run
    at once when the series is first asked for."""

    def __init__(self, closes: Sequence[Close], source: CandleSource, depth: int | None) -> None:
        self.source = source
        self.depth = depth
        self.moments = [close.at for close in closes]
        self.snapshots: dict[tuple[str, str], CandleArrays] = {}
        self._times: dict[tuple[str, str], list[int]] = {}
        self._ends: dict[tuple[str, str], np.ndarray] = {}
        self._listed: dict[tuple[str, str], list[int]] = {}

    def ends(self, symbol: str, interval: str) -> np.ndarray:
        """Where the snapshot of the series ends at each close of the run (0: no candle)."""
        key = (symbol, interval)
        ends = self._ends.get(key)
        if ends is None:
            candles = self.snapshots[key] = self.source.candles(symbol, interval)
            ends = self._ends[key] = _ends(candles.time, interval, self.moments)
        return ends

    def of(self, close: int, symbol: str, interval: str) -> tuple[int, int, int] | None:
        """(until, rows, end) of the series at the `close`-th close; None when none of its
        candles had closed by then."""
        key = (symbol, interval)
        if key not in self._listed:
            self._listed[key] = self.ends(symbol, interval).tolist()
            self._times[key] = self.snapshots[key].time.tolist()
        end = self._listed[key][close]
        if end == 0:
            return None
        return self._times[key][end - 1], end if self.depth is None else min(self.depth, end), end

    def columns(
        self, symbol: str, interval: str, closes: slice
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(until, rows) of the series at each of `closes`; None when one has no candle."""
        ends = self.ends(symbol, interval)[closes]
        if not ends.all():
            return None
        until = self.snapshots[(symbol, interval)].time[ends - 1]
        return until, ends if self.depth is None else np.minimum(ends, self.depth)


@dataclass(frozen=True, slots=True)
class Close:
    """Jobs to run at one close: `at` is its moment (None: the source as it shows now), with
    the tickers of that moment."""

    at: int | None
    jobs: Sequence[FilterJob]
    tickers: Mapping[str, TickerValues]


@dataclass(frozen=True, slots=True)
class _PartResult:
    """A part's answer (one result per job), the jobs blamed for a crash, or why it was lost;
    and what it took: the workers replaced, the candle rows sent."""

    results: tuple[JobResult, ...]
    crashed: Mapping[int, Crash]
    lost: str | None
    replaced: int
    rows_sent: int


class FilterSandbox:
    """A pool of filter workers. `run` screens many jobs at once; a bad job fails alone.

    `worker_module` is what each worker runs (`python -m`), `user` who a worker started as
    root becomes once it is ready."""

    def __init__(
        self,
        workers: int = 2,
        limits: SandboxLimits | None = None,
        *,
        worker_module: str = WORKER_MODULE,
        user: str | None = DEFAULT_USER,
    ) -> None:
        self.size = max(1, workers)
        self.limits = limits or SandboxLimits()
        self.worker_module = worker_module
        self.user = user
        self.replaced = 0
        self.rows_sent = 0
        self.isolation: tuple[str, ...] = ()
        self._workers: list[WorkerProcess] = []
        self._owner: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._empty_root: str | None = None

    @property
    def pids(self) -> tuple[int, ...]:
        """The process ids of the workers running now."""
        return tuple(worker.process.pid for worker in self._workers)

    @property
    def held_series(self) -> int:
        """How many series the workers' replicas held at their last answer, all sources."""
        return sum(worker.held for worker in self._workers)

    def _spawn(self) -> WorkerProcess:
        try:
            return WorkerProcess(self.limits, self.worker_module, self._empty_root, self.user)
        except OSError as exc:
            raise SandboxError(f"cannot start a filter worker: {exc}") from exc

    async def start(self) -> None:
        """Start the workers and wait until they are ready (they import in parallel), so the
        first run does not wait for them; one that fails to start is replaced at its first run."""
        if not self._workers:
            self._empty_root = self._empty_root or tempfile.mkdtemp(prefix="traders-sandbox-")
            workers: list[WorkerProcess] = []
            try:
                workers.extend(self._spawn() for _ in range(self.size))
            except SandboxError:
                for worker in workers:
                    worker.stop(kill=True)
                raise
            await asyncio.gather(*(worker.start() for worker in workers))
            for worker in workers:
                self._note_isolation(worker)
            self._workers = workers

    async def close(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.hang_up()
        await asyncio.to_thread(_each, workers, WorkerProcess.stop)
        if self._empty_root is not None:
            shutil.rmtree(self._empty_root, ignore_errors=True)
            self._empty_root = None

    async def __aenter__(self) -> FilterSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _slot(self, symbol: str) -> int:
        slot = self._owner.get(symbol)
        if slot is None:
            slot = self._owner[symbol] = len(self._owner) % self.size
        return slot

    async def run(
        self,
        jobs: Sequence[FilterJob],
        source: CandleSource,
        tickers: Mapping[str, TickerValues],
    ) -> dict[str, FilterOutcome]:
        """Run every job over its symbols that have candles; one outcome per job.

        A symbol without a ticker gets its last close as price and NaN 24 h statistics.

        Snapshots are taken here, on the event loop, so the source may keep changing while
        workers run; runs are serialised because each worker holds one replica per source.
        A run that is cancelled, or fails (`SandboxError`: no worker could be started), still
        lets all its workers finish before the next run may use them.
        """
        return (await self.run_closes([Close(None, jobs, tickers)], source))[0]

    async def run_closes(
        self, closes: Sequence[Close], source: CandleSource, depth: int | None = None
    ) -> list[dict[str, FilterOutcome]]:
        """`run` for several closes of one source in one message per worker, one outcome per
        job and close: a backtest screens the closes to come at once. The source shows the
        candles up to the last close; each close's evaluations see only those closed by its
        moment, at most `depth` of them (the depth the market shows at one close)."""
        jobs = [job for close in closes for job in close.jobs]
        async with self._lock:
            await self.start()
            specs = tuple(
                JobSpec(
                    job.code,
                    job.interval,
                    job.timeframes | {job.interval},
                    job.params,
                    self.limits.run_seconds if job.budget_seconds is None else job.budget_seconds,
                )
                for job in jobs
            )
            parts = [part for part in self._partition(closes, source, depth) if len(part[1].tasks)]
            gathered = asyncio.gather(
                *(self._run_part(slot, part, source.source_id, specs) for slot, part in parts),
                return_exceptions=True,
            )
            try:
                answers = await asyncio.shield(gathered)
            except asyncio.CancelledError:
                await asyncio.wait([gathered])
                raise
        results = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            results.append(answer)
        self.replaced += sum(result.replaced for result in results)
        self.rows_sent += sum(result.rows_sent for result in results)
        outcomes = iter(_merge(jobs, [part for _, part in parts], results))
        return [{job.key: next(outcomes) for job in close.jobs} for close in closes]

    async def forget_source(self, source_id: str) -> None:
        """Drop every replica of `source_id` (a backtest that ended), in the engine and the
        workers; a later run of that source ships its candles again."""
        async with self._lock:
            await asyncio.gather(*(worker.forget(source_id) for worker in self._workers))

    def _partition(
        self, closes: Sequence[Close], source: CandleSource, depth: int | None
    ) -> list[tuple[int, _Part]]:
        """Each worker's part of a run. Closes in a row with the same jobs (a batch screened
        ahead) are added as columns, all their tasks at once; a close whose symbols do not
        all have candles and tickers yet is added symbol by symbol."""
        parts = [_Part() for _ in range(self.size)]
        found = _Windows(closes, source, depth)
        shapes = [tuple((job.symbols, job.timeframes) for job in close.jobs) for close in closes]
        bases = [0, *itertools.accumulate(len(close.jobs) for close in closes)]
        first = 0
        while first < len(closes):
            last = first + 1
            while last < len(closes) and shapes[last] == shapes[first]:
                last += 1
            plan = _plan(shapes[first])
            if not self._add_block(parts, found, closes, slice(first, last), bases, plan):
                for number in range(first, last):
                    self._add_close(parts, found, closes[number], number, bases[number], plan)
            first = last
        return list(enumerate(parts))

    def _add_block(
        self,
        parts: list[_Part],
        found: _Windows,
        closes: Sequence[Close],
        numbers: slice,
        bases: list[int],
        plan: _Plan,
    ) -> bool:
        """The tasks of the closes `numbers` (of one plan), each part's as columns; False,
        adding nothing, when a series has no candle or a symbol no ticker at one of them."""
        windows = {}
        for symbol, _, intervals in plan:
            for interval in intervals:
                columns = found.columns(symbol, interval, numbers)
                if columns is None:
                    return False
                windows[(symbol, interval)] = columns
        symbols = [symbol for symbol, _, _ in plan]
        rows = []
        for close in closes[numbers]:
            row = _ticker_rows(close.tickers, symbols)
            if row is None:
                return False
            rows.append(row)
        tickers = np.stack(rows)
        count = len(tickers)
        job_bases = np.array(bases[numbers], dtype=np.int64)
        of_slot: dict[int, list[int]] = {}
        for entry, (symbol, _, _) in enumerate(plan):
            of_slot.setdefault(self._slot(symbol), []).append(entry)
        for slot, entries in of_slot.items():
            part = parts[slot]
            read_intervals = sorted({i for entry in entries for i in plan[entry][2]})
            positions = [position for entry in entries for position in plan[entry][1]]
            read = [(plan[entry][0], i) for entry in entries for i in plan[entry][2]]
            for key in read:
                if key not in part.snapshots:
                    part.snapshots[key] = found.snapshots[key]
            part.tasks.add_block(
                [plan[entry][0] for entry in entries],
                read_intervals,
                TaskBlock(
                    np.tile(np.arange(len(entries)), count),
                    tickers[:, entries, :].reshape(-1, 3),
                    np.tile([len(plan[entry][1]) for entry in entries], count),
                    (np.array(positions, dtype=np.int64) + job_bases[:, None]).ravel(),
                    np.tile([len(plan[entry][2]) for entry in entries], count),
                    np.tile([read_intervals.index(i) for _, i in read], count),
                    np.column_stack([windows[key][0] for key in read]).ravel(),
                    np.column_stack([windows[key][1] for key in read]).ravel(),
                ),
            )
        return True

    def _add_close(
        self,
        parts: list[_Part],
        found: _Windows,
        close: Close,
        number: int,
        base: int,
        plan: _Plan,
    ) -> None:
        """The tasks of one close, symbol by symbol."""
        for symbol, positions, intervals in plan:
            windows = [found.of(number, symbol, interval) for interval in intervals]
            if None in windows:  # a series with no candle yet: the jobs reading it wait
                missing = {i for i, w in zip(intervals, windows, strict=True) if w is None}
                positions = tuple(p for p in positions if not close.jobs[p].timeframes & missing)
                if not positions:
                    continue
            seen = [(i, w) for i, w in zip(intervals, windows, strict=True) if w is not None]
            part = parts[self._slot(symbol)]
            for interval, _ in seen:
                if (symbol, interval) not in part.snapshots:
                    part.snapshots[(symbol, interval)] = found.snapshots[(symbol, interval)]
            ticker = close.tickers.get(symbol)
            if ticker is None:
                first = close.jobs[positions[0]].interval
                end = next(window[2] for interval, window in seen if interval == first)
                last = found.snapshots[(symbol, first)].close[end - 1]
                ticker = TickerValues(float(last), math.nan, math.nan)
            part.tasks.add(
                symbol,
                ticker,
                [base + position for position in positions],
                [(interval, until, rows) for interval, (until, rows, _) in seen],
            )

    def _batch(
        self,
        worker: WorkerProcess,
        part: _Part,
        source_id: str,
        specs: tuple[JobSpec, ...],
        skip: Iterable[int],
    ) -> Batch:
        updates = []
        for (symbol, interval), candles in part.snapshots.items():
            sent = worker.sent.get((source_id, symbol, interval), -1)
            start = int(candles.time.searchsorted(sent, side="right"))
            if start < len(candles.time):
                values = np.empty((5, len(candles.time) - start))
                for row, column in enumerate(
                    (candles.open, candles.high, candles.low, candles.close, candles.volume)
                ):
                    values[row] = column[start:]
                updates.append(
                    SeriesUpdate(symbol, interval, candles.time[start:], values, len(candles.time))
                )
        return Batch(source_id, tuple(updates), specs, part.columns.without(set(skip)))

    async def _run_part(
        self, slot: int, part: _Part, source_id: str, specs: tuple[JobSpec, ...]
    ) -> _PartResult:
        """Run one worker's share; on a crash blame the job, replace the worker, go again.

        A worker that broke the protocol or was lost outside any filter gets one more try on
        a fresh worker, then the part is lost: no trader is to blame for that.
        """
        crashed: dict[int, Crash] = {}
        unexplained = replaced = rows_sent = 0
        while True:
            worker = self._workers[slot]
            batch = self._batch(worker, part, source_id, specs, crashed)
            rows_sent += sum(len(update.time) for update in batch.updates)
            answer = await worker.call(batch)
            if isinstance(answer, Answer):
                for (symbol, interval), candles in part.snapshots.items():
                    key = (source_id, symbol, interval)
                    worker.sent[key] = max(int(candles.time[-1]), worker.sent.get(key, -1))
                self._note_isolation(worker)
                return _PartResult(answer.results, crashed, None, replaced, rows_sent)
            self._workers[slot] = self._spawn()
            replaced += 1
            if isinstance(answer, Crash) and answer.job_index >= 0:
                crashed[answer.job_index] = answer
                continue
            kind = "lost outside any filter" if isinstance(answer, Crash) else "broke the protocol"
            log.warning("filter worker %s: %s", kind, answer.reason)
            unexplained += 1
            if unexplained > 1:
                lost = f"filter worker {kind}: {answer.reason}"
                return _PartResult((), crashed, lost, replaced, rows_sent)

    def _note_isolation(self, worker: WorkerProcess) -> None:
        if worker.ready is not None and worker.ready.isolation != self.isolation:
            self.isolation = worker.ready.isolation
            log.info("filter workers isolated by: %s", ", ".join(self.isolation))


def _each(workers: Iterable[WorkerProcess], action: Callable[[WorkerProcess], None]) -> None:
    for worker in workers:
        action(worker)


_Shape = tuple[tuple[tuple[str, ...], frozenset[str]], ...]  # each job's symbols, timeframes
_Plan = tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...]
PLANS_KEPT = 64


def _ticker_rows(tickers: Mapping[str, TickerValues], symbols: list[str]) -> np.ndarray | None:
    """The symbols' ticker figures as rows; None when one has no ticker."""
    if isinstance(tickers, TickerRows):
        return tickers.rows(symbols)
    if any(symbol not in tickers for symbol in symbols):
        return None
    figures = [tickers[s] for s in symbols]
    return np.array([(t.last, t.change_pct, t.quote_volume) for t in figures], dtype=np.float64)


@functools.lru_cache(maxsize=PLANS_KEPT)
def _plan(shape: _Shape) -> _Plan:
    """Each symbol of a close's jobs (their symbols and timeframes: `shape`), sorted, with
    the jobs that screen it (their positions) and every interval they read: the same for
    every close of a batch screened ahead, and for every batch of a backtest."""
    by_symbol: dict[str, list[int]] = {}
    for position, (symbols, _) in enumerate(shape):
        for symbol in symbols:
            by_symbol.setdefault(symbol, []).append(position)
    plan = []
    for symbol in sorted(by_symbol):
        intervals: dict[str, None] = {}
        for position in by_symbol[symbol]:
            intervals |= dict.fromkeys(shape[position][1])
        plan.append((symbol, tuple(by_symbol[symbol]), tuple(intervals)))
    return tuple(plan)


def _ends(times: np.ndarray, interval: str, moments: Sequence[int | None]) -> np.ndarray:
    """Where the snapshot (its open times) ends for a close at each of `moments`: after the
    candles closed by then (all of it for None)."""
    opened_by = [2**62 if at is None else at - interval_ms(interval) for at in moments]
    return np.searchsorted(times, opened_by, side="right").astype(np.int64)


def _merge(
    jobs: Sequence[FilterJob], parts: Sequence[_Part], results: Sequence[_PartResult]
) -> list[FilterOutcome]:
    """One outcome per job from every part: a failure wins, then a loss, then the matches."""
    matches: list[list[FilterMatch]] = [[] for _ in jobs]
    failures: list[str | None] = [None] * len(jobs)
    lost: list[str | None] = [None] * len(jobs)
    evaluated = [0] * len(jobs)
    spent = [0.0] * len(jobs)
    for part, result in zip(parts, results, strict=True):
        seen: dict[tuple[int, str], tuple[str, int, float]] = {}
        for index, crash in result.crashed.items():
            failures[index] = failures[index] or crash.reason
            spent[index] += crash.spent
        if result.lost is not None:
            for index in part.columns.job_indexes():
                lost[index] = lost[index] or f"the sandbox lost this run: {result.lost}"
        for index, job_result in enumerate(result.results):
            if job_result.failure is not None:
                failures[index] = failures[index] or sanitize(job_result.failure)
            evaluated[index] += job_result.evaluated
            spent[index] += job_result.spent
            interval = jobs[index].interval
            for match in job_result.matches:
                where = seen.get((match.task, interval))
                if where is None:  # the task's first match at this interval
                    where = seen[(match.task, interval)] = _where(part, match.task, interval)
                symbol, until, price = where
                matches[index].append(
                    FilterMatch(symbol, match.side, match.score, price, until, match.indicators)
                )
    return [
        FilterOutcome(
            job.key,
            () if failures[index] or lost[index] else tuple(matches[index]),
            failures[index],
            evaluated[index],
            spent[index],
            None if failures[index] else lost[index],
        )
        for index, job in enumerate(jobs)
    ]


def _where(part: _Part, index: int, interval: str) -> tuple[str, int, float]:
    """What a match of task `index` of `part` on its `interval` series is about: the
    symbol, the open time of the last candle it saw, and that candle's close; the same for
    every job that matched the task."""
    task = part.columns[index]
    candles = part.snapshots[(task.symbol, interval)]
    until = next(time for each, time, _ in task.windows if each == interval)
    last = int(candles.time.searchsorted(until, side="right")) - 1
    return task.symbol, until, float(candles.close[last])
