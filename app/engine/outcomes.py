"""The outcome stage: each decision is judged once the candles after it say how it went.

It runs on the clock like every stage, so a backtest judges its decisions exactly as the
live engine does. Each unjudged decision is looked at when the next candle of its signal's
interval has closed (`app.domain.decision_quality.label_outcome`): judged, its outcome is
recorded; not yet known, it is looked at again one candle later (a candle after the newest
one or after now, whichever is later, so a symbol whose feed stopped is not polled), the
decisions due again at one time moved there in one write. The candles read are the view's,
so a judgment never uses a candle that had not closed; each symbol's are read once per
run, however many of its decisions are due.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from app.domain.decision_quality import DEFAULT_HORIZON, Label, label_outcome
from app.domain.intervals import interval_ms
from app.domain.trader_spec import TraderSpec
from app.engine.clock import Clock
from app.engine.ports import DecisionRepository, DueOutcome
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500


class _Series(NamedTuple):
    """A symbol's candles from the oldest due decision on, and its newest candle's time."""

    times: list[int]
    highs: list[float]
    lows: list[float]
    newest: int | None


def _read(view: MarketView, key: tuple[str, str], since: int) -> _Series:
    candles = view.candles(*key)
    first = int(candles.time.searchsorted(since))
    return _Series(
        candles.time[first:].tolist(),
        candles.high[first:].tolist(),
        candles.low[first:].tolist(),
        int(candles.time[-1]) if len(candles.time) else None,
    )


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

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """Decisions wait for their next look in the store; nothing to note."""

    async def run(self, view: MarketView) -> int:
        due = await self.decisions.outcomes_due(self.clock.now(), self.batch)
        by_series: dict[tuple[str, str], list[DueOutcome]] = {}
        later: dict[int, list[uuid.UUID]] = {}
        for item in due:
            by_series.setdefault((item.symbol, item.interval), []).append(item)
        for key, items in by_series.items():
            try:
                series = _read(view, key, min(item.decision.as_of for item in items))
            except Exception:
                log.exception("reading the %s candles of %s failed", key[1], key[0])
                continue
            for item in items:
                try:
                    label = self._judge(item, series)
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

    def _judge(self, item: DueOutcome, candles: _Series) -> Label | int:
        """The decision's outcome, or when to look again (not known yet)."""
        decision = item.decision
        since = bisect.bisect_left(candles.times, decision.as_of)
        label = label_outcome(
            decision.direction,
            decision.levels,
            decision.as_of,
            candles.times[since:],
            candles.highs[since:],
            candles.lows[since:],
            self.horizon,
        )
        if label is not None:
            return label
        length = interval_ms(item.interval)
        newest = decision.as_of if candles.newest is None else candles.newest + length
        return max(newest, decision.as_of, self.clock.now()) + length
