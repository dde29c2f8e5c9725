"""A batch's tasks as columns: what goes in comes out, across the wire and after a crash.

The columns are how thousands of tasks per message travel (a backtest's batch of closes);
a task read back is the task added, with its ticker (NaN and all), jobs and windows, and a
part retried without the job that crashed keeps every task's windows, so the retry sees
what the first try saw and nothing after it."""

from __future__ import annotations

import math

from app.engine.sandbox import TickerValues, wire
from app.engine.sandbox.messages import Batch, JobSpec, batch_message, decode_engine_message
from app.engine.sandbox.tasks import Task, TaskBuilder

TASKS = [
    Task("BTC/USDT", TickerValues(100.5, -1.25, 1e9), (0, 1), (("1h", 3_600_000, 500),)),
    Task(
        "ETH/USDT",
        TickerValues(2.5, math.nan, math.nan),
        (1,),
        (("1h", 7_200_000, 120), ("4h", 0, 30)),
    ),
    Task("BTC/USDT", TickerValues(101.0, 0.5, 2e9), (2, 3), (("1h", 10_800_000, 500),)),
]


def built() -> TaskBuilder:
    builder = TaskBuilder()
    for task in TASKS:
        builder.add(*task)
    return builder


def same(read: Task, written: Task) -> bool:
    """Equal, NaN figures of the ticker included (repr spells them alike)."""
    return repr(read) == repr(written)


def test_tasks_read_back_as_added_across_the_wire() -> None:
    tasks = built().build()
    jobs = tuple(JobSpec("return True", "1h", frozenset({"1h"}), {}, 5.0) for _ in range(4))
    message, arrays = batch_message(Batch("source", (), jobs, tasks))
    frame = wire.frame(message, arrays)
    size, _ = wire.HEADER.unpack(frame[: wire.HEADER.size])
    document = wire.parse_json(frame[wire.HEADER.size : wire.HEADER.size + size])
    decoded = decode_engine_message(document, memoryview(frame[wire.HEADER.size + size :]))

    assert isinstance(decoded, Batch)
    assert len(decoded.tasks) == len(TASKS)
    for index, task in enumerate(TASKS):
        assert same(decoded.tasks[index], task)
    assert all(same(r, w) for r, w in zip(decoded.tasks, TASKS, strict=True))
    assert decoded.tasks.screened(4) == [1, 2, 1, 1]
    assert decoded.tasks.jobs_of() == [list(task.jobs) for task in TASKS]
    assert decoded.tasks.job_indexes() == {0, 1, 2, 3}


def test_a_retry_without_the_crashed_job_keeps_every_window() -> None:
    tasks = built().build().without({1})

    assert [task.jobs for task in tasks] == [(0,), (), (2, 3)]
    assert [task.windows for task in tasks] == [task.windows for task in TASKS]
    assert tasks.screened(4) == [1, 0, 1, 1]
