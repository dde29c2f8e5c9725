"""FilterOnlyEngine: no analysis, `app.domain.filter_entry` as a Decision: every signal is
entered with the trader's own stop loss and take profit.

For traders whose filter is their strategy. It needs no key, no network and no budget, and
it is deterministic. Chosen live with `TRADERS_ANALYSIS_ENGINE=filter`, and per backtest
(`analysis: FILTER`, `traders backtest --analysis filter`)."""

from __future__ import annotations

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.filter_entry import CONFIDENCE, filter_entry
from app.engine.analysis.base import AnalysisContext, offline_decision


class FilterOnlyEngine:
    kind = AnalysisEngineKind.FILTER

    async def analyze(self, context: AnalysisContext) -> Decision:
        signal = context.signal
        verdict = filter_entry(signal.side, context.price, context.trader.risk, signal.symbol)
        return offline_decision(context, self.kind, verdict, signal.side, CONFIDENCE)
