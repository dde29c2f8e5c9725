"""The tasks of a batch (one symbol at one close, with the jobs that screen it), as columns.

A live close is a few hundred tasks per worker; a backtest's batch of closes screened ahead
is thousands (24 closes of 50 pairs: 1,200 per message, 360,000 in a year of replay). As
objects, each task was built, encoded to a JSON list, decoded and built again one by one,
which cost more than evaluating the filters. As columns (numpy arrays of ints and floats),
a batch's tasks are built from plain lists, travel as a few raw arrays beside the candle
rows, and are decoded in one piece; a `Task` is made only where one is read (the worker's
loop, a match's symbol and window).

Columns, for `n` tasks: `symbol` (an index into `symbols`) and `tickers` (n x 3: last,
24 h change, 24 h quote volume), the jobs of task `i` at `jobs[job_starts[i]:
job_starts[i + 1]]`, its windows at `window_starts[i]:window_starts[i + 1]` of
`window_interval` (an index into `intervals`), `window_until` (the open time of the last
candle it sees) and `window_rows` (how many candles up to it).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from app.engine.sandbox.jobs import TickerValues

COLUMNS = (
    "symbol",
    "tickers",
    "job_starts",
    "jobs",
    "window_starts",
    "window_interval",
    "window_until",
    "window_rows",
)
FLOAT_COLUMNS = frozenset({"tickers"})


class Task(NamedTuple):
    """One symbol to screen, with its ticker, by the jobs at these indexes of the batch.

    `windows` says what the task sees of each of the symbol's series: (interval, the open
    time of its last candle, how many candles up to it), the engine's snapshot at the task's
    close. A replica may hold later candles (a backtest ships the candles of the closes to
    come in one batch); none of them is in the task's view. Empty: the replicas as held."""

    symbol: str
    ticker: TickerValues
    jobs: tuple[int, ...]
    windows: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Tasks:
    symbols: tuple[str, ...]
    intervals: tuple[str, ...]
    symbol: np.ndarray
    tickers: np.ndarray
    job_starts: np.ndarray
    jobs: np.ndarray
    window_starts: np.ndarray
    window_interval: np.ndarray
    window_until: np.ndarray
    window_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)

    def __getitem__(self, index: int) -> Task:
        if not 0 <= index < len(self):
            raise IndexError(index)
        jobs = self.jobs[self.job_starts[index] : self.job_starts[index + 1]]
        windows = range(int(self.window_starts[index]), int(self.window_starts[index + 1]))
        return Task(
            self.symbols[int(self.symbol[index])],
            TickerValues(*self.tickers[index].tolist()),
            tuple(jobs.tolist()),
            tuple(
                (
                    self.intervals[int(self.window_interval[k])],
                    int(self.window_until[k]),
                    int(self.window_rows[k]),
                )
                for k in windows
            ),
        )

    def __iter__(self) -> Iterator[Task]:
        symbols, intervals = self.symbols, self.intervals
        symbol, tickers = self.symbol.tolist(), self.tickers.tolist()
        job_starts, jobs = self.job_starts.tolist(), self.jobs.tolist()
        window_starts, window_interval = self.window_starts.tolist(), self.window_interval.tolist()
        until, rows = self.window_until.tolist(), self.window_rows.tolist()
        for i in range(len(symbol)):
            yield Task(
                symbols[symbol[i]],
                TickerValues(*tickers[i]),
                tuple(jobs[job_starts[i] : job_starts[i + 1]]),
                tuple(
                    (intervals[window_interval[k]], until[k], rows[k])
                    for k in range(window_starts[i], window_starts[i + 1])
                ),
            )

    def arrays(self) -> list[np.ndarray]:
        """The columns in `COLUMNS` order, as the wire carries them."""
        return [getattr(self, name) for name in COLUMNS]

    def jobs_of(self) -> list[list[int]]:
        """The jobs that screen each task, as plain lists: an answer's every match is
        checked against them, and a numpy call per match cost more than its other checks."""
        starts, jobs = self.job_starts.tolist(), self.jobs.tolist()
        return [jobs[start:end] for start, end in itertools.pairwise(starts)]

    def screened(self, jobs: int) -> list[int]:
        """How many tasks each of `jobs` jobs screens."""
        return np.bincount(self.jobs, minlength=jobs).tolist()[:jobs]

    def job_indexes(self) -> set[int]:
        """Every job some task is screened by."""
        return set(np.unique(self.jobs).tolist())

    def without(self, skipped: Collection[int]) -> Tasks:
        """The same tasks, none screened by the `skipped` jobs any more (windows kept)."""
        if not skipped:
            return self
        keep = ~np.isin(self.jobs, list(skipped))
        kept = np.concatenate(([0], np.cumsum(keep)))
        return Tasks(
            self.symbols,
            self.intervals,
            self.symbol,
            self.tickers,
            kept[self.job_starts],
            self.jobs[keep],
            self.window_starts,
            self.window_interval,
            self.window_until,
            self.window_rows,
        )


class TaskBuilder:
    """Tasks added one by one as plain values, or many at once as columns (the closes of a
    batch screened ahead), made one set of columns at the end, in the order added."""

    def __init__(self) -> None:
        self._symbols: dict[str, int] = {}
        self._intervals: dict[str, int] = {}
        self._blocks: list[TaskBlock] = []
        self._count = 0
        self._symbol: list[int] = []
        self._tickers: list[tuple[float, float, float]] = []
        self._job_counts: list[int] = []
        self._jobs: list[int] = []
        self._window_counts: list[int] = []
        self._window_interval: list[int] = []
        self._window_until: list[int] = []
        self._window_rows: list[int] = []

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        symbol: str,
        ticker: TickerValues,
        jobs: Sequence[int],
        windows: Iterable[tuple[str, int, int]] = (),
    ) -> None:
        self._count += 1
        self._symbol.append(self._symbols.setdefault(symbol, len(self._symbols)))
        self._tickers.append((ticker.last, ticker.change_pct, ticker.quote_volume))
        self._job_counts.append(len(jobs))
        self._jobs.extend(jobs)
        intervals = self._intervals
        count = 0
        for interval, until, rows in windows:
            self._window_interval.append(intervals.setdefault(interval, len(intervals)))
            self._window_until.append(until)
            self._window_rows.append(rows)
            count += 1
        self._window_counts.append(count)

    def add_block(
        self,
        symbols: Sequence[str],
        intervals: Sequence[str],
        block: TaskBlock,
    ) -> None:
        """Many tasks at once: `block`'s columns, its symbols and window intervals indexes
        into `symbols` and `intervals`."""
        self._flush()
        symbol_ids = np.array([self._symbols.setdefault(s, len(self._symbols)) for s in symbols])
        known = self._intervals
        interval_ids = np.array([known.setdefault(i, len(known)) for i in intervals], np.int64)
        self._blocks.append(
            block._replace(
                symbol=symbol_ids[block.symbol],
                window_interval=interval_ids[block.window_interval],
            )
        )
        self._count += len(block.symbol)

    def _flush(self) -> None:
        if not self._symbol:
            return
        self._blocks.append(
            TaskBlock(
                _ints(self._symbol),
                np.array(self._tickers, dtype=np.float64).reshape(-1, 3),
                _ints(self._job_counts),
                _ints(self._jobs),
                _ints(self._window_counts),
                _ints(self._window_interval),
                _ints(self._window_until),
                _ints(self._window_rows),
            )
        )
        for column in (
            self._symbol,
            self._tickers,
            self._job_counts,
            self._jobs,
            self._window_counts,
            self._window_interval,
            self._window_until,
            self._window_rows,
        ):
            column.clear()

    def build(self) -> Tasks:
        self._flush()
        blocks = self._blocks or [TaskBlock(*(_ints([]) for _ in TaskBlock._fields))]
        columns = TaskBlock(*(np.concatenate(column) for column in zip(*blocks, strict=True)))
        return Tasks(
            tuple(self._symbols),
            tuple(self._intervals),
            columns.symbol,
            columns.tickers.reshape(-1, 3),
            _starts(columns.job_counts),
            columns.jobs,
            _starts(columns.window_counts),
            columns.window_interval,
            columns.window_until,
            columns.window_rows,
        )


class TaskBlock(NamedTuple):
    """Columns of tasks, with how many jobs and windows each has (not where they start)."""

    symbol: np.ndarray
    tickers: np.ndarray
    job_counts: np.ndarray
    jobs: np.ndarray
    window_counts: np.ndarray
    window_interval: np.ndarray
    window_until: np.ndarray
    window_rows: np.ndarray


def _ints(values: Sequence[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
