"""FilterOnlyEngine: no analysis, `app.domain.filter_entry` as a Decision: every signal is
entered with the trader's own stop loss and take profit.

For traders whose filter is their strategy. It needs no key, no network and no budget, and
it is deterministic. Chosen live with `TRADERS_ANALYSIS_ENGINE=filter`, and per backtest
(`analysis: FILTER`, `traders backtest --analysis filter`)."""

from __future__ import annotations

import uuid

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.decision_rules import risk_reward
from app.domain.filter_entry import CONFIDENCE, filter_entry
from app.engine.analysis.base import AnalysisContext


class FilterOnlyEngine:
    kind = AnalysisEngineKind.FILTER

    async def analyze(self, context: AnalysisContext) -> Decision:
        signal = context.signal
        verdict = filter_entry(signal.side, context.price, context.trader.risk, signal.symbol)
        return Decision(
            id=uuid.uuid4(),
            signal_id=signal.id,
            trader_id=context.trader.id,
            action=verdict.action,
            direction=signal.side,
            confidence=CONFIDENCE,
            reasoning=verdict.reasoning,
            created_at=context.now,
            trade_plan=verdict.trade_plan,
            levels=verdict.levels,
            risk_reward=risk_reward(signal.side, verdict.levels),
            engine=self.kind,
            as_of=context.as_of,
        )
