"""The outcome stage: each decision is judged once the candles after it say how it went.

It runs on the clock like every stage, so a backtest judges its decisions exactly as the
live engine does. Each unjudged decision is looked at when the next candle of its signal's
interval has closed (`app.domain.decision_quality.label_outcome`): judged, its outcome is
recorded; not yet known, it is looked at again one candle later (a candle after the newest
one or after now, whichever is later, so a symbol whose feed stopped is not polled), the
decisions due again at one time moved there in one write. The
candles read are the view's, so a judgment never uses a candle that had not closed.
"""

from __future__ import annotations

import logging
import uuid

from app.domain.decision_quality import DEFAULT_HORIZON, Label, label_outcome
from app.domain.intervals import interval_ms
from app.engine.clock import Clock
from app.engine.ports import DecisionRepository, DueOutcome
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500


class OutcomeStage:
    name = "decision outcomes"
    bookkeeping = True

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
        later: dict[int, list[uuid.UUID]] = {}
        for item in due:
            try:
                label = self._judge(item, view)
            except Exception:
                log.exception("judging decision %s failed", item.decision.id)
                continue
            if isinstance(label, Label):
                await self.decisions.record_outcome(item.decision.id, label)
            else:
                later.setdefault(label, []).append(item.decision.id)
        for at, decision_ids in later.items():
            await self.decisions.check_outcome_later(decision_ids, at)
        return len(due)

    def _judge(self, item: DueOutcome, view: MarketView) -> Label | int:
        """The decision's outcome, or when to look again (not known yet)."""
        decision = item.decision
        candles = view.candles(item.symbol, item.interval)
        since = int(candles.time.searchsorted(decision.as_of, side="left"))
        label = label_outcome(
            decision.direction,
            decision.levels,
            decision.as_of,
            candles.time[since:].tolist(),
            candles.high[since:].tolist(),
            candles.low[since:].tolist(),
            self.horizon,
        )
        if label is not None:
            return label
        length = interval_ms(item.interval)
        newest = int(candles.time[-1]) + length if len(candles.time) else decision.as_of
        return max(newest, decision.as_of, self.clock.now()) + length
