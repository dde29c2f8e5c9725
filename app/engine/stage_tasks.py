"""The later stages of a workflow on a real-time market: each in a task of its own.

A slow stage (a model call) then never delays a screen or another stage. Each stage is
woken after every close (`wake`; a stage whose work is only handed to it is not, see
`HandedWork`) and whenever a stage before it in the workflow handled something (the work
flows one way: signals to decisions to entries to positions), a prompted one also when its
work arrives (the position monitor on every price update, the trade stage when signals are
made ready), and each looks again every `poll_ms` anyway (a lease that ran out, work
another process left). Waking only the stages downstream keeps the others from asking the
database for work they cannot have while an entry is on its way.

Two rules order the work, both because the engine's CPU is shared: on two cores that also
run the sandbox workers, whatever the engine process does during a screen makes the screen
slower.

- A screen comes first. A stage starts a run only while no screen runs (the workflow's
  `EngineGate`); a run already under way goes on, and the stages that hold many tasks (the
  analyzer) wait at the gate inside their runs as well.
- A bookkeeping stage (equity snapshots, decision outcomes) waits while the stages on the
  way to an order are busy, at most `bookkeeping_wait_ms` (a position monitor busy with
  every tick never starves it), so a close's entries do not queue behind its records. The
  stage tasks tell the gate whether those stages are busy (`EngineGate.wait_quiet`), so
  that other work of the process (the metrics sent to subscribers) can wait as well.

The live engine runs its stages with this; so do the benchmarks that measure what a live
engine does, so that they measure this very code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from app.core.tasks import cancel_and_wait
from app.engine.clock import Clock
from app.engine.market import MarketData
from app.engine.workflow import Bookkeeping, HandedWork, Prompted, Workflow

log = logging.getLogger(__name__)

POLL_MS = 2_000
BOOKKEEPING_WAIT_MS = 2_000


class StageTasks:
    def __init__(
        self,
        workflow: Workflow,
        market: MarketData,
        wall: Clock,
        *,
        poll_ms: int = POLL_MS,
        bookkeeping_wait_ms: int = BOOKKEEPING_WAIT_MS,
        progress: asyncio.Event | None = None,
    ) -> None:
        self.workflow = workflow
        self.market = market
        self.wall = wall
        self.poll_ms = poll_ms
        self.bookkeeping_wait_ms = bookkeeping_wait_ms
        self.progress = progress or asyncio.Event()
        """Set whenever a stage ends a run."""
        self._wakes = [asyncio.Event() for _ in workflow.stages]
        self._busy: set[int] = set()
        self._order_path = [
            index
            for index, stage in enumerate(workflow.stages)
            if not isinstance(stage, Bookkeeping)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for index, stage in enumerate(self.workflow.stages):
            self._tasks.append(asyncio.create_task(self._run(index), name=stage.name))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    def wake(self) -> None:
        """After a close: every stage with work per close."""
        for stage, wake in zip(self.workflow.stages, self._wakes, strict=True):
            if not isinstance(stage, HandedWork):
                wake.set()
        self._report_order_path()

    def idle(self) -> bool:
        """No stage is running or woken."""
        return not self._working(range(len(self._wakes)))

    async def until_idle(self) -> None:
        await self._until_done(range(len(self._wakes)))

    def _working(self, indices: Iterable[int]) -> bool:
        """Whether any of these stages is running or woken."""
        return any(i in self._busy or self._wakes[i].is_set() for i in indices)

    async def _until_done(self, indices: Sequence[int]) -> None:
        """Return once none of these stages is running or woken."""
        while self._working(indices):
            self.progress.clear()
            await self.progress.wait()

    def _report_order_path(self) -> None:
        """Tell the gate whether a stage on the way to an order is running or woken."""
        self.workflow.gate.order_path_busy(self._working(self._order_path))

    async def _run(self, index: int) -> None:
        stage, wake = self.workflow.stages[index], self._wakes[index]
        gate = self.workflow.gate
        while True:
            await self._woken(index)
            wake.clear()
            self._busy.add(index)
            self._report_order_path()
            try:
                if isinstance(stage, Bookkeeping):
                    await gate.wait_quiet(self.bookkeeping_wait_ms / 1000)
                await gate.wait_open()
                while await stage.run(self.market.view()):
                    for later in self._wakes[index + 1 :]:
                        later.set()
                    self._report_order_path()
                    await gate.wait_open()
            except Exception:
                log.exception("stage %s failed; it runs again at the next wake-up", stage.name)
            finally:
                self._busy.discard(index)
                self._report_order_path()
                self.progress.set()

    async def _woken(self, index: int) -> None:
        stage = self.workflow.stages[index]
        waits = [
            asyncio.ensure_future(self._wakes[index].wait()),
            asyncio.ensure_future(self.wall.sleep_until(self.wall.now() + self.poll_ms)),
        ]
        if isinstance(stage, Prompted):
            waits.append(asyncio.ensure_future(stage.prompted()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
