"""Worker processes that run untrusted filter code, many (trader, symbol) evaluations at once.

Why processes: a filter that loops in C (`10**10**10`), exhausts memory or crashes must not
stall or kill the engine. Each worker is a `python -m app.engine.sandbox` process (so no
caller needs a main-module guard) with an address-space limit (`RLIMIT_AS`) and a CPU limit
per batch (`RLIMIT_CPU`, SIGXCPU kills it). Inside it, every evaluation runs under an
interval timer that interrupts Python-level loops, and each trader has a time budget per
candle close; a worker whose progress counter (shared memory) stops moving for longer than
that (stuck in C) is killed by the engine, the evaluation it was running is blamed on its
trader, and a fresh worker takes its place and finishes the batch without that trader.

Why it is fast: symbols are split between workers, and each worker keeps its own replica of
its symbols' candles, updated incrementally (only rows newer than what it already holds
travel through the pipe). One message per worker per candle close carries all the traders'
evaluations of its symbols; each symbol's indicator computations are memoised and shared
by every trader that screens it; each filter is compiled once per worker.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import mmap
import multiprocessing.connection
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from app.domain.enums import Side
from app.domain.filter_validation import (
    CANDLE_FIELDS,
    FUNCTION_NAME,
    SAFE_BUILTIN_NAMES,
    filter_module,
    parse_filter,
)
from app.domain.indicators import INDICATORS, CandleArrays, IndicatorSpec

MiB = 1024 * 1024
PROGRESS_BYTES = 16
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
MAX_COMPILED = 1000
POLL_SECONDS = 0.02
STARTUP_SECONDS = 60.0
READY = "ready"
ENV_PREFIX = "TRADERS_"


class CandleSource(Protocol):
    def candles(self, symbol: str, interval: str) -> CandleArrays: ...


@dataclass(frozen=True, slots=True)
class TickerValues:
    """What a filter sees as `ticker`: last price, 24 h change in percent, 24 h quote volume."""

    last: float
    change_pct: float
    quote_volume: float


@dataclass(frozen=True, slots=True)
class FilterJob:
    """One trader's filter to run over `symbols`; `key` names the trader in the outcome."""

    key: str
    code: str
    interval: str
    symbols: tuple[str, ...]
    timeframes: frozenset[str]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FilterMatch:
    symbol: str
    side: Side
    score: float | None
    price: float
    candle_time: int
    indicators: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """A trader's run over its symbols: the matches, or why it failed (it stops at the first)."""

    key: str
    matches: tuple[FilterMatch, ...] = ()
    failure: str | None = None
    evaluated: int = 0


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """`eval_seconds` bounds one symbol's evaluation, `run_seconds` a trader's time per candle
    close in one worker; a worker making no progress for `eval_seconds + grace_seconds` is
    killed; `memory_bytes` is the address space a worker may add to its baseline."""

    eval_seconds: float = 0.5
    run_seconds: float = 5.0
    grace_seconds: float = 1.0
    batch_cpu_seconds: int = 60
    memory_bytes: int = 512 * MiB


class SandboxError(RuntimeError):
    """The sandbox itself failed (not a filter): the run is lost, no trader is blamed."""


# ---------------------------------------------------------------- inside the worker process


class FilterTimeout(Exception):
    """Raised into a filter by SIGALRM when its evaluation runs out of time."""


class _Alarm:
    """SIGALRM raises only while a filter runs, so the engine's own code is never interrupted."""

    armed = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        if cls.armed:
            cls.armed = False
            raise FilterTimeout


class _Candles:
    __slots__ = CANDLE_FIELDS

    def __init__(self, time_: np.ndarray, values: np.ndarray) -> None:
        self.time = time_
        self.open, self.high, self.low, self.close, self.volume = values


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class _Replica:
    """The worker's copy of one series: contiguous, read-only, at most `length` rows."""

    __slots__ = ("candles", "time", "values")

    def __init__(self, time_: np.ndarray, values: np.ndarray) -> None:
        self.time = _readonly(np.ascontiguousarray(time_))
        self.values = _readonly(np.ascontiguousarray(values))
        self.candles = _Candles(self.time, self.values)

    def merged(self, time_: np.ndarray, values: np.ndarray, length: int) -> _Replica:
        keep = self.time < time_[0]
        return _Replica(
            np.concatenate((self.time[keep], time_))[-length:],
            np.concatenate((self.values[:, keep], values), axis=1)[:, -length:],
        )


class IndicatorOutputs:
    """Several outputs of one indicator, read as attributes: `macd(candles).hist`."""

    def __init__(self, outputs: Mapping[str, np.ndarray]) -> None:
        self.__dict__.update(outputs)


def crossed_above(a: Any, b: Any) -> bool:
    """Whether series `a` went from at or below `b` to above it on the last candle."""
    a0, a1 = a[-2], a[-1]
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    return bool(a0 <= b0 and a1 > b1)


def crossed_below(a: Any, b: Any) -> bool:
    """Whether series `a` went from at or above `b` to below it on the last candle."""
    a0, a1 = a[-2], a[-1]
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    return bool(a0 >= b0 and a1 < b1)


PLAIN_HELPERS: dict[str, Any] = {
    "crossed_above": crossed_above,
    "crossed_below": crossed_below,
    "isnan": math.isnan,
    "isfinite": math.isfinite,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "floor": math.floor,
    "ceil": math.ceil,
    "nan": math.nan,
}


def _readonly_result(outputs: Mapping[str, np.ndarray]) -> Any:
    for array in outputs.values():
        array.flags.writeable = False
    if len(outputs) == 1 and "value" in outputs:
        return outputs["value"]
    return IndicatorOutputs(outputs)


def _last_values(outputs: Mapping[str, np.ndarray]) -> Any:
    """What a signal records of an indicator it read: the latest value of each output."""
    last = {name: _json_float(array[-1]) if len(array) else None for name, array in outputs.items()}
    return last["value"] if len(last) == 1 and "value" in last else last


class _Indicators:
    """Indicator helpers for one symbol at a time, memoised across every trader that screens
    it, and the values the current filter read (recorded into its signal)."""

    def __init__(self) -> None:
        self.memo: dict[tuple[Any, ...], tuple[Any, str, Any]] = {}
        self.intervals: dict[int, str] = {}
        self.reads: dict[str, Any] = {}
        self.namespace: dict[str, Any] = {
            **PLAIN_HELPERS,
            **{name: self._helper(spec) for name, spec in INDICATORS.items()},
        }

    def reset(self, frames: Mapping[str, _Candles]) -> None:
        self.memo.clear()
        self.intervals = {id(candles): interval for interval, candles in frames.items()}

    def _helper(self, spec: IndicatorSpec) -> Callable[..., Any]:
        names = [param.name for param in spec.params]

        def indicator(candles: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) > len(names):
                raise TypeError(f"{spec.name} takes at most {len(names)} parameters")
            bound = spec.bind({**dict(zip(names, args, strict=False)), **kwargs})
            interval = self.intervals.get(id(candles))
            if interval is None:
                raise TypeError(f"{spec.name} takes candles, e.g. {spec.name}(candles)")
            key = (spec.name, interval, *bound.values())
            hit = self.memo.get(key)
            if hit is None:
                outputs = spec.compute(candles, **bound)
                label = f"{interval}.{spec.name}({','.join(str(v) for v in bound.values())})"
                hit = self.memo[key] = (_readonly_result(outputs), label, _last_values(outputs))
            self.reads[hit[1]] = hit[2]
            return hit[0]

        indicator.__name__ = spec.name
        return indicator


def _json_float(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _interpret(result: Any) -> tuple[bool, Side, float | None]:
    """A filter returns a truth value, or `(matched, side)`, or `(matched, side, score)`."""
    if isinstance(result, tuple | list):
        if not 1 <= len(result) <= 3:
            raise ValueError("return a truth value, (matched, side) or (matched, side, score)")
        matched = bool(result[0])
        side = Side(str(result[1])) if len(result) > 1 else Side.LONG
        score = _json_float(result[2]) if len(result) > 2 and result[2] is not None else None
        return matched, side, score
    return bool(result), Side.LONG, None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FilterTimeout):
        return "time limit exceeded"
    if isinstance(exc, MemoryError):
        return "memory limit exceeded"
    frame = next(
        (f for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == "<filter>"),
        None,
    )
    where = ""
    if frame is not None:
        column = f", column {frame.colno + 1}" if frame.colno is not None else ""
        where = f"line {frame.lineno}{column}: "
    return f"{where}{type(exc).__name__}: {exc}"[:500]


_JobSpec = tuple[str, str, str, frozenset[str], Mapping[str, Any]]
_Result = tuple[list[tuple[Any, ...]], str | None, int]


class _JobRun:
    """One job's progress within a batch: what it matched, how it failed, the time it used."""

    __slots__ = ("evaluated", "failure", "matches", "spent")

    def __init__(self, failure: str | None = None) -> None:
        self.matches: list[tuple[Any, ...]] = []
        self.failure = failure
        self.evaluated = 0
        self.spent = 0.0

    def result(self) -> _Result:
        return self.matches, self.failure, self.evaluated


class _WorkerState:
    def __init__(self, progress: Any, limits: SandboxLimits) -> None:
        self.progress = progress
        self.limits = limits
        self.frames: dict[str, dict[str, _Candles]] = {}
        self.series: dict[tuple[str, str], _Replica] = {}
        self.compiled: dict[str, Callable[..., Any]] = {}
        self.indicators = _Indicators()

    def compile(self, code: str) -> Callable[..., Any]:
        function = self.compiled.get(code)
        if function is None:
            parse_filter(code)
            namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, **self.indicators.namespace}
            exec(compile(filter_module(code), "<filter>", "exec"), namespace)
            function = namespace[FUNCTION_NAME]
            if len(self.compiled) >= MAX_COMPILED:
                self.compiled.clear()
            self.compiled[code] = function
        return function

    def update(self, updates: Iterable[tuple[str, str, np.ndarray, np.ndarray, int]]) -> None:
        for symbol, interval, time_, values, length in updates:
            self.progress[1] += 1
            replica = self.series.get((symbol, interval))
            if replica is None:
                replica = _Replica(time_[-length:], values[:, -length:])
            else:
                replica = replica.merged(time_, values, length)
            self.series[(symbol, interval)] = replica
            self.frames.setdefault(symbol, {})[interval] = replica.candles

    def run(self, batch: dict[str, Any]) -> list[_Result]:
        self.update(batch["updates"])
        jobs: list[_JobSpec] = [
            (key, code, interval, timeframes, MappingProxyType(params))
            for key, code, interval, timeframes, params in batch["jobs"]
        ]
        runs: list[_JobRun] = []
        functions: list[Callable[..., Any] | None] = []
        for _, code, *_ in jobs:
            self.progress[1] += 1
            try:
                functions.append(self.compile(code))
                runs.append(_JobRun())
            except Exception as exc:
                functions.append(None)
                runs.append(_JobRun(f"cannot compile: {exc}"))
        for symbol, ticker, job_indexes in batch["tasks"]:
            self._screen_symbol(symbol, TickerValues(*ticker), job_indexes, jobs, functions, runs)
        return [run.result() for run in runs]

    def _screen_symbol(
        self,
        symbol: str,
        ticker: TickerValues,
        job_indexes: Sequence[int],
        jobs: Sequence[_JobSpec],
        functions: list[Callable[..., Any] | None],
        runs: list[_JobRun],
    ) -> None:
        frames = self.frames.get(symbol, {})
        self.indicators.reset(frames)
        timeframes = MappingProxyType(frames)
        reads = self.indicators.reads
        progress = self.progress
        eval_seconds, run_seconds = self.limits.eval_seconds, self.limits.run_seconds
        for index in job_indexes:
            function, run = functions[index], runs[index]
            _, _, interval, needed, params = jobs[index]
            if function is None or run.failure is not None or not needed <= frames.keys():
                continue
            progress[0] = index
            progress[1] += 1
            reads.clear()
            candles = frames[interval]
            allowed = min(eval_seconds, run_seconds - run.spent)
            if allowed <= 0:
                run.failure = f"run time limit exceeded ({run_seconds:g} s per candle close)"
                continue
            started = time.perf_counter()
            try:
                _Alarm.armed = True
                signal.setitimer(signal.ITIMER_REAL, allowed)
                returned = function(timeframes, candles, ticker, params, symbol)
                _Alarm.armed = False
                matched, side, score = _interpret(returned)
            except BaseException as exc:  # untrusted code: anything it raises is its failure
                _Alarm.armed = False
                run.failure = _describe(exc)
                if isinstance(exc, FilterTimeout) and allowed < eval_seconds:
                    run.failure = f"run time limit exceeded ({run_seconds:g} s per candle close)"
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                run.evaluated += 1
                run.spent += time.perf_counter() - started
            if matched:
                price, candle_time = float(candles.close[-1]), int(candles.time[-1])
                run.matches.append((symbol, side.value, score, price, candle_time, dict(reads)))


def _worker_main(connection_fd: int, progress_fd: int, limits: SandboxLimits) -> None:
    """Entry point of a worker process: apply limits, then answer batches until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _Alarm.handler)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    connection = multiprocessing.connection.Connection(connection_fd)
    state = _WorkerState(_progress_view(progress_fd), limits)
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + limits.memory_bytes, resource.RLIM_INFINITY))
    connection.send(READY)
    while True:
        try:
            batch = connection.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = int(used.ru_utime + used.ru_stime) + limits.batch_cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
        try:
            answer: Any = state.run(batch)
        except MemoryError:
            answer = "memory limit exceeded"
        connection.send(answer)


def _progress_view(fd: int) -> memoryview:
    """Two int64 shared with the engine: the job being evaluated and an evaluation counter."""
    return memoryview(mmap.mmap(fd, PROGRESS_BYTES)).cast("q")


SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}


# ---------------------------------------------------------------- in the engine process


@dataclass(frozen=True, slots=True)
class _Crash:
    """A worker that died or was killed mid-batch, and the job it was running."""

    job_index: int
    reason: str


def _crash_reason(exitcode: int | None, killed: bool) -> str:
    if killed:
        return "time limit exceeded (worker killed)"
    if exitcode == -signal.SIGXCPU:
        return "CPU limit exceeded (worker killed)"
    if exitcode == -signal.SIGKILL:
        return "worker killed, probably out of memory"
    return f"worker crashed (exit code {exitcode})"


def _worker_environment() -> dict[str, str]:
    """The engine's environment without its settings: the secret key, API keys and database
    credentials stay out of the process that runs untrusted code."""
    return {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}


class _Worker:
    """A worker process started with `python -m`, so that no caller needs a main guard."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        ours, theirs = socket.socketpair()
        progress_fd = os.memfd_create("filter-progress")
        try:
            os.ftruncate(progress_fd, PROGRESS_BYTES)
            arguments = [
                str(theirs.fileno()),
                str(progress_fd),
                repr(limits.eval_seconds),
                repr(limits.run_seconds),
                repr(limits.grace_seconds),
                str(limits.batch_cpu_seconds),
                str(limits.memory_bytes),
            ]
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, *arguments],
                pass_fds=(theirs.fileno(), progress_fd),
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=_worker_environment(),
            )
            self.progress = _progress_view(progress_fd)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(progress_fd)
        self.connection = multiprocessing.connection.Connection(ours.detach())
        self.sent: dict[tuple[str, str], int] = {}
        self.ready = False

    def _wait_ready(self) -> bool:
        """Whether the worker finished starting (imports take a while): its first message."""
        if not self.ready:
            with contextlib.suppress(EOFError, OSError):
                self.ready = (
                    self.connection.poll(STARTUP_SECONDS) and self.connection.recv() == READY
                )
        return self.ready

    def call(self, batch: dict[str, Any]) -> list[Any] | _Crash:
        """Send one batch and wait for its answer while the worker keeps making progress."""
        self.progress[0] = -1
        if not self._wait_ready():
            return self._crash(killed=False, reason="worker did not start")
        try:
            self.connection.send(batch)
        except (BrokenPipeError, OSError):
            return self._crash(killed=False)
        stall = self.limits.eval_seconds + self.limits.grace_seconds
        beat, moved = self.progress[1], time.monotonic()
        while True:
            try:
                if self.connection.poll(POLL_SECONDS):
                    answer = self.connection.recv()
                    if isinstance(answer, str):
                        return self._crash(killed=False, reason=answer)
                    return answer
            except (EOFError, OSError):
                return self._crash(killed=False)
            if self.process.poll() is not None:
                return self._crash(killed=False)
            if self.progress[1] != beat:
                beat, moved = self.progress[1], time.monotonic()
            elif time.monotonic() - moved > stall:
                return self._crash(killed=True)

    def _crash(self, killed: bool, reason: str | None = None) -> _Crash:
        job_index = int(self.progress[0])
        self.stop(kill=True)
        return _Crash(job_index, reason or _crash_reason(self.process.returncode, killed))

    def stop(self, kill: bool = False) -> None:
        if not kill:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.connection.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.connection.close()


@dataclass(slots=True)
class _Part:
    """What one worker screens in a run: its symbols' series that have candles, and the jobs
    that need them."""

    snapshots: dict[tuple[str, str], CandleArrays] = field(default_factory=dict)
    tasks: list[tuple[str, tuple[float, float, float], list[int]]] = field(default_factory=list)


class FilterSandbox:
    """A pool of filter workers. `run` screens many jobs at once; a bad job fails alone."""

    def __init__(self, workers: int = 2, limits: SandboxLimits | None = None) -> None:
        self.size = max(1, workers)
        self.limits = limits or SandboxLimits()
        self.replaced = 0
        self._workers: list[_Worker] = []
        self._owner: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if not self._workers:
            self._workers = await asyncio.to_thread(
                lambda: [_Worker(self.limits) for _ in range(self.size)]
            )

    async def close(self) -> None:
        workers, self._workers = self._workers, []
        await asyncio.to_thread(lambda: [worker.stop() for worker in workers])

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

        Snapshots are taken here, on the event loop, so the store may keep changing while
        workers run; runs are serialised because each worker holds one replica.
        """
        async with self._lock:
            await self.start()
            parts = self._partition(jobs, source, tickers)
            answers = await asyncio.gather(
                *(
                    asyncio.to_thread(self._run_part, slot, part, jobs)
                    for slot, part in enumerate(parts)
                    if part.tasks
                )
            )
        return _merge(jobs, answers)

    def _partition(
        self, jobs: Sequence[FilterJob], source: CandleSource, tickers: Mapping[str, TickerValues]
    ) -> list[_Part]:
        parts = [_Part() for _ in range(self.size)]
        by_symbol: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            for symbol in job.symbols:
                by_symbol.setdefault(symbol, []).append(index)
        for symbol in sorted(by_symbol):
            series: dict[str, CandleArrays] = {}
            job_indexes = []
            for index in by_symbol[symbol]:
                missing = False
                for interval in jobs[index].timeframes:
                    if interval not in series:
                        series[interval] = source.candles(symbol, interval)
                    missing = missing or not len(series[interval].time)
                if not missing:
                    job_indexes.append(index)
            if not job_indexes:
                continue
            part = parts[self._slot(symbol)]
            part.snapshots.update(
                ((symbol, interval), candles)
                for interval, candles in series.items()
                if len(candles.time)
            )
            ticker = tickers.get(symbol) or TickerValues(
                float(series[jobs[job_indexes[0]].interval].close[-1]), math.nan, math.nan
            )
            part.tasks.append(
                (symbol, (ticker.last, ticker.change_pct, ticker.quote_volume), job_indexes)
            )
        return parts

    def _batch(
        self, worker: _Worker, part: _Part, jobs: Sequence[FilterJob], skip: set[int]
    ) -> dict[str, Any]:
        updates = []
        for key, candles in part.snapshots.items():
            start = int(np.searchsorted(candles.time, worker.sent.get(key, -1), side="right"))
            if start < len(candles.time):
                values = np.vstack(
                    (
                        candles.open[start:],
                        candles.high[start:],
                        candles.low[start:],
                        candles.close[start:],
                        candles.volume[start:],
                    )
                )
                updates.append((*key, np.asarray(candles.time[start:]), values, len(candles.time)))
        return {
            "updates": updates,
            "jobs": [(job.key, job.code, job.interval, job.timeframes, job.params) for job in jobs],
            "tasks": [
                (symbol, ticker, [i for i in indexes if i not in skip])
                for symbol, ticker, indexes in part.tasks
            ],
        }

    def _run_part(
        self, slot: int, part: _Part, jobs: Sequence[FilterJob]
    ) -> tuple[list[Any], dict[int, str]]:
        """Run one worker's share; on a crash blame the job, replace the worker, go again.

        A worker lost outside any evaluation gets one more try, then `SandboxError`: no
        trader is to blame for that.
        """
        crashed: dict[int, str] = {}
        unexplained = 0
        while True:
            worker = self._workers[slot]
            answer = worker.call(self._batch(worker, part, jobs, set(crashed)))
            if not isinstance(answer, _Crash):
                for key, candles in part.snapshots.items():
                    worker.sent[key] = int(candles.time[-1])
                return answer, crashed
            self._workers[slot] = _Worker(self.limits)
            self.replaced += 1
            if answer.job_index < 0 or answer.job_index in crashed:
                unexplained += 1
                if unexplained > 1:
                    raise SandboxError(f"filter worker lost outside any filter: {answer.reason}")
            else:
                crashed[answer.job_index] = answer.reason


def _merge(
    jobs: Sequence[FilterJob], answers: Iterable[tuple[list[Any], dict[int, str]]]
) -> dict[str, FilterOutcome]:
    matches: list[list[FilterMatch]] = [[] for _ in jobs]
    failures: list[str | None] = [None] * len(jobs)
    evaluated = [0] * len(jobs)
    for results, crashed in answers:
        for index, (found, failure, count) in enumerate(results):
            matches[index].extend(
                FilterMatch(s, Side(side), score, price, t, reads)
                for s, side, score, price, t, reads in found
            )
            failures[index] = failures[index] or failure or crashed.get(index)
            evaluated[index] += count
    return {
        job.key: FilterOutcome(
            job.key,
            () if failures[index] else tuple(matches[index]),
            failures[index],
            evaluated[index],
        )
        for index, job in enumerate(jobs)
    }


if __name__ == "__main__":
    _connection, _progress, _eval, _run, _grace, _cpu, _memory = sys.argv[1:]
    _worker_main(
        int(_connection),
        int(_progress),
        SandboxLimits(float(_eval), float(_run), float(_grace), int(_cpu), int(_memory)),
    )
