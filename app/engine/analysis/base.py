"""The `AnalysisEngine` protocol and the context every engine decides on.

An engine takes one signal with its context and answers a `Decision` (app.domain.decision),
whichever engine it is, so the stages never know who answered. The context is everything a
careful analyst would look at, gathered by the stage (`context.ContextBuilder`) from the
market view of the moment: the last candles of the signal's interval and of every other
timeframe the trader's filter reads, the indicator values the filter saw, the ticker, the
trader's strategy and risk settings, its open positions, and on a re-check the earlier
decisions on this signal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction
from app.domain.decision_rules import risk_reward
from app.domain.enums import Side
from app.domain.filter_entry import FilterVerdict
from app.domain.indicators import CandleArrays
from app.domain.intervals import interval_ms
from app.domain.rule_analysis import RuleVerdict
from app.domain.signal import Signal, price_of
from app.domain.trader_spec import TraderSpec
from app.engine.ports import PositionView
from app.engine.sandbox import TickerValues


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    signal: Signal
    trader: TraderSpec
    candles: Mapping[str, CandleArrays]
    ticker: TickerValues | None
    positions: Sequence[PositionView]
    earlier: Sequence[Decision]
    now: int

    @property
    def series(self) -> CandleArrays:
        """The candles of the signal's own interval."""
        return self.candles[self.signal.interval]

    @property
    def price(self) -> Decimal:
        """The last close of the signal's interval: the price the decision is made at."""
        closes = self.series.close
        return price_of(float(closes[-1])) if len(closes) else self.signal.price

    @property
    def as_of(self) -> int:
        """Close time of the newest candle of the signal's interval the analysis sees."""
        times = self.series.time
        if not len(times):
            return self.signal.candle_time + interval_ms(self.signal.interval)
        return int(times[-1]) + interval_ms(self.signal.interval)

    @property
    def recheck(self) -> bool:
        return bool(self.earlier)


def offline_decision(
    context: AnalysisContext,
    engine: AnalysisEngineKind,
    verdict: FilterVerdict | RuleVerdict,
    direction: Side,
    confidence: float,
    invalid_reason: str | None = None,
) -> Decision:
    """The decision an engine without a model (`filter`, `rules`) made on the context's
    signal: the verdict's action, plan and levels, and the risk/reward of those levels."""
    return Decision(
        id=uuid.uuid4(),
        signal_id=context.signal.id,
        trader_id=context.trader.id,
        action=verdict.action,
        direction=direction,
        confidence=confidence,
        reasoning=verdict.reasoning,
        created_at=context.now,
        trade_plan=verdict.trade_plan,
        levels=verdict.levels,
        risk_reward=risk_reward(direction, verdict.levels),
        engine=engine,
        invalid_reason=invalid_reason,
        as_of=context.as_of,
    )


def rejection(
    context: AnalysisContext, engine: AnalysisEngineKind, reasoning: str, reason: str
) -> Decision:
    """A `bad_setup` without levels for an analysis that gave no usable answer (why is
    `reason`): recorded like any decision, it trades nothing."""
    return Decision(
        id=uuid.uuid4(),
        signal_id=context.signal.id,
        trader_id=context.trader.id,
        action=DecisionAction.BAD_SETUP,
        direction=context.signal.side,
        confidence=0.0,
        reasoning=reasoning,
        created_at=context.now,
        engine=engine,
        invalid_reason=reason,
        as_of=context.as_of,
    )


class AnalysisEngine(Protocol):
    kind: AnalysisEngineKind

    async def analyze(self, context: AnalysisContext) -> Decision:
        """Decide on the context's signal; never raises for a bad answer of a model (that is
        a recorded `bad_setup`), only for a bug."""
        ...
