"""AnalysisReviewer: the analysis engine asked whether an open position's setup still holds.

Every `review_candles` candles a position is held, the exit stage asks it to hold or close
(`PositionReviewer`). Rather than a second, position-shaped prompt and rule set beside the
entry analysis, the reviewer puts the position to the same engine as the signal that opened
it, re-checked on the market of now: the trader's strategy, the candles of its timeframes,
its positions, and the earlier decisions on that signal. Whatever engine answers (the model,
a recorded answer, the rule engine), a setup it now calls bad, or one it now reads in the
other direction, closes the position; a setup it still likes holds it.

An answer that is no answer (unparsable, over budget, a failed call: a decision with an
`invalid_reason`) holds too: garbage from a model never closes a position.
"""

from __future__ import annotations

from decimal import Decimal

from app.domain.decision import Decision, DecisionAction
from app.domain.enums import SignalStatus
from app.domain.exits import Review
from app.domain.intervals import interval_ms
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.context import ContextBuilder
from app.engine.screening import MarketView


class AnalysisReviewer:
    def __init__(self, engine: AnalysisEngine, contexts: ContextBuilder) -> None:
        self.engine = engine
        self.contexts = contexts

    async def review(self, spec: TraderSpec, trade: Trade, view: MarketView) -> Review:
        decision = await self.engine.analyze(
            await self.contexts.build(self._position_signal(spec, trade), spec, view)
        )
        return self._verdict(trade, decision)

    def _position_signal(self, spec: TraderSpec, trade: Trade) -> Signal:
        """The position as the signal that opened it, entered, at the last closed candle."""
        now = self.contexts.clock.now()
        step = interval_ms(spec.interval)
        return Signal(
            id=trade.signal_id or trade.id,
            trader_id=trade.trader_id,
            owner_id=trade.owner_id,
            symbol=trade.symbol,
            interval=spec.interval,
            side=trade.side,
            price=trade.entry_price or Decimal(0),  # open positions have one; analyses
            # price at the last close (`AnalysisContext.price`) anyway
            candle_time=now - now % step - step,
            created_at=trade.opened_at,
            status=SignalStatus.ENTERED,
        )

    @staticmethod
    def _verdict(trade: Trade, decision: Decision) -> Review:
        said = f"{decision.engine.value} review, confidence {decision.confidence:.2f}"
        if decision.invalid_reason is not None:
            return Review(close=False, reason=f"{said}: no usable answer, holding")
        if decision.action == DecisionAction.BAD_SETUP:
            return Review(close=True, reason=f"{said}: {decision.reasoning}")
        if decision.direction != trade.side:
            return Review(
                close=True,
                reason=f"{said}: now reads {decision.direction.value}: {decision.reasoning}",
            )
        return Review(close=False, reason=f"{said}: {decision.reasoning}")
