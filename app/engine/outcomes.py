"""The outcome stage: each decision is judged once the candles after it say how it went.

It runs on the clock like every stage, so a backtest judges its decisions exactly as the
live engine does. Each unjudged decision is looked at when the next candle of its signal's
interval has closed (`app.domain.decision_quality.label_outcome`): judged, its outcome is
recorded; not yet known, it is looked at again one candle later (a candle after the newest
one or after now, whichever is later, so a symbol whose feed stopped is not polled). The
candles read are the view's, so a judgment never uses a candle that had not closed; each
symbol's are read once per run, however many of its decisions are due.
"""

from __future__ import annotations

import bisect
import logging

from app.domain.decision_quality import DEFAULT_HORIZON, label_outcome
from app.domain.intervals import interval_ms
from app.engine.clock import Clock
from app.engine.ports import DecisionRepository, DueOutcome
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500

_Series = tuple[list[int], list[float], list[float]]  # open times, highs, lows


class OutcomeStage:
    name = "decision outcomes"

    def __init__(
        self,
        decisions: DecisionRepository,
        clock: Clock,
        *,
        horizon: int = DEFAULT_HORIZON,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.decisions = decisions
        self.clock = clock
        self.horizon = horizon
        self.batch = batch

    async def on_close(self, close: CandleClose, view: MarketView) -> None:
        """Decisions wait for their next look in the store; nothing to note."""

    async def run(self, view: MarketView) -> int:
        due = await self.decisions.outcomes_due(self.clock.now(), self.batch)
        series: dict[tuple[str, str], _Series] = {}
        for item in due:
            key = (item.symbol, item.interval)
            try:
                if key not in series:
                    candles = view.candles(*key)
                    series[key] = (
                        candles.time.tolist(),
                        candles.high.tolist(),
                        candles.low.tolist(),
                    )
                await self._judge(item, series[key])
            except Exception:
                log.exception("judging decision %s failed", item.decision.id)
        return len(due)

    async def _judge(self, item: DueOutcome, candles: _Series) -> None:
        decision = item.decision
        times, highs, lows = candles
        since = bisect.bisect_left(times, decision.as_of)
        label = label_outcome(
            decision.direction,
            decision.levels,
            decision.as_of,
            times[since:],
            highs[since:],
            lows[since:],
            self.horizon,
        )
        if label is not None:
            await self.decisions.record_outcome(decision.id, label)
            return
        length = interval_ms(item.interval)
        newest = times[-1] + length if times else decision.as_of
        later = max(newest, decision.as_of, self.clock.now()) + length
        await self.decisions.check_outcome_later(decision.id, later)
