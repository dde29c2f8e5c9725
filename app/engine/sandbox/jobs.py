"""What a caller hands the sandbox and what it gets back, in the engine's own terms.

A `FilterJob` is one trader's filter over its symbols at one candle close; its
`FilterOutcome` says what matched, or why the filter failed (its own fault, counted
against the trader), or that the sandbox lost the run (nobody's fault: a worker broke the
protocol or died outside any filter twice; the trader is neither credited nor blamed).

A `CandleSource` names its candles with `source_id`: the live kline store is one source,
each backtest another. Workers keep a replica per source, so two sources holding different
candles for one (symbol, interval) never see each other's; a source id names one
append-only history (a rewritten history needs a new id, or `forget_source` first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from app.domain.enums import Side
from app.domain.indicators import CandleArrays

MiB = 1024 * 1024


class CandleSource(Protocol):
    @property
    def source_id(self) -> str: ...

    def candles(self, symbol: str, interval: str) -> CandleArrays: ...


@dataclass(frozen=True, slots=True)
class TickerValues:
    """What a filter sees as `ticker`: last price, 24 h change in percent, 24 h quote volume."""

    last: float
    change_pct: float
    quote_volume: float


@runtime_checkable
class TickerRows(Protocol):
    """Tickers that also give their figures as rows of floats (a backtest's, read for
    thousands of closes), so a run's tasks are made without a `TickerValues` each."""

    def rows(self, symbols: Sequence[str]) -> np.ndarray | None:
        """One (last, change_pct, quote_volume) row per symbol, in order; None when one of
        them has no ticker."""
        ...


@dataclass(frozen=True, slots=True)
class FilterJob:
    """One trader's filter to run over `symbols`; `key` names the trader in the outcome.

    `budget_seconds` is the job's evaluation time per candle close in each worker (None: the
    limits' `run_seconds`)."""

    key: str
    code: str
    interval: str
    symbols: tuple[str, ...]
    timeframes: frozenset[str]
    params: Mapping[str, Any] = field(default_factory=dict)
    budget_seconds: float | None = None


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
    """A trader's run over its symbols: the matches, or why it failed (it stops at the first),
    or why the sandbox lost it (`lost`: no trader is to blame). `spent_seconds` is the time
    its evaluations took in all workers, the one a worker was killed in included."""

    key: str
    matches: tuple[FilterMatch, ...] = ()
    failure: str | None = None
    evaluated: int = 0
    spent_seconds: float = 0.0
    lost: str | None = None


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """`eval_seconds` bounds one symbol's evaluation, `run_seconds` a trader's time per candle
    close in one worker (unless its job has a budget); a worker making no progress for
    `eval_seconds + grace_seconds` is killed; `memory_bytes` is the address space a filter may
    use beyond the worker's baseline and its candle replicas; `batch_cpu_seconds` is the CPU
    a worker may use for one candle close (and twice that in wall time); `niceness` lowers
    the workers' CPU priority: screening workers run below the engine, so a heavy screen may
    take longer on a busy machine but never starves the stages (a stop, an emergency stop)
    of CPU, and the dry-run lane runs below screening."""

    eval_seconds: float = 0.5
    run_seconds: float = 5.0
    grace_seconds: float = 1.0
    batch_cpu_seconds: int = 60
    memory_bytes: int = 512 * MiB
    niceness: int = 10


class SandboxError(RuntimeError):
    """The sandbox itself failed (not a filter): the run is lost, no trader is blamed."""
