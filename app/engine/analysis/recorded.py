"""Recorded model answers: a replay analyzes with the answers a live run got, and no call.

A backtest must not call a model (cost, speed, and a model's answer changes from one day to
the next), yet a backtest of a model-driven trader should see what the model said. The
response cache holds every parsed answer by model, schema version and prompt hash, and the
prompt depends only on the signal and its candles, so a replay of the same market asks the
same questions and finds the same answers. `RecordedAnswers` answers from the cache only;
a question never asked live is an `OfflineError`, and the engine's fallback (the rules)
answers it, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.domain.llm import cache_key
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.gemini import GeminiAnalysisEngine
from app.engine.llm.client import AnswerError, LlmAnswer, LlmRequest, OfflineError
from app.engine.llm.ports import ResponseCache

T = TypeVar("T")


class NotRecordedError(OfflineError):
    """No answer was recorded for this request."""


class RecordedAnswers:
    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def generate(self, request: LlmRequest, parse: Callable[[str], T]) -> LlmAnswer[T]:
        digest = request.digest()
        recorded = await self.cache.get(cache_key(request.model, request.schema_version, digest))
        if recorded is None:
            raise NotRecordedError(None, f"no recorded {request.model} answer for this prompt")
        try:
            value = parse(recorded.text)
        except AnswerError as exc:
            raise NotRecordedError(None, f"the recorded answer no longer parses: {exc}") from None
        return LlmAnswer(value, recorded.text, recorded.model, digest, 0, 0, 0.0, True, 0)


def recorded_engine(
    cache: ResponseCache, model: str, fallback: AnalysisEngine
) -> GeminiAnalysisEngine:
    """The model engine on recorded answers: the live conversation, replayed."""
    return GeminiAnalysisEngine(RecordedAnswers(cache), model, fallback)
