"""A run left queued or running by an API process that died is failed with the reason by
the next runner to notice, at its start or at a heartbeat; a run whose process still vouches
for it is left alone, and a runner keeps vouching for its own runs while they last."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from app.core.events import Event, EventType, InProcessEventBus
from app.db import models
from app.domain.enums import BacktestStatus
from app.services.backtests import BacktestRunner
from app.services.users import create_user


class RecordingBus(InProcessEventBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)
        await super().publish(event)


async def _run(owner: models.User, status: BacktestStatus, heard: datetime | None) -> uuid.UUID:
    row = await models.Backtest.create(
        id=uuid.uuid4(),
        owner=owner,
        status=status,
        request={},
        created_at=datetime.now(UTC) - timedelta(hours=1),
        heartbeat_at=heard,
    )
    return row.id


async def test_a_starting_runner_fails_the_runs_of_a_process_that_died(db: str) -> None:
    owner, _ = await create_user("alice")
    now = datetime.now(UTC)
    crashed = await _run(owner, BacktestStatus.RUNNING, now - timedelta(minutes=5))
    queued = await _run(owner, BacktestStatus.QUEUED, now - timedelta(minutes=5))
    never = await _run(owner, BacktestStatus.RUNNING, None)
    alive = await _run(owner, BacktestStatus.RUNNING, now - timedelta(seconds=5))
    done = await _run(owner, BacktestStatus.DONE, now - timedelta(minutes=5))
    bus = RecordingBus()
    runner = BacktestRunner(bus, lease_seconds=60)
    await runner.start()
    try:
        rows = {row.id: row for row in await models.Backtest.all()}
        for run_id in (crashed, queued, never):
            assert rows[run_id].status == BacktestStatus.FAILED
            assert "the server running it stopped" in (rows[run_id].reason or "")
            assert rows[run_id].finished_at is not None
        assert "never" in (rows[never].reason or "")
        assert rows[alive].status == BacktestStatus.RUNNING
        assert rows[done].status == BacktestStatus.DONE and rows[done].reason is None
        published = {event.payload["backtest_id"]: event for event in bus.events}
        assert set(published) == {str(crashed), str(queued), str(never)}
        assert {event.type for event in published.values()} == {EventType.BACKTEST}
        assert {event.payload["status"] for event in published.values()} == {"failed"}
    finally:
        await runner.close()


async def test_a_heartbeat_vouches_for_own_runs_and_fails_those_nobody_does(db: str) -> None:
    owner, _ = await create_user("bob")
    now = datetime.now(UTC)
    mine = await _run(owner, BacktestStatus.RUNNING, now)
    theirs = await _run(owner, BacktestStatus.RUNNING, now)
    runner = BacktestRunner(InProcessEventBus(), heartbeat_seconds=0.2, lease_seconds=1)
    blocker = asyncio.Event()

    async def working() -> None:
        await blocker.wait()

    # One of this runner's own runs, as `submit` holds it while its worker runs.
    runner._tasks[mine] = asyncio.create_task(working())
    await runner.start()
    try:
        await asyncio.sleep(2)
        rows = {row.id: row for row in await models.Backtest.all()}
        assert rows[mine].status == BacktestStatus.RUNNING
        beat = rows[mine].heartbeat_at
        assert beat is not None and beat > now
        assert rows[theirs].status == BacktestStatus.FAILED
    finally:
        blocker.set()
        await runner._tasks.pop(mine)
        await runner.close()
