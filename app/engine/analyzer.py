"""The analyzer stage: every new signal gets a recorded decision and moves on.

It claims new signals (a lease in the signal store, owned by this process, so two engine
processes never analyze one signal and a crashed one's claims run out), analyzes up to
`batch` of them at once and claims more as each one finishes (`work_through`: one slow
model answer never holds up the rest; the model client bounds how many calls run per user
and in all, so a burst of signals waits for slots instead of flooding the quota), records
each decision, and moves
its signal by what was decided: `enter_trade` -> ready (for the trade stage),
`good_setup` -> watching (parked until its next candle closes, for the signal monitor),
`bad_setup` -> rejected. It runs in its own task live, so a model that takes seconds never
delays the next screen; a backtest drains it after each close.

`Analyst` is what the analyzer and the signal monitor share: decide on a signal with its
context, record the decision, and move the signal accordingly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.domain.decision import Decision
from app.domain.enums import SignalStatus
from app.domain.intervals import interval_ms
from app.domain.signal import Signal
from app.domain.signal_lifecycle import status_after
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisEngine, rejection
from app.engine.analysis.context import ContextBuilder
from app.engine.clock import Clock
from app.engine.ports import DecisionRepository, Notifier, SignalRepository, TraderRepository
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 600_000
DEFAULT_BATCH = 40


async def work_through(
    claim: Callable[[int], Awaitable[list[Signal]]],
    handle: Callable[[Signal], Coroutine[Any, Any, bool]],
    limit: int,
) -> int:
    """Handle claimed signals, `limit` at a time, claiming more whenever one finishes,
    until none is left to claim; how many were handled (`handle` says whether it did)."""
    handled = 0
    running: set[asyncio.Task[bool]] = set()
    try:
        while True:
            if len(running) < limit:
                for signal in await claim(limit - len(running)):
                    running.add(asyncio.create_task(handle(signal)))
            if not running:
                return handled
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            handled += sum(task.result() for task in done)
    finally:
        for task in running:
            task.cancel()


class Analyst:
    def __init__(
        self,
        engine: AnalysisEngine,
        contexts: ContextBuilder,
        decisions: DecisionRepository,
        signals: SignalRepository,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.contexts = contexts
        self.decisions = decisions
        self.signals = signals
        self.notifier = notifier
        self.clock = clock

    async def decide(self, signal: Signal, spec: TraderSpec, view: MarketView) -> Decision:
        """Analyze and record; an engine that raises gives a recorded rejection."""
        context = await self.contexts.build(signal, spec, view)
        try:
            decision = await self.engine.analyze(context)
        except Exception as exc:
            log.exception("analysis of signal %s failed", signal.id)
            reason = f"analysis failed: {type(exc).__name__}: {exc}"
            decision = rejection(
                context, self.engine.kind, "The analysis failed; nothing is traded.", reason
            )
        await self.decisions.add(decision)
        return decision

    async def settle(self, signal: Signal, decision: Decision, owner: str) -> Signal | None:
        """Move the signal as the decision says; a watched one waits for its next candle."""
        status, reason = status_after(decision)
        if status == signal.status:
            parked = await self.signals.defer(signal, owner, self.next_check(signal, decision))
            return signal if parked else None
        return await self.move(
            signal,
            status,
            reason,
            owner,
            self.next_check(signal, decision) if status == SignalStatus.WATCHING else None,
        )

    async def move(
        self,
        signal: Signal,
        status: SignalStatus,
        reason: str,
        owner: str,
        not_before: int | None = None,
    ) -> Signal | None:
        moved = await self.signals.transition(
            signal, status, reason, owner, at=self.clock.now(), not_before=not_before
        )
        if moved is None:
            log.info("signal %s moved meanwhile; %s not applied", signal.id, status)
            return None
        await self.notifier.signal_changed(moved)
        return moved

    @staticmethod
    def next_check(signal: Signal, decision: Decision) -> int:
        """When the next candle of the signal's interval after the decision closes."""
        return decision.as_of + interval_ms(signal.interval)


class AnalyzerStage:
    name = "analyzer"

    def __init__(
        self,
        analyst: Analyst,
        traders: TraderRepository,
        *,
        owner: str,
        batch: int = DEFAULT_BATCH,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> None:
        self.analyst = analyst
        self.traders = traders
        self.owner = owner
        self.batch = batch
        self.lease_ms = lease_ms

    async def on_close(self, close: CandleClose, view: MarketView) -> None:
        """New signals are the queue; a close adds to it through the signal stage."""

    async def run(self, view: MarketView) -> int:
        async def claim(limit: int) -> list[Signal]:
            now = self.analyst.clock.now()
            return await self.analyst.signals.claim(
                SignalStatus.NEW, self.owner, now, now + self.lease_ms, limit
            )

        return await work_through(claim, lambda signal: self._analyze(signal, view), self.batch)

    async def _analyze(self, signal: Signal, view: MarketView) -> bool:
        try:
            spec = await self.traders.spec(signal.trader_id)
            if spec is None:
                return False
            decision = await self.analyst.decide(signal, spec, view)
            await self.analyst.settle(signal, decision, self.owner)
        except Exception:
            log.exception("signal %s: analysis not recorded; its lease runs out", signal.id)
            return False
        return True
