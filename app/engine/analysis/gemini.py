"""GeminiAnalysisEngine: the model decides, its answer is checked, and it is asked once to
repair an answer that cannot be used.

The conversation is at most two requests. The first answer must parse against the schema
and pass `decision_rules` (levels on the right side, a stop within the trader's stop loss,
enough reward); if it does not, the problems go back to the model in one repair request.
A second failure, a refusal or safety block, a timeout, a server that keeps failing: each
is recorded as a `bad_setup` with the reason and nothing trades. When no model may answer
(the user's daily budget is spent, or a replay has no recorded answer) the fallback engine,
the rules, answers instead, and the decision says why.

Which answers it gets is up to its `Answerer`: the live `LlmClient`, or recorded answers
(`recorded`); answers that come from the cache make the decision's engine `cached`.
"""

from __future__ import annotations

from dataclasses import replace

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction
from app.domain.decision_rules import decision_problems
from app.engine.analysis.base import AnalysisContext, AnalysisEngine
from app.engine.analysis.prompt import AnalysisAnswer, analysis_request, decision_of, unusable
from app.engine.llm.client import (
    Answerer,
    InvalidAnswerError,
    LlmAnswer,
    LlmError,
    LlmRequest,
    OfflineError,
    schema_parser,
)

PARSE = schema_parser(AnalysisAnswer)


class GeminiAnalysisEngine:
    kind = AnalysisEngineKind.GEMINI

    def __init__(self, answers: Answerer, model: str, fallback: AnalysisEngine) -> None:
        self.answers = answers
        self.model = model
        self.fallback = fallback

    async def analyze(self, context: AnalysisContext) -> Decision:
        request = analysis_request(context, self.model)
        try:
            first = await self.answers.generate(request, PARSE)
        except OfflineError as exc:
            return await self._offline(context, str(exc))
        except InvalidAnswerError as exc:
            return await self._repair(context, request, exc.text, str(exc), exc)
        except LlmError as exc:
            return unusable(context, self.model, exc, str(exc))
        decision = decision_of(first.value, context, first)
        problems = self._problems(decision, context)
        if not problems:
            return decision
        return await self._repair(context, request, first.text, problems, first)

    def _problems(self, decision: Decision, context: AnalysisContext) -> str:
        found = decision_problems(
            decision, context.trader.risk, context.price, context.signal.symbol
        )
        return "; ".join(found)

    async def _offline(self, context: AnalysisContext, reason: str) -> Decision:
        decision = await self.fallback.analyze(context)
        return replace(decision, fallback_reason=reason)

    async def _repair(
        self,
        context: AnalysisContext,
        request: LlmRequest,
        text: str,
        problems: str,
        spent: LlmAnswer[AnalysisAnswer] | LlmError,
    ) -> Decision:
        try:
            second = await self.answers.generate(request.repair(text, problems), PARSE)
        except OfflineError as exc:
            return await self._offline(
                context, f"{exc}; the model's answer was invalid: {problems}"
            )
        except LlmError as exc:
            failed = unusable(
                context,
                self.model,
                exc,
                f"invalid answer: {problems}; the repair failed: {exc}",
            )
            return _with_cost(replace(failed, repairs=1), spent)
        decision = _with_cost(replace(decision_of(second.value, context, second), repairs=1), spent)
        replayed = isinstance(spent, LlmAnswer) and spent.cached and second.cached
        engine = AnalysisEngineKind.CACHED if replayed else AnalysisEngineKind.GEMINI
        decision = replace(decision, engine=engine)
        still = self._problems(decision, context)
        if still:
            return replace(
                decision,
                action=DecisionAction.BAD_SETUP,
                invalid_reason=f"still invalid after one repair: {still}",
            )
        return decision


def _with_cost(decision: Decision, spent: LlmAnswer[AnalysisAnswer] | LlmError) -> Decision:
    """The decision with the first request's cost added: a decision costs both requests."""
    return replace(
        decision,
        prompt_hash=spent.prompt_hash or decision.prompt_hash,
        input_tokens=decision.input_tokens + spent.input_tokens,
        output_tokens=decision.output_tokens + spent.output_tokens,
        latency_ms=decision.latency_ms + spent.latency_ms,
    )
