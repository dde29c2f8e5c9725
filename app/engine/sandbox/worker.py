"""A worker process: `python -m app.engine.sandbox.worker CONFIG` runs filters until EOF.

It starts, imports and warms up numpy and the indicators, isolates itself (see
`isolation`), says `Ready`, then answers each `Batch` with one `Answer`:

- its replica of each candle source is updated with the rows the engine sent (only rows
  newer than what it holds travel), and the memory limit is re-armed above the replicas,
  so a backtest's candles never eat into a filter's memory;
- every job's filter is compiled once per worker (cached by code);
- symbol by symbol, each indicator is computed once and shared by every job that reads it;
- each evaluation runs under an interval timer (`eval_seconds`, and within the job's budget
  per candle close), with the job index and a heartbeat in the progress memfd, so the engine
  can kill a worker stuck in C and blame the right job;
- each evaluation starts clean: the previous one's return value and reads are released, and
  an evaluation that runs out of memory gets one more try after a full garbage collection,
  so garbage one trader left (say, a reference cycle holding a huge list) never makes the
  next trader fail;
- what it holds once warmed up is frozen out of the garbage collector's passes
  (`app.core.heap`), and a full collection runs after each answer is sent, so that a
  collection seldom falls inside a batch, where its pause would delay the screen.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import resource
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from app.core.heap import freeze_long_lived
from app.domain.enums import Side
from app.engine.sandbox import wire
from app.engine.sandbox.isolation import isolate
from app.engine.sandbox.jobs import SandboxLimits
from app.engine.sandbox.messages import (
    MEMORY_EXCEEDED,
    Abort,
    Answer,
    Batch,
    Forget,
    JobResult,
    JobSpec,
    MatchRecord,
    Ready,
    SeriesUpdate,
    WorkerConfig,
    answer_message,
    decode_engine_message,
    ready_message,
)
from app.engine.sandbox.namespace import (
    TIME_EXCEEDED,
    FilterCandles,
    FilterTimeout,
    Indicators,
    compile_filter,
    describe,
    interpret,
    sanitize,
    warm_up,
)
from app.engine.sandbox.progress import BEAT, JOB, progress_view
from app.engine.sandbox.tasks import Task

MAX_COMPILED = 1000

Interpreted = tuple[bool, Side, float | None]


class Alarm:
    """SIGALRM raises only while a filter runs past its deadline, so the worker's own code is
    never interrupted.

    Setting the timer is a system call, two per evaluation were a sixth of a worker's time
    in a backtest, so it is set only when no pending one fires by the deadline of the
    evaluation starting. Deadlines only move on (each evaluation starts after the last), so
    a pending timer fires early, if anything: it then sets itself again for what is left of
    the running evaluation's time, or does nothing between evaluations."""

    armed = False
    deadline = 0.0  # when the running evaluation's time is up (perf_counter)
    fires_at = math.inf  # when the pending timer fires; inf: none is pending

    @classmethod
    def start(cls, started: float, allowed: float) -> None:
        """An evaluation that began at `started` (perf_counter) may run `allowed` seconds."""
        cls.deadline = started + allowed
        if cls.fires_at > cls.deadline:
            signal.setitimer(signal.ITIMER_REAL, allowed)
            cls.fires_at = cls.deadline
        cls.armed = True

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.fires_at = math.inf
        if not cls.armed:
            return
        left = cls.deadline - time.perf_counter()
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)
            cls.fires_at = cls.deadline
            return
        cls.armed = False
        raise FilterTimeout


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class Replica:
    """The worker's copy of one series: its own contiguous, read-only arrays (and the open
    times as a list, which a window is found in faster than in the array)."""

    __slots__ = ("candles", "time", "times", "values")

    def __init__(self, time_: np.ndarray, values: np.ndarray) -> None:
        self.time = _readonly(np.array(time_))
        self.times: list[int] = self.time.tolist()
        self.values = _readonly(np.array(values))
        self.candles = FilterCandles(self.time, self.values)

    @property
    def nbytes(self) -> int:
        return int(self.time.nbytes + self.values.nbytes)

    def window(self, until: int, rows: int) -> FilterCandles:
        """The last `rows` candles that opened by `until`: all of the replica, or a view of
        that part of it (read-only, as the replica is). A filter reaches no candle outside
        the view: indexing and every array method the language allows stay within its
        bounds, and the attributes that lead to the memory behind it (`base`, `data`,
        `ctypes`, `__array_interface__`) are not in the language. Copies of the window
        (a quarter of a worker's time in a backtest) would guard nothing more: a filter
        that escaped the language could read every replica the worker holds anyway."""
        end = bisect.bisect_right(self.times, until)
        start = end - rows if end > rows else 0
        if start == 0 and end == len(self.times):
            return self.candles
        return FilterCandles(self.time[start:end], self.values[:, start:end])

    def merged(self, update: SeriesUpdate) -> Replica:
        """The rows before the update's first (the replica's times are sorted), then the
        update's, the last `length` of them."""
        keep = int(self.time.searchsorted(update.time[0], side="left"))
        start = max(0, keep + len(update.time) - update.length)
        return Replica(
            np.concatenate((self.time[start:keep], update.time))[-update.length :],
            np.concatenate((self.values[:, start:keep], update.values), axis=1)[
                :, -update.length :
            ],
        )


def run_time_exceeded(budget: float) -> str:
    return f"run time limit exceeded ({budget:g} s per candle close)"


class JobRun:
    """One job's progress within a batch: what it matched, how it failed, the time it used."""

    __slots__ = ("budget", "evaluated", "failure", "matches", "spent")

    def __init__(self, budget: float, failure: str | None = None) -> None:
        self.budget = budget
        self.matches: list[MatchRecord] = []
        self.failure = failure
        self.evaluated = 0
        self.spent = 0.0

    def result(self) -> JobResult:
        return JobResult(self.failure, self.evaluated, self.spent, tuple(self.matches))


class WorkerState:
    """The replicas of every candle source, the compiled filters, and the evaluation loop."""

    def __init__(self, progress: memoryview, limits: SandboxLimits, baseline: int) -> None:
        self.progress = progress
        self.limits = limits
        self.baseline = baseline
        self.replicas: dict[str, dict[tuple[str, str], Replica]] = {}
        self.frames: dict[str, dict[str, dict[str, FilterCandles]]] = {}
        self.compiled: dict[str, Callable[..., Any]] = {}
        self.indicators = Indicators()

    def held(self) -> int:
        return sum(len(series) for series in self.replicas.values())

    def forget(self, source: str) -> None:
        self.replicas.pop(source, None)
        self.frames.pop(source, None)

    def compile(self, code: str) -> Callable[..., Any]:
        function = self.compiled.get(code)
        if function is None:
            function = compile_filter(code, self.indicators.namespace)
            if len(self.compiled) >= MAX_COMPILED:
                self.compiled.clear()
            self.compiled[code] = function
        return function

    def update(self, source: str, updates: Sequence[SeriesUpdate]) -> None:
        replicas = self.replicas.setdefault(source, {})
        frames = self.frames.setdefault(source, {})
        for update in updates:
            self.progress[BEAT] += 1
            key = (update.symbol, update.interval)
            replica = replicas.get(key)
            if replica is None:
                replica = Replica(update.time[-update.length :], update.values[:, -update.length :])
            else:
                replica = replica.merged(update)
            replicas[key] = replica
            frames.setdefault(update.symbol, {})[update.interval] = replica.candles

    def limit_memory(self) -> None:
        """Filters may use `memory_bytes` beyond the baseline and the replicas."""
        held = sum(r.nbytes for series in self.replicas.values() for r in series.values())
        limit = self.baseline + held + self.limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

    def run(self, batch: Batch) -> Answer:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.update(batch.source, batch.updates)
        self.limit_memory()
        runs: list[JobRun] = []
        functions: list[Callable[..., Any] | None] = []
        for job in batch.jobs:
            self.progress[BEAT] += 1
            try:
                functions.append(self.compile(job.code))
                runs.append(JobRun(job.budget_seconds))
            except Exception as exc:
                functions.append(None)
                runs.append(JobRun(job.budget_seconds, f"cannot compile: {sanitize(str(exc))}"))
        frames = self.frames.get(batch.source, {})
        replicas = self.replicas.get(batch.source, {})
        for index, task in enumerate(batch.tasks):
            seen = frames.get(task.symbol, {})
            if task.windows:
                symbol = task.symbol
                seen = {}
                for interval, until, rows in task.windows:
                    seen[interval] = replicas[(symbol, interval)].window(until, rows)
            self._screen(index, task, seen, batch.jobs, functions, runs)
        self.indicators.reset({})
        return Answer(tuple(run.result() for run in runs), self.held())

    def _screen(
        self,
        task_index: int,
        task: Task,
        frames: Mapping[str, FilterCandles],
        jobs: Sequence[JobSpec],
        functions: Sequence[Callable[..., Any] | None],
        runs: Sequence[JobRun],
    ) -> None:
        self.indicators.reset(frames)
        timeframes = MappingProxyType(frames)
        reads = self.indicators.reads
        progress = self.progress
        eval_seconds = self.limits.eval_seconds
        clock = time.perf_counter
        for index in task.jobs:
            function, run, job = functions[index], runs[index], jobs[index]
            if function is None or run.failure is not None or not job.timeframes <= frames.keys():
                continue
            allowed = min(eval_seconds, run.budget - run.spent)
            if allowed <= 0:
                run.failure = run_time_exceeded(run.budget)
                continue
            arguments = (timeframes, frames[job.interval], task.ticker, job.params, task.symbol)
            progress[JOB] = index
            progress[BEAT] += 1
            started = clock()
            result, failure = _evaluate(function, arguments, started, allowed)
            if failure == MEMORY_EXCEEDED:
                gc.collect()
                reads.clear()
                retried = clock()
                remaining = allowed - (retried - started)
                if remaining > 0:
                    result, failure = _evaluate(function, arguments, retried, remaining)
            run.spent += clock() - started
            run.evaluated += 1
            progress[JOB] = -1
            if failure is not None:
                budget_limited = allowed < eval_seconds
                run.failure = (
                    run_time_exceeded(run.budget)
                    if failure == TIME_EXCEEDED and budget_limited
                    else failure
                )
            elif result is not None and result[0]:
                readings = self.indicators.readings()
                run.matches.append(MatchRecord(task_index, result[1], result[2], readings))
            reads.clear()


def _evaluate(
    function: Callable[..., Any], arguments: tuple[Any, ...], started: float, allowed: float
) -> tuple[Interpreted | None, str | None]:
    """Run one evaluation under the timer: its reading, or why it failed. Nothing it built
    outlives this call (no exception, traceback or return value is kept)."""
    try:
        Alarm.start(started, allowed)
        interpreted = interpret(function(*arguments))
        Alarm.armed = False
        return interpreted, None
    except BaseException as exc:  # untrusted code: anything it raises is its failure
        Alarm.armed = False
        return None, describe(exc)


@dataclass(slots=True)
class Runtime:
    """A started worker before it serves: its socket, counters, limits and memory baseline."""

    sock: socket.socket
    progress: memoryview
    limits: SandboxLimits
    baseline: int


def boot(config: WorkerConfig) -> Runtime:
    """Everything that needs files or imports, done before the worker isolates itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, Alarm.handler)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    warm_up()
    if config.limits.niceness:
        os.nice(config.limits.niceness)
    with open("/proc/self/statm") as statm:
        baseline = int(statm.read().split()[0]) * resource.getpagesize()
    progress = progress_view(config.progress_fd)
    os.close(config.progress_fd)  # the mapping keeps its own descriptor
    freeze_long_lived()
    return Runtime(socket.socket(fileno=config.socket_fd), progress, config.limits, baseline)


def serve(runtime: Runtime, isolation: Sequence[str]) -> None:
    """Say ready, then answer batches until the engine closes the socket."""
    state = WorkerState(runtime.progress, runtime.limits, runtime.baseline)
    runtime.sock.sendall(wire.frame(ready_message(Ready(tuple(isolation)))))
    while True:
        try:
            message = decode_engine_message(*wire.read_frame(runtime.sock))
        except (EOFError, OSError):
            return
        if isinstance(message, Forget):
            state.forget(message.source)
            continue
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = int(used.ru_utime + used.ru_stime) + runtime.limits.batch_cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
        answer: Answer | Abort
        try:
            answer = state.run(message)
        except MemoryError:
            answer = Abort(MEMORY_EXCEEDED)
        runtime.sock.sendall(wire.frame(answer_message(answer)))
        gc.collect()  # between batches, where a pause delays no screen


def main(argument: str) -> None:
    config = WorkerConfig.from_argument(argument)
    runtime = boot(config)
    serve(runtime, isolate(config.empty_root, config.user))


if __name__ == "__main__":
    main(sys.argv[1])
