"""RuleAnalysisEngine: the offline engine, `app.domain.rule_analysis` as a Decision.

It needs no key, no network and no budget, and it is deterministic, so it serves offline
use, tests and backtests, and stands in whenever no model may answer."""

from __future__ import annotations

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.rule_analysis import judge_setup
from app.engine.analysis.base import AnalysisContext, offline_decision


class RuleAnalysisEngine:
    kind = AnalysisEngineKind.RULES

    async def analyze(self, context: AnalysisContext) -> Decision:
        signal = context.signal
        verdict = judge_setup(signal.side, context.series, context.trader.risk, signal.symbol)
        invalid = None if verdict.judged else verdict.reasoning
        return offline_decision(
            context, self.kind, verdict, verdict.direction, verdict.confidence, invalid
        )
