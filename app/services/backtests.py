"""Backtest runs as jobs: started, watched, cancelled, each by its owner only.

A run is one `backtests` row (the request, the status, the progress and at the end the
result document) and one worker process (`app.engine.backtest.process`) that replays the
trader below the engine's CPU priority, so a backtest beside the live engine never stalls its
screening and never touches the live tables. `BacktestRunner` holds the processes of this
API process, at most `backtest_concurrency` at once (the others wait `queued`); it records
their progress on the row and publishes it (`EventType.BACKTEST`) for `backtestProgress`.

A run is leased by the API process that queued it: every `heartbeat` seconds the runner
marks its runs alive (`heartbeat_at`), and it fails every queued or running run of the
database whose heartbeat is older than the lease, with the reason: the process that ran it
stopped without ending it (killed, crashed, its machine lost), so no one will. It does so
when it starts (a restarted server) and at every heartbeat (another API process that stays
up notices too); a run of a process still beating is never touched.

Each worker leads a process group of its own, so ending a run ends its sandbox workers
with it. Cancelling marks the row `cancelled` first (only a queued or running run can be), then ends
the worker if it runs here. A worker run by another API process notices at its next
progress report, which is conditional on the row still running: either way it stops within
a fraction of a second. A run that fails ends `failed` with its reason, never the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tortoise.expressions import Q

from app.core.events import Event, EventBus, EventType
from app.db import models
from app.domain.backtest import BacktestInputError
from app.domain.enums import BacktestAnalysis, BacktestStatus
from app.domain.fill_model import FillModel
from app.domain.trader_spec import TraderSpec
from app.domain.trader_templates import TEMPLATES, TraderDraft
from app.engine.backtest.job import BacktestRequest, check_request, check_symbols, write_market
from app.engine.klines import KlineStore
from app.services.errors import NotFoundError
from app.services.repositories.traders import spec_of
from app.services.traders import parse_id

log = logging.getLogger(__name__)

WORKER = (sys.executable, "-m", "app.engine.backtest.process")
LIVE = (BacktestStatus.QUEUED, BacktestStatus.RUNNING)
DEFAULT_LEASE_SECONDS = 30.0
HEARTBEATS_PER_LEASE = 6
RESULT_LINE_LIMIT = 1 << 30  # the result document is one line of the worker's output


@dataclass(frozen=True, slots=True)
class BacktestAsk:
    """What a user asks to backtest: one of a saved trader, a template or an unsaved trader
    (a generation preview), over a window, optionally on other symbols, an interval, a
    starting balance, fees and what analyzes its signals."""

    start: int
    end: int
    trader_id: str | None = None
    template: str | None = None
    draft: TraderDraft | None = None
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    balance: Decimal | None = None
    taker_fee: Decimal | None = None
    maker_fee: Decimal | None = None
    analysis: BacktestAnalysis = BacktestAnalysis.RULES


def draft_spec(draft: TraderDraft, owner_id: int) -> TraderSpec:
    """An unsaved trader (a template's or a generation's) as the engine runs it."""
    return TraderSpec(
        id=uuid.uuid4(),
        owner_id=owner_id,
        name=draft.name,
        interval=draft.interval,
        symbols=draft.symbols,
        filter_code=draft.filter_code,
        filter_description=draft.filter_description,
        strategy_instructions=draft.strategy_instructions,
        risk=draft.risk,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def backtest_event(run: models.Backtest) -> Event:
    return Event(
        EventType.BACKTEST,
        run.owner_id,  # type: ignore[attr-defined]
        str(run.trader_id or ""),  # type: ignore[attr-defined]
        {
            "backtest_id": str(run.id),
            "status": str(run.status),
            "progress": run.progress,
            "closes_done": run.closes_done,
            "closes_total": run.closes_total,
            "reason": run.reason,
        },
    )


class BacktestRunner:
    """The worker processes of this API process's runs, and the lease on them."""

    def __init__(
        self,
        bus: EventBus,
        concurrency: int = 1,
        worker: Sequence[str] = WORKER,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.bus = bus
        self.worker = tuple(worker)
        self.lease_seconds = lease_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.processes: dict[uuid.UUID, asyncio.subprocess.Process] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fail the runs a stopped process left, then keep this process's runs leased; a
        database that does not answer yet delays the first only (the heartbeat tries again),
        never the server's start."""
        try:
            await self.recover()
        except Exception:
            log.exception("recovering the backtests of stopped processes failed; retried")
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="backtest heartbeat")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / HEARTBEATS_PER_LEASE)
            try:
                if self._tasks:
                    await models.Backtest.filter(id__in=list(self._tasks), status__in=LIVE).update(
                        heartbeat_at=_now()
                    )
                await self.recover()
            except Exception:  # the database away for a moment: the next beat tries again
                log.exception("the backtest heartbeat failed")

    async def recover(self) -> int:
        """Fail every queued or running run whose heartbeat is older than the lease (none of
        this process's), with the reason; how many."""
        stale = _now() - timedelta(seconds=self.lease_seconds)
        left = await models.Backtest.filter(
            Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale),
            status__in=LIVE,
        ).exclude(id__in=list(self._tasks))
        failed = 0
        for run in left:
            seen = run.heartbeat_at or run.created_at
            did = "ran" if run.status == BacktestStatus.RUNNING else "queued"
            reason = (
                f"the server process that {did} it stopped without ending it (nothing heard "
                f"from it since {seen:%Y-%m-%d %H:%M:%S} UTC); start the backtest again"
            )
            if await _finish(run.id, BacktestStatus.FAILED, reason):
                failed += 1
                await self._publish(run.id)
        return failed

    def submit(
        self, run: models.Backtest, request: BacktestRequest, scratch: Path | None = None
    ) -> None:
        """Run `request` for `run`; `scratch`, a directory made for the run, goes with it."""

        def done(_: object) -> None:
            self._tasks.pop(run.id, None)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

        task = asyncio.create_task(self._run(run, request), name=f"backtest {run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(done)

    def stop(self, run_id: uuid.UUID) -> None:
        """End the run's worker if this process runs it (its row says why)."""
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """End every run of this process: they are marked cancelled, the server stopped."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for run_id in list(self._tasks):
            await _finish(run_id, BacktestStatus.CANCELLED, "the server stopped")
            self.stop(run_id)
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _publish(self, run_id: uuid.UUID) -> None:
        run = await models.Backtest.get_or_none(id=run_id)
        if run is not None:
            await self.bus.publish(backtest_event(run))

    async def _run(self, run: models.Backtest, request: BacktestRequest) -> None:
        try:
            async with self._slots:
                started = await models.Backtest.filter(
                    id=run.id, status=BacktestStatus.QUEUED
                ).update(status=BacktestStatus.RUNNING, started_at=_now())
                if started:
                    await self._publish(run.id)
                    await self._work(run.id, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("backtest %s failed", run.id)
            await _finish(run.id, BacktestStatus.FAILED, f"the backtest failed: {exc}")
        finally:
            await self._publish(run.id)

    async def _work(self, run_id: uuid.UUID, request: BacktestRequest) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.worker,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=RESULT_LINE_LIMIT,
            start_new_session=True,
        )
        self.processes[run_id] = process
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(request.to_json().encode())
            await process.stdin.drain()
            process.stdin.close()
            async for line in process.stdout:
                if not await self._heard(run_id, json.loads(line)):
                    return
            code = await process.wait()
            await _finish(
                run_id, BacktestStatus.FAILED, f"the backtest process exited with status {code}"
            )
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the worker and its sandbox
                await process.wait()
            del self.processes[run_id]

    async def _heard(self, run_id: uuid.UUID, message: dict[str, Any]) -> bool:
        """Record one message of the worker; False when the run is over (done, failed, or
        cancelled meanwhile)."""
        if "progress" in message:
            done, total = message["progress"]
            still = await models.Backtest.filter(id=run_id, status=BacktestStatus.RUNNING).update(
                closes_done=done, closes_total=total, progress=done / total if total else 1.0
            )
            if still:
                await self._publish(run_id)
            return bool(still)
        if "error" in message:
            await _finish(run_id, BacktestStatus.FAILED, message["error"]["message"])
            return False
        document = message["result"]
        errors = document.get("errors") or {}
        reason = "; ".join(f"the trader stopped: {why}" for why in errors.values()) or None
        await _finish(
            run_id,
            BacktestStatus.FAILED if errors else BacktestStatus.DONE,
            reason,
            result=document,
        )
        return False


async def _finish(
    run_id: uuid.UUID,
    status: BacktestStatus,
    reason: str | None,
    result: dict[str, Any] | None = None,
) -> bool:
    """End a run that is still queued or running; False when it had ended already."""
    changes: dict[str, Any] = {"status": status, "reason": reason, "finished_at": _now()}
    if result is not None:
        changes |= {"result": result, "progress": 1.0}
    return bool(await models.Backtest.filter(id=run_id, status__in=LIVE).update(**changes))


class BacktestManager:
    """The use cases of the API, each scoped to the caller's runs."""

    def __init__(self, runner: BacktestRunner | None, data: str) -> None:
        self.runner = runner
        self.data = data

    async def _spec(self, owner: models.User, ask: BacktestAsk) -> tuple[TraderSpec, Any]:
        chosen = [ask.trader_id is not None, ask.template is not None, ask.draft is not None]
        if sum(chosen) != 1:
            raise BacktestInputError("trader", "give exactly one of traderId, template, trader")
        if ask.trader_id is not None:
            row = await models.Trader.get_or_none(
                id=parse_id(ask.trader_id, "trader"), owner_id=owner.id
            )
            if row is None:
                raise NotFoundError("trader")
            return spec_of(row), row.id
        if ask.template is not None:
            template = TEMPLATES.get(ask.template)
            if template is None:
                raise BacktestInputError(
                    "template", f"no template {ask.template!r}; known: {', '.join(TEMPLATES)}"
                )
            return draft_spec(template.render(), owner.id), None
        assert ask.draft is not None
        return draft_spec(ask.draft, owner.id), None

    async def start(
        self,
        owner: models.User,
        ask: BacktestAsk,
        defaults: FillModel,
        balance: Decimal,
        market: KlineStore | None = None,
    ) -> models.Backtest:
        """Check the ask, record the run and hand it to the runner; `BacktestInputError`
        (nothing recorded) when it cannot run as asked. With `market`, the run replays that
        store's history instead of the replay directory."""
        if self.runner is None:
            raise BacktestInputError("trader", "this process runs no backtests")
        spec, trader_id = await self._spec(owner, ask)
        fees = FillModel(
            taker_fee=defaults.taker_fee if ask.taker_fee is None else ask.taker_fee,
            maker_fee=defaults.maker_fee if ask.maker_fee is None else ask.maker_fee,
            volume_share=defaults.volume_share,
            impact=defaults.impact,
        )
        if not (0 <= fees.taker_fee < 1 and 0 <= fees.maker_fee < 1):
            raise BacktestInputError("fees", "fees are fractions in [0, 1)")
        request = BacktestRequest(
            trader=spec,
            start=ask.start,
            end=ask.end,
            data=self.data,
            symbols=ask.symbols,
            interval=ask.interval,
            balance=balance if ask.balance is None else ask.balance,
            fill_model=fees,
            analysis=ask.analysis,
        )
        checked = check_request(request)
        scratch = None
        if market is not None:
            scratch = Path(tempfile.mkdtemp(prefix="traders-backtest-"))
            write_market(market, scratch, checked.interval)
            request = dataclasses.replace(request, data=str(scratch))
        try:
            check_symbols(request.data, checked.symbols, checked.interval)
        except BacktestInputError:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        run = await models.Backtest.create(
            id=uuid.uuid4(),
            owner_id=owner.id,
            trader_id=trader_id,
            request=json.loads(request.to_json()),
            created_at=_now(),
            heartbeat_at=_now(),
        )
        self.runner.submit(run, request, scratch)
        return run

    async def get(self, owner: models.User, run_id: str | uuid.UUID) -> models.Backtest:
        run = await models.Backtest.get_or_none(id=parse_id(run_id, "backtest"), owner_id=owner.id)
        if run is None:
            raise NotFoundError("backtest")
        return run

    async def cancel(self, owner: models.User, run_id: str | uuid.UUID) -> models.Backtest:
        """Cancel a queued or running run of the caller; a finished one stays as it is."""
        run = await self.get(owner, run_id)
        cancelled = await _finish(run.id, BacktestStatus.CANCELLED, "cancelled by its owner")
        if cancelled and self.runner is not None:
            self.runner.stop(run.id)
            await self.runner.bus.publish(backtest_event(await self.get(owner, run.id)))
        return await self.get(owner, run.id)
