"""The workflow of one engine: the stages, run for each candle close, whoever drives them.

`on_close` is the fast path of a candle close: read the traders of the interval as they are
now, screen them on the market view of that close, turn each outcome into signals, and let
every later stage note what the close made due. Those stages (analysis, monitors, trading)
take their work from durable state (a signal's status, an open position), never from a
call chain, so a slow one never holds up the next screen: the live engine runs each one in
a task of its own, woken after every close (`LiveEngine`); a backtest runs them one after
the other until none has anything left (`drain`), which makes it deterministic.

The live engine calls `on_close` from its close trigger; a backtest calls it from its replay
loop with a replayed view. Nothing here knows which clock drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from app.engine.ports import TraderRepository
from app.engine.sandbox import SandboxError
from app.engine.screening import CandleClose, MarketView, Screen, ScreenerEngine, ScreenReport
from app.engine.signals import SignalManager

log = logging.getLogger(__name__)


class Stage(Protocol):
    """A stage after the signal stage, working from durable state."""

    name: str

    async def on_close(self, close: CandleClose, view: MarketView) -> None:
        """Note what this close makes due; fast (no model call, no order)."""
        ...

    async def run(self, view: MarketView) -> int:
        """Work through what is due now, on the market as `view` shows it; how many items
        were handled (0: nothing was due)."""
        ...


class Workflow:
    def __init__(
        self,
        traders: TraderRepository,
        screener: ScreenerEngine,
        signals: SignalManager,
        stages: Sequence[Stage] = (),
    ) -> None:
        self.traders = traders
        self.screener = screener
        self.signals = signals
        self.stages = tuple(stages)

    async def drain(self, view: MarketView) -> int:
        """Run the later stages, in order, until none has anything due; the items handled."""
        total = 0
        while done := sum([await stage.run(view) for stage in self.stages]):
            total += done
        return total

    async def on_close(self, close: CandleClose, view: MarketView) -> ScreenReport | None:
        """Screen the close and record signals; None when the sandbox failed (logged)."""
        specs = await self.traders.running(close.interval)
        try:
            screen: Screen = await self.screener.screen(close, specs, view)
        except SandboxError:
            log.exception("screening %s at %s skipped: the sandbox failed", close.interval, close)
            return None
        for spec in specs:
            outcome = screen.outcomes.get(spec.id)
            if outcome is None:
                continue
            try:
                await self.signals.record_run(spec, outcome)
            except Exception:
                log.exception("recording the run of trader %s failed", spec.id)
        for stage in self.stages:
            try:
                await stage.on_close(close, view)
            except Exception:
                log.exception("stage %s failed on the %s close", stage.name, close.interval)
        return screen.report
