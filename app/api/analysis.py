"""Analysis queries: how good a trader's decisions were, and what the caller's model usage is.

`analysisQuality` reads the outcomes the engine's outcome stage recorded; it needs no candles
here, so it answers with the engine running elsewhere too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.api.analysis_types import AnalysisQuality, LlmUsage
from app.api.types import Info
from app.domain.decision import AnalysisEngineKind
from app.engine.clock import to_datetime
from app.services.analysis import analysis_quality, usage_today


@strawberry.type
class AnalysisQuery:
    @strawberry.field(
        description="Outcomes of a trader's decisions (rejections included) made in "
        "[from, to): counts and hit rates per engine and decision, and calibration"
    )
    async def analysis_quality(
        self,
        info: Info,
        trader_id: strawberry.ID,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> AnalysisQuality:
        user = info.context.require_user()
        trader = await info.context.traders.get(user, trader_id)
        report = await analysis_quality(trader.id, from_, to)
        horizon = info.context.runtime.settings.outcome_horizon_candles
        return AnalysisQuality.from_report(str(trader.id), horizon, report)

    @strawberry.field(description="The caller's model calls and tokens today, and the budget")
    async def llm_usage(self, info: Info) -> LlmUsage:
        user = info.context.require_user()
        settings = info.context.runtime.settings
        usage = await usage_today(user.id)
        budget = settings.llm_daily_tokens_per_user
        gemini = info.context.runtime.llm is not None
        engine = AnalysisEngineKind.GEMINI if gemini else AnalysisEngineKind.RULES
        return LlmUsage(
            engine=AnalysisEngineKind.FILTER if settings.analysis_engine == "filter" else engine,
            model=settings.gemini_model if gemini else None,
            since=to_datetime(usage.since),
            calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            daily_token_budget=budget,
            remaining_tokens=max(0, budget - usage.input_tokens - usage.output_tokens),
        )
