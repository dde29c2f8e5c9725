"""The messages between the engine and a worker, as typed values, and their plain-data form.

Engine to worker: a `Batch` (the candle rows a worker's replica lacks, the jobs, and the
symbols to screen with the jobs that screen each) or `Forget` (drop a source's replicas).
Worker to engine: `Ready` once started (with the isolation it applied), then for each
batch an `Answer` (one `JobResult` per job) or an `Abort`.

Why plain data: a worker runs untrusted code, so nothing it sends may run code in the
engine. Its frames are JSON, and `decode_answer` checks every field against the batch it
answers: a wrong type, a job or task the batch does not have, a match for a symbol its job
was not asked to screen, an out-of-range count or an unknown abort reason is a
`ProtocolViolation`. A match carries only what the worker alone knows (task, side, score,
indicators read); its price and candle time come from the engine's own snapshot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from app.domain.enums import Side
from app.engine.sandbox.jobs import SandboxLimits
from app.engine.sandbox.tasks import COLUMNS as TASK_COLUMNS
from app.engine.sandbox.tasks import FLOAT_COLUMNS, Tasks

COLUMNS = 5  # open, high, low, close, volume: the rows of a replica's values
MAX_READS = 64
MAX_LABEL = 200
MAX_FAILURE = 500
MAX_ISOLATION = 32
MEMORY_EXCEEDED = "memory limit exceeded"
ABORT_REASONS = frozenset({MEMORY_EXCEEDED})
SIDES = {side.value: side for side in Side}


class ProtocolViolation(ValueError):
    """A worker sent something the protocol does not allow: it is replaced, nobody blamed."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker starts, as the one JSON argument of its command line: its descriptors,
    its limits, the empty directory it may chroot into, the user it becomes if root."""

    socket_fd: int
    progress_fd: int
    limits: SandboxLimits
    empty_root: str | None
    user: str | None

    def to_argument(self) -> str:
        return json.dumps({**asdict(self), "limits": asdict(self.limits)})

    @classmethod
    def from_argument(cls, argument: str) -> WorkerConfig:
        fields = json.loads(argument)
        return cls(**{**fields, "limits": SandboxLimits(**fields["limits"])})


@dataclass(frozen=True, slots=True)
class SeriesUpdate:
    """Rows of one series newer than the worker's replica holds; `length` is how many rows
    the replica keeps after merging them (the length of the engine's snapshot)."""

    symbol: str
    interval: str
    time: np.ndarray
    values: np.ndarray
    length: int


@dataclass(frozen=True, slots=True)
class JobSpec:
    code: str
    interval: str
    timeframes: frozenset[str]
    params: Mapping[str, Any]
    budget_seconds: float


@dataclass(frozen=True, slots=True)
class Batch:
    source: str
    updates: tuple[SeriesUpdate, ...]
    jobs: tuple[JobSpec, ...]
    tasks: Tasks


@dataclass(frozen=True, slots=True)
class Forget:
    source: str


@dataclass(frozen=True, slots=True)
class Ready:
    isolation: tuple[str, ...]


class MatchRecord(NamedTuple):
    """One match: a typed record that is also its own wire form (JSON encodes it as
    `[task, side, score, indicators]`), there being thousands per candle close."""

    task: int
    side: Side
    score: float | None
    indicators: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobResult:
    failure: str | None
    evaluated: int
    spent: float
    matches: tuple[MatchRecord, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """One result per job of the batch; `held` is how many series the worker now holds."""

    results: tuple[JobResult, ...]
    held: int


@dataclass(frozen=True, slots=True)
class Abort:
    reason: str


# ---------------------------------------------------------------- engine -> worker (trusted)


def batch_message(batch: Batch) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The batch as JSON and arrays: every update's times, then every update's values, then
    the columns of the tasks (`app.engine.sandbox.tasks`), whose lengths the JSON gives."""
    tasks = batch.tasks
    message = {
        "type": "batch",
        "source": batch.source,
        "updates": [[u.symbol, u.interval, len(u.time), u.length] for u in batch.updates],
        "jobs": [
            [job.code, job.interval, sorted(job.timeframes), dict(job.params), job.budget_seconds]
            for job in batch.jobs
        ],
        "tasks": {
            "symbols": list(tasks.symbols),
            "intervals": list(tasks.intervals),
            "lengths": [int(array.size) for array in tasks.arrays()],
        },
    }
    arrays = [np.asarray(u.time, dtype=np.int64) for u in batch.updates]
    arrays += [np.asarray(u.values, dtype=np.float64) for u in batch.updates]
    arrays += tasks.arrays()
    return message, arrays


def forget_message(forget: Forget) -> dict[str, Any]:
    return {"type": "forget", "source": forget.source}


def decode_engine_message(message: Any, binary: memoryview) -> Batch | Forget:
    """What the engine sent; it is trusted, so this only rebuilds the typed values (a job's
    params read-only, as filters see them)."""
    if message["type"] == "forget":
        return Forget(message["source"])
    rows = sum(update[2] for update in message["updates"])
    times = np.frombuffer(binary, dtype=np.int64, count=rows)
    values = np.frombuffer(binary, dtype=np.float64, count=rows * COLUMNS, offset=rows * 8)
    offset = rows * 8 * (1 + COLUMNS)
    columns = {}
    for name, length in zip(TASK_COLUMNS, message["tasks"]["lengths"], strict=True):
        kind = np.float64 if name in FLOAT_COLUMNS else np.int64
        columns[name] = np.frombuffer(binary, dtype=kind, count=length, offset=offset)
        offset += length * 8
    columns["tickers"] = columns["tickers"].reshape(-1, 3)
    updates = []
    offset = 0
    for symbol, interval, count, length in message["updates"]:
        block = values[COLUMNS * offset : COLUMNS * (offset + count)].reshape(COLUMNS, count)
        updates.append(
            SeriesUpdate(symbol, interval, times[offset : offset + count], block, length)
        )
        offset += count
    return Batch(
        message["source"],
        tuple(updates),
        tuple(
            JobSpec(code, interval, frozenset(timeframes), MappingProxyType(params), budget)
            for code, interval, timeframes, params, budget in message["jobs"]
        ),
        Tasks(tuple(message["tasks"]["symbols"]), tuple(message["tasks"]["intervals"]), **columns),
    )


# ---------------------------------------------------------------- worker -> engine (checked)


def ready_message(ready: Ready) -> dict[str, Any]:
    return {"type": "ready", "isolation": list(ready.isolation)}


def answer_message(answer: Answer | Abort) -> dict[str, Any]:
    if isinstance(answer, Abort):
        return {"type": "abort", "reason": answer.reason}
    return {
        "type": "answer",
        "held": answer.held,
        "results": [
            [
                result.failure,
                result.evaluated,
                result.spent,
                list(result.matches),
            ]
            for result in answer.results
        ],
    }


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise ProtocolViolation(reason)


def _is_int(value: Any) -> bool:
    return type(value) is int


def _text(value: Any, limit: int, what: str) -> str:
    _check(type(value) is str and len(value) <= limit, f"{what} is not a string of <= {limit}")
    return str(value)


def _message_type(message: Any) -> str:
    _check(type(message) is dict, "a message is not an object")
    kind = message.get("type")
    _check(type(kind) is str, "a message has no type")
    return str(kind)


def decode_ready(message: Any) -> Ready:
    _check(_message_type(message) == "ready", "the first message is not ready")
    _check(set(message) == {"type", "isolation"}, "ready has unknown fields")
    layers = message["isolation"]
    _check(type(layers) is list and len(layers) <= MAX_ISOLATION, "isolation is not a list")
    return Ready(tuple(_text(layer, MAX_LABEL, "an isolation layer") for layer in layers))


def _finite(value: Any) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and math.isfinite(value)


def _readings_problem(reads: Any) -> str:
    """What is wrong with a match's indicator readings: each is a label with a number, None,
    or an object of them (several outputs); nothing when they are right."""
    if type(reads) is not dict or len(reads) > MAX_READS:
        return f"a match's readings are not an object of at most {MAX_READS}"
    for label, value in reads.items():
        if len(label) > MAX_LABEL:
            return "a reading's label is too long"
        if value is None or _finite(value):
            continue
        if type(value) is not dict or len(value) > MAX_READS:
            return "a reading is not a number"
        for name, output in value.items():
            if len(name) > MAX_LABEL or not (output is None or _finite(output)):
                return "a reading's output is not a number"
    return ""


def _match_problem(raw: Any, job: int, jobs_of: list[list[int]], seen: set[int]) -> str:
    """What is wrong with a match, or nothing (checked inline: there are thousands)."""
    if type(raw) is not list or len(raw) != 4:
        return "a match is not [task, side, score, reads]"
    task, side, score, reads = raw
    if type(task) is not int or not 0 <= task < len(jobs_of):
        return "a match names an unknown task"
    if job not in jobs_of[task]:
        return "a match for a symbol its job did not screen"
    if task in seen:
        return "two matches of one job for one symbol"
    if type(side) is not str or side not in SIDES:
        return "a match has an unknown side"
    if score is not None and not _finite(score):
        return "a score is not a finite number"
    return _readings_problem(reads)


def _match(raw: Any, job: int, jobs_of: list[list[int]], seen: set[int]) -> MatchRecord:
    problem = _match_problem(raw, job, jobs_of, seen)
    if problem:
        raise ProtocolViolation(problem)
    task, side, score, reads = raw
    seen.add(task)
    return MatchRecord(task, SIDES[side], None if score is None else float(score), reads)


def _result(raw: Any, job: int, jobs_of: list[list[int]], screened: int) -> JobResult:
    _check(type(raw) is list and len(raw) == 4, "a result is not [failure, count, time, matches]")
    failure, evaluated, spent, matches = raw
    _check(_is_int(evaluated) and 0 <= evaluated <= screened, "a result has an impossible count")
    _check(type(matches) is list and len(matches) <= screened, "a result has too many matches")
    _check(_finite(spent) and spent >= 0, "a result's time is not a duration")
    seen: set[int] = set()
    return JobResult(
        None if failure is None else _text(failure, MAX_FAILURE, "a failure"),
        evaluated,
        float(spent),
        tuple(_match(match, job, jobs_of, seen) for match in matches),
    )


def decode_answer(message: Any, batch: Batch) -> Answer | Abort:
    """The worker's answer to `batch`, checked field by field; `ProtocolViolation` if not."""
    kind = _message_type(message)
    if kind == "abort":
        _check(set(message) == {"type", "reason"}, "abort has unknown fields")
        reason = message["reason"]
        _check(type(reason) is str and reason in ABORT_REASONS, "abort has an unknown reason")
        return Abort(reason)
    _check(kind == "answer", f"unexpected message {kind[:40]!r}")
    _check(set(message) == {"type", "held", "results"}, "answer has unknown fields")
    held, results = message["held"], message["results"]
    _check(_is_int(held) and held >= 0, "held is not a count")
    _check(type(results) is list and len(results) == len(batch.jobs), "not one result per job")
    screened = batch.tasks.screened(len(batch.jobs))
    jobs_of = batch.tasks.jobs_of()
    return Answer(
        tuple(_result(raw, job, jobs_of, screened[job]) for job, raw in enumerate(results)),
        held,
    )
