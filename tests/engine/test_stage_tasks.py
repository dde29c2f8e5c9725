"""StageTasks, the live way to run the later stages: a screen first, bookkeeping last."""

from __future__ import annotations

import asyncio

from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.memory import MemoryTraderRepository
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenerEngine
from app.engine.signals import SignalManager
from app.engine.stage_tasks import StageTasks
from app.engine.workflow import EngineGate, Stage, Workflow

POLL_MS = 600_000


class Recording:
    """A stage that has `work` items, handled one per run, each run noted in `log`."""

    def __init__(self, name: str, log: list[str], work: int = 1) -> None:
        self.name, self.log, self.work = name, log, work
        self.release = asyncio.Event()
        self.release.set()

    async def on_close(self, close: object, view: object, traders: object) -> None:
        return None

    async def run(self, view: object) -> int:
        if not self.work:
            return 0
        self.log.append(self.name)
        await self.release.wait()
        self.work -= 1
        return 1


class Bookkeeper(Recording):
    bookkeeping = True


class HandedTo(Recording):
    handed_work = True


def tasks_for(*stages: Stage) -> StageTasks:
    market = MarketData(SimulatedFeed(["BTC/USDT"], intervals=("1h",)), KlineStore(depth=10))
    traders = MemoryTraderRepository([])
    signals = SignalManager(None, traders, None, RealtimeClock())  # type: ignore[arg-type]
    workflow = Workflow(traders, ScreenerEngine(FilterSandbox(workers=1)), signals, stages)
    return StageTasks(workflow, market, RealtimeClock(), poll_ms=POLL_MS)


async def test_no_stage_starts_a_run_while_a_screen_runs() -> None:
    log: list[str] = []
    tasks = tasks_for(Recording("trade", log, work=2))
    tasks.start()
    try:
        with tasks.workflow.gate.closed():
            tasks.wake()
            await asyncio.sleep(0.05)
            assert log == [] and not tasks.idle()
        await asyncio.wait_for(tasks.until_idle(), 1)
        assert log == ["trade", "trade"]
    finally:
        await tasks.stop()


async def test_bookkeeping_waits_for_the_order_path() -> None:
    log: list[str] = []
    trade = Recording("trade", log, work=3)
    trade.release.clear()
    tasks = tasks_for(Bookkeeper("equity", log), trade)
    tasks.start()
    try:
        tasks.wake()
        await asyncio.sleep(0.05)
        assert log == ["trade"]
        trade.release.set()
        await asyncio.wait_for(tasks.until_idle(), 1)
        assert log == ["trade", "trade", "trade", "equity"]
    finally:
        await tasks.stop()


async def test_bookkeeping_waits_no_longer_than_its_limit() -> None:
    log: list[str] = []
    trade = Recording("trade", log)
    trade.release.clear()
    tasks = tasks_for(Bookkeeper("equity", log), trade)
    tasks.bookkeeping_wait_ms = 50
    tasks.start()
    try:
        tasks.wake()
        await asyncio.sleep(0.2)
        assert log == ["trade", "equity"]
    finally:
        trade.release.set()
        await tasks.stop()


async def test_work_wakes_the_stages_after_it_not_those_before() -> None:
    log: list[str] = []
    first, second = Recording("analyzer", log), Recording("monitor", log)
    third = Recording("trade", log)
    tasks = tasks_for(first, second, third)
    tasks.start()
    try:
        tasks.wake()
        await asyncio.wait_for(tasks.until_idle(), 1)
        first.work = second.work = third.work = 1
        tasks._wakes[1].set()  # the monitor finds work of its own (as at a poll)
        await asyncio.wait_for(tasks.until_idle(), 1)
        assert log[-2:] == ["monitor", "trade"] and log.count("analyzer") == 1
    finally:
        await tasks.stop()


class Prompting(Recording):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log, work=0)
        self.arrived = asyncio.Event()

    async def prompted(self) -> None:
        await self.arrived.wait()
        self.arrived.clear()


async def test_a_prompted_stage_runs_when_its_work_arrives() -> None:
    log: list[str] = []
    trade = Prompting("trade", log)
    tasks = tasks_for(trade)
    tasks.start()
    try:
        await asyncio.sleep(0.02)
        trade.work = 1
        trade.arrived.set()
        await asyncio.sleep(0.05)
        assert log == ["trade"]
    finally:
        await tasks.stop()


async def test_a_close_does_not_wake_a_stage_whose_work_is_handed_to_it() -> None:
    """The trade stage's work comes from the stages before it, never from a close itself:
    woken by one, it would look for stragglers in the store just as the close's signals
    need the connection."""
    log: list[str] = []
    analyzer, trade = Recording("analyzer", log, work=0), HandedTo("trade", log)
    tasks = tasks_for(analyzer, trade)
    tasks.start()
    try:
        tasks.wake()
        await asyncio.wait_for(tasks.until_idle(), 1)
        assert log == []
        analyzer.work = 1
        tasks.wake()
        await asyncio.wait_for(tasks.until_idle(), 1)
        assert log == ["analyzer", "trade"]
    finally:
        await tasks.stop()


async def test_the_gate_is_quiet_only_while_the_order_path_is_idle() -> None:
    """Other work of the process (the metrics sent to subscribers) waits for it too."""
    log: list[str] = []
    trade = Recording("trade", log)
    trade.release.clear()
    tasks = tasks_for(trade, Bookkeeper("equity", log, work=0))
    gate = tasks.workflow.gate
    tasks.start()
    try:
        tasks.wake()
        waiting = asyncio.create_task(gate.wait_quiet(10))
        await asyncio.sleep(0.05)
        assert log == ["trade"] and not waiting.done()
        trade.release.set()
        await asyncio.wait_for(waiting, 1)
        await asyncio.wait_for(tasks.until_idle(), 1)
        trade.work, trade.release = 1, asyncio.Event()
        tasks.wake()
        started = asyncio.get_running_loop().time()
        await gate.wait_quiet(0.1)  # no longer than its limit
        assert asyncio.get_running_loop().time() - started < 1
    finally:
        trade.release.set()
        await tasks.stop()


async def test_past_its_limit_a_quiet_wait_still_waits_for_the_screen() -> None:
    gate = EngineGate()
    gate.order_path_busy(True)  # an analysis waiting for a model
    with gate.closed():
        waiting = asyncio.create_task(gate.wait_quiet(0.01))
        await asyncio.sleep(0.1)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 1)
