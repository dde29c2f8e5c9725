"""The analyzer stage: every new signal gets a recorded decision and moves on.

It takes the new signals the screen handed over (`Handoff`: recorded with this stage's
lease) or claims them from the store (a lease owned by this process, so two engine
processes never analyze one signal and a crashed one's leases run out), analyzes up to
`batch` of them at once and takes more as each one finishes (`work_through`: one slow
model answer never holds up the rest; the model client bounds how many calls run per user
and in all, so a burst of signals waits for slots instead of flooding the quota), records
each decision, and moves its signal by what was decided: `enter_trade` -> ready (handed to
the trade stage), `good_setup` -> watching (parked until its next candle closes, for the
signal monitor), `bad_setup` -> rejected. It runs in its own task live, so a model that
takes seconds never delays the next screen; a backtest drains it after each close.

`Analyst` is what the analyzer and the signal monitor share: read what the analysis of a
claim's signals sees (their traders, open positions and earlier decisions, each in one read
for the whole claim), decide on a signal with its context, record the decision, and move
the signal accordingly. The records go through a `GroupCommit`: the decisions and moves of
the signals decided meanwhile are written together, in a few statements, so a close that
raises hundreds of signals costs a few transactions, not two per signal. The signals made
ready go first, and the rest of a close's records (its rejected and watched signals,
three of every four) wait until the trade stage has entered them, `ENTRIES_FIRST_S` at
most: on one connection, the entries would otherwise queue behind their statements.
Signals made ready at one close go in one batch: the batch waits for the analyses still
under way (`UnderWay`: those the analyzer and the signal monitor took on and have not
submitted a write for), `GATHER_S` at most. A re-checked signal decided a moment after the
first batch went would otherwise wait for the trade stage to enter that whole batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from app.domain.decision import Decision
from app.domain.enums import SignalStatus
from app.domain.intervals import interval_ms
from app.domain.signal import Signal
from app.domain.signal_lifecycle import status_after
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisContext, AnalysisEngine, rejection
from app.engine.analysis.context import ContextBuilder
from app.engine.clock import Clock
from app.engine.group_commit import GroupCommit, Urgent
from app.engine.handoff import Handed, Handoff, Parked, handed_specs
from app.engine.ports import (
    DecisionRepository,
    Move,
    Notifier,
    SignalRepository,
    TraderRepository,
)
from app.engine.screening import CandleClose, MarketView
from app.engine.workflow import EngineGate

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 600_000
DEFAULT_BATCH = 40
ENTRIES_FIRST_S = 0.5
GATHER_S = 0.05

T = TypeVar("T")


async def work_through(
    claim: Callable[[int], Awaitable[list[T]]],
    handle: Callable[[T], Coroutine[Any, Any, bool]],
    limit: int,
) -> int:
    """Handle claimed items, `limit` at a time, claiming more whenever one finishes,
    until none is left to claim; how many were handled (`handle` says whether it did)."""
    handled = 0
    running: set[asyncio.Task[bool]] = set()
    try:
        while True:
            if len(running) < limit:
                for item in await claim(limit - len(running)):
                    running.add(asyncio.create_task(handle(item)))
            if not running:
                return handled
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            handled += sum(task.result() for task in done)
    finally:
        for task in running:
            task.cancel()


class _Held:
    """One analysis counted as under way, until its write is submitted or it ends."""

    __slots__ = ("held", "under_way")

    def __init__(self, under_way: UnderWay) -> None:
        self.under_way = under_way
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.under_way.add(-1)


_HELD: ContextVar[_Held | None] = ContextVar("analysis_under_way", default=None)


class UnderWay:
    """The analyses this process has taken on and not yet submitted a write for, and the
    claims that may add to them (each stage's `work_through` runs through `work_through`
    here; `submitted` is called as an analysis submits its write)."""

    def __init__(self) -> None:
        self._count = 0
        self._none = asyncio.Event()
        self._none.set()

    def add(self, count: int) -> None:
        self._count += count
        if self._count:
            self._none.clear()
        else:
            self._none.set()

    async def idle(self) -> None:
        """Return once no analysis is under way."""
        await self._none.wait()

    async def work_through(
        self,
        claim: Callable[[int], Awaitable[list[T]]],
        handle: Callable[[T], Coroutine[Any, Any, bool]],
        limit: int,
    ) -> int:
        """`work_through`, each claim and each item counted until it is done with."""

        async def claimed(count: int) -> list[T]:
            self.add(1)
            items: list[T] = []
            try:
                items = await claim(count)
            finally:
                self.add(len(items) - 1)  # each item gets a task of its own, which releases it
            return items

        async def handled(item: T) -> bool:
            held = _Held(self)
            _HELD.set(held)  # this task's context only
            try:
                return await handle(item)
            finally:
                held.release()

        return await work_through(claimed, handled, limit)

    @staticmethod
    def submitted() -> None:
        """The current task's analysis submitted its write: no longer under way."""
        if (held := _HELD.get()) is not None:
            held.release()


class Analyst:
    def __init__(
        self,
        engine: AnalysisEngine,
        contexts: ContextBuilder,
        decisions: DecisionRepository,
        signals: SignalRepository,
        traders: TraderRepository,
        notifier: Notifier,
        clock: Clock,
        gate: EngineGate | None = None,
        ready: Handoff | None = None,
    ) -> None:
        self.engine = engine
        self.contexts = contexts
        self.decisions = decisions
        self.signals = signals
        self.traders = traders
        self.notifier = notifier
        self.clock = clock
        self.gate = gate or EngineGate()
        self.ready = ready
        self.parked = Parked()
        """The signals this analysis parked to watch, for the signal monitor."""
        self.under_way = UnderWay()
        urgent = (
            None
            if ready is None
            else Urgent(
                _entering, ready.until_worked, ENTRIES_FIRST_S, self.under_way.idle, GATHER_S
            )
        )
        self._writes: GroupCommit[_Write, Signal | None] = GroupCommit(self._write, urgent)

    async def prepare(self, handed: Sequence[Handed], view: MarketView) -> list[AnalysisContext]:
        """What the analysis of each signal sees, read for all of them at once (the traders
        they were not handed with); a signal whose trader is gone is left out (its lease
        runs out)."""
        if not handed:
            return []
        specs = handed_specs(handed)
        specs |= await self.traders.specs({h.signal.trader_id for h in handed} - specs.keys())
        work = [
            (h.signal, specs[h.signal.trader_id]) for h in handed if h.signal.trader_id in specs
        ]
        earlier = {h.signal.id: h.earlier for h in handed if h.earlier is not None}
        return await self.contexts.build_many(work, view, earlier)

    async def decide(self, context: AnalysisContext) -> Decision:
        """The engine's decision; an engine that raises gives a rejection."""
        try:
            return await self.engine.analyze(context)
        except Exception as exc:
            log.exception("analysis of signal %s failed", context.signal.id)
            reason = f"analysis failed: {type(exc).__name__}: {exc}"
            return rejection(
                context, self.engine.kind, "The analysis failed; nothing is traded.", reason
            )

    async def settle(
        self, context: AnalysisContext, decision: Decision, owner: str
    ) -> Signal | None:
        """Record the decision and move the signal as it says (a watched one waits for its
        next candle; a ready one is handed over with its trader and the decision); the
        signal as it is then, or None when it moved meanwhile."""
        signal = context.signal
        status, reason = status_after(decision)
        watched = status == SignalStatus.WATCHING
        not_before = self.next_check(signal, decision) if watched else None
        return await self._submit(
            _Write(
                decision,
                Move(signal, status, reason, owner, not_before),
                context.trader,
                (*context.earlier, decision),
            )
        )

    async def move(
        self,
        signal: Signal,
        status: SignalStatus,
        reason: str,
        owner: str,
        decision: Decision | None = None,
    ) -> Signal | None:
        """Move the signal for a reason of the caller's (a re-check that needs no model, or
        one whose decision it overrules), recording the decision when there is one."""
        return await self._submit(_Write(decision, Move(signal, status, reason, owner)))

    async def _submit(self, write: _Write) -> Signal | None:
        self.under_way.submitted()
        return await self._writes.submit(write)

    async def _write(self, writes: list[_Write]) -> list[Signal | None]:
        """The decisions, then the moves, of every write at once, once no screen runs;
        re-parking a signal that stays where it is (watched again) is a deferral, not a
        move."""
        await self.gate.wait_open()
        await self.decisions.add_many([w.decision for w in writes if w.decision is not None])
        now = self.clock.now()
        handed = None if self.ready is None else self.ready.lease(now)
        moves = [
            self._handed(w.move, handed) for w in writes if w.move.status != w.move.signal.status
        ]
        moved = iter(await self.signals.transition_many(moves, at=now))
        deferrals = []
        for write in writes:
            move = write.move
            if move.status == move.signal.status:
                assert move.owner is not None and move.not_before is not None
                deferrals.append((move.signal, move.owner, move.not_before))
        parked = await self.signals.defer_many(deferrals)
        results: list[Signal | None] = []
        for write in writes:
            move = write.move
            if move.status == move.signal.status:
                results.append(move.signal if move.signal.id in parked else None)
                continue
            results.append(next(moved))
            if results[-1] is None:
                log.info("signal %s moved meanwhile; %s not applied", move.signal.id, move.status)
        ready = []
        for write, result in zip(writes, results, strict=True):
            if result is None:
                continue
            if result.status == SignalStatus.READY:
                ready.append(Handed(result, write.spec, write.decision))
            elif result.status == SignalStatus.WATCHING and write.move.not_before is not None:
                self.parked.put(Handed(result, earlier=write.earlier), write.move.not_before)
        if self.ready is not None and handed is not None:
            self.ready.put(ready, handed[1])
        for write, result in zip(writes, results, strict=True):
            if result is not None and write.move.status != write.move.signal.status:
                await self.notifier.signal_changed(result)
        return results

    @staticmethod
    def _handed(move: Move, lease: tuple[str, int] | None) -> Move:
        """A move to `ready` written with the trade stage's `lease` (`Handoff`), if any."""
        if lease is None or move.status != SignalStatus.READY:
            return move
        owner, until = lease
        return replace(move, not_before=until, next_owner=owner)

    @staticmethod
    def next_check(signal: Signal, decision: Decision) -> int:
        """When the next candle of the signal's interval after the decision closes."""
        return decision.as_of + interval_ms(signal.interval)


def _entering(write: _Write) -> bool:
    """A write that makes its signal ready for an order: it goes first, and the others
    wait until the trade stage has entered it (`GroupCommit`'s `Urgent`)."""
    return write.move.status == SignalStatus.READY


@dataclass(frozen=True, slots=True)
class _Write:
    """A decision to record (None: a move the analysis did not make), its signal's move, the
    trader as the analysis read it (None: not read for this move), and the signal's
    decisions with this one (None: not known, as for a move the analysis did not make)."""

    decision: Decision | None
    move: Move
    spec: TraderSpec | None = None
    earlier: tuple[Decision, ...] | None = None


class AnalyzerStage:
    name = "analyzer"

    def __init__(
        self,
        analyst: Analyst,
        *,
        owner: str,
        batch: int = DEFAULT_BATCH,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> None:
        self.analyst = analyst
        self.owner = owner
        self.batch = batch
        self.lease_ms = lease_ms
        self.handoff = Handoff(owner, lease_ms)
        """Where the screen's new signals come, leased to this stage (`SignalManager`)."""

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """New signals are the queue; a close adds to it through the signal stage."""

    async def run(self, view: MarketView) -> int:
        async def claim(limit: int) -> list[AnalysisContext]:
            await self.analyst.gate.wait_open()
            now = self.analyst.clock.now()
            handed = await self.handoff.take_or_claim(
                self.analyst.signals, SignalStatus.NEW, now, limit
            )
            return await self.analyst.prepare(handed, view)

        return await self.analyst.under_way.work_through(claim, self._analyze, self.batch)

    async def _analyze(self, context: AnalysisContext) -> bool:
        try:
            decision = await self.analyst.decide(context)
            await self.analyst.settle(context, decision, self.owner)
        except Exception:
            log.exception("signal %s: analysis not recorded; its lease runs out", context.signal.id)
            return False
        return True
