"""RuleAnalysisEngine: the offline engine, `app.domain.rule_analysis` as a Decision.

It needs no key, no network and no budget, and it is deterministic, so it serves offline
use, tests and backtests, and stands in whenever no model may answer."""

from __future__ import annotations

import uuid

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.decision_rules import risk_reward
from app.domain.rule_analysis import judge_setup
from app.engine.analysis.base import AnalysisContext


class RuleAnalysisEngine:
    kind = AnalysisEngineKind.RULES

    async def analyze(self, context: AnalysisContext) -> Decision:
        signal = context.signal
        verdict = judge_setup(signal.side, context.series, context.trader.risk, signal.symbol)
        return Decision(
            id=uuid.uuid4(),
            signal_id=signal.id,
            trader_id=context.trader.id,
            action=verdict.action,
            direction=verdict.direction,
            confidence=verdict.confidence,
            reasoning=verdict.reasoning,
            created_at=context.now,
            trade_plan=verdict.trade_plan,
            levels=verdict.levels,
            risk_reward=risk_reward(verdict.direction, verdict.levels),
            engine=self.kind,
            invalid_reason=None if verdict.judged else verdict.reasoning,
            as_of=context.as_of,
        )
