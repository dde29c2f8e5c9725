"""The workflow of one engine: the stages, run for each candle close, whoever drives them.

`on_close` is the fast path of a candle close: read the traders of the interval as they are
now, screen them on the market view of that close, and turn each outcome into signals.
Stages further down (analysis, monitors, trading) take their work from the durable state the
signal stage leaves (a signal's status), so a slow one never holds up the next screen.

The live engine calls `on_close` from its close trigger; a backtest calls it from its replay
loop with a replayed view. Nothing here knows which clock drives it.
"""

from __future__ import annotations

import logging

from app.engine.ports import TraderRepository
from app.engine.sandbox import SandboxError
from app.engine.screening import CandleClose, MarketView, Screen, ScreenerEngine, ScreenReport
from app.engine.signals import SignalManager

log = logging.getLogger(__name__)


class Workflow:
    def __init__(
        self, traders: TraderRepository, screener: ScreenerEngine, signals: SignalManager
    ) -> None:
        self.traders = traders
        self.screener = screener
        self.signals = signals

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
        return screen.report
