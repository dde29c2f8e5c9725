"""The Gemini analysis engine on the fake server: a checked decision, one repair, and a
recorded rejection or fallback for every kind of garbage a model can send."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.domain.decision import AnalysisEngineKind, DecisionAction
from app.domain.enums import Side
from app.domain.llm import CallOutcome, LlmCall, Purpose
from app.engine.analysis.base import AnalysisContext
from app.engine.analysis.context import ContextBuilder
from app.engine.analysis.gemini import GeminiAnalysisEngine
from app.engine.analysis.recorded import recorded_engine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.clock import RealtimeClock
from app.engine.llm.client import LlmLimits
from app.engine.memory import (
    MemoryCallLog,
    MemoryDecisionRepository,
    MemoryResponseCache,
    MemorySignalRepository,
    MemoryTradeStore,
)
from tests.analysis.conftest import FAST, Clients, signal_on, simulated_store, spec, view_of
from tests.fakes.gemini import (
    FakeGemini,
    Received,
    Reply,
    analysis_answer,
    answer,
    blocked_prompt,
    rate_limited,
    server_error,
    slow,
    stopped,
    trade,
    wrong_side,
)

MODEL = "gemini-2.5-flash"
MULTI_TIMEFRAME = "higher = timeframes['4h']\nreturn higher.close[-1] > 0 and rsi(candles)[-1] < 99"


async def context(filter_code: str = MULTI_TIMEFRAME) -> AnalysisContext:
    view = view_of(simulated_store())
    trader = spec(filter_code=filter_code)
    decisions = MemoryDecisionRepository(MemorySignalRepository())
    builder = ContextBuilder(decisions, MemoryTradeStore(), RealtimeClock())
    return await builder.build(signal_on(trader, view), trader, view)


def too_little_reward(request: Received) -> Reply:
    return answer(trade(request, multiples=(1.0, 1.2)))


def engine_on(
    clients: Clients, calls: MemoryCallLog, limits: LlmLimits = FAST, **kw: object
) -> GeminiAnalysisEngine:
    client = clients.client(limits, calls=calls, **kw)  # type: ignore[arg-type]
    return GeminiAnalysisEngine(client, MODEL, RuleAnalysisEngine())


async def test_the_model_decides_on_the_whole_context(gemini: FakeGemini, clients: Clients) -> None:
    calls = MemoryCallLog()
    ctx = await context()
    gemini.then(analysis_answer)
    decision = await engine_on(clients, calls).analyze(ctx)

    assert decision.action == DecisionAction.ENTER_TRADE
    assert decision.engine == AnalysisEngineKind.GEMINI and decision.model == MODEL
    assert decision.levels.entry == ctx.price
    assert decision.risk_reward == Decimal(2)
    assert decision.input_tokens == calls.calls[0].input_tokens > 0
    assert decision.prompt_hash == calls.calls[0].prompt_hash
    assert decision.as_of == ctx.as_of and decision.repairs == 0
    prompt = gemini.requests[0].prompt
    assert "Candles 1h, oldest first" in prompt and "Candles 4h, oldest first" in prompt
    assert prompt.count("\n", prompt.index("Candles 1h")) > 100
    assert "Buy dips in an uptrend." in prompt
    assert "the stop at most 5% from the entry" in prompt and "at least 1.5 times" in prompt
    document = json.loads(prompt.split("```json", 1)[1].split("```", 1)[0])
    assert document["signal"]["indicators"] == {"1h.rsi(14)": 27.5}
    assert document["trader"]["risk"]["stop_loss"] == "5"


async def test_levels_on_the_wrong_side_get_one_repair(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(wrong_side, analysis_answer)
    decision = await engine_on(clients, calls).analyze(await context())
    assert decision.action == DecisionAction.ENTER_TRADE
    assert decision.repairs == 1
    repair = gemini.requests[1].prompt
    assert "It cannot be used: a long needs stop < entry < TP1 < TP2 < TP3" in repair
    assert [c.purpose for c in calls.calls] == [Purpose.ANALYSIS, Purpose.ANALYSIS_REPAIR]
    assert decision.input_tokens == sum(c.input_tokens for c in calls.calls)
    assert decision.prompt_hash == calls.calls[0].prompt_hash


async def test_invalid_json_gets_one_repair(gemini: FakeGemini, clients: Clients) -> None:
    gemini.then(answer("Sure! Here is my analysis: BUY"), analysis_answer)
    decision = await engine_on(clients, MemoryCallLog()).analyze(await context())
    assert (decision.action, decision.repairs) == (DecisionAction.ENTER_TRADE, 1)
    assert "Your previous answer:\nSure! Here is my analysis: BUY" in gemini.requests[1].prompt


def missing_levels(request: Received) -> Reply:
    body = trade(request)
    del body["key_levels"]
    return answer(body)


def confidence_as_text(request: Received) -> Reply:
    return answer({**trade(request), "confidence": "high"})


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        (answer("not json"), answer("still not json"), "Invalid JSON"),
        (missing_levels, missing_levels, "key_levels: Field required"),
        (confidence_as_text, confidence_as_text, "confidence: Input should be a valid number"),
        (wrong_side, wrong_side, "still invalid after one repair: a long needs stop < entry"),
        (too_little_reward, too_little_reward, "at least 1.5 is needed"),
    ],
    ids=["invalid json", "missing fields", "wrong types", "levels on the wrong side", "reward"],
)
async def test_garbage_twice_is_a_recorded_rejection(
    gemini: FakeGemini, clients: Clients, first: object, second: object, reason: str
) -> None:
    calls = MemoryCallLog()
    gemini.then(first, second)  # type: ignore[arg-type]
    decision = await engine_on(clients, calls).analyze(await context())
    assert decision.action == DecisionAction.BAD_SETUP
    assert decision.engine == AnalysisEngineKind.GEMINI
    assert reason in (decision.invalid_reason or "")
    assert decision.repairs == 1
    assert len(calls.calls) == 2
    assert decision.input_tokens == sum(c.input_tokens for c in calls.calls)


@pytest.mark.parametrize(
    ("script", "outcome", "reason"),
    [
        ([blocked_prompt()], [CallOutcome.BLOCKED], "the prompt was blocked: SAFETY"),
        ([stopped()], [CallOutcome.BLOCKED], "the answer was stopped: SAFETY"),
        ([server_error()] * 4, [CallOutcome.SERVER_ERROR] * 4, "after 4 attempts"),
        ([slow(answer("{}"), 5.0)], [CallOutcome.TIMEOUT], "no answer within 0.5 s"),
    ],
    ids=["prompt blocked", "safety stop", "repeated 500s", "timeout"],
)
async def test_no_answer_is_a_recorded_rejection_without_repair(
    gemini: FakeGemini,
    clients: Clients,
    script: list[Reply],
    outcome: list[CallOutcome],
    reason: str,
) -> None:
    calls = MemoryCallLog()
    gemini.then(*script)
    limits = LlmLimits(timeout_seconds=0.5, initial_backoff=0.01, max_backoff=0.02)
    decision = await engine_on(clients, calls, limits).analyze(await context())
    assert decision.action == DecisionAction.BAD_SETUP
    assert reason in (decision.invalid_reason or "")
    assert decision.confidence == 0 and decision.levels.entry is None
    assert [c.outcome for c in calls.calls] == outcome


async def test_429_then_success_is_an_ordinary_decision(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(rate_limited("0.05s"), analysis_answer)
    decision = await engine_on(clients, calls).analyze(await context())
    assert decision.action == DecisionAction.ENTER_TRADE
    assert [c.outcome for c in calls.calls] == [CallOutcome.RATE_LIMITED, CallOutcome.OK]


async def test_a_spent_budget_makes_the_rules_answer_and_say_so(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    ctx = await context()
    await calls.record(
        LlmCall(
            ctx.signal.owner_id,
            Purpose.ANALYSIS,
            MODEL,
            "h",
            1,
            CallOutcome.OK,
            600,
            500,
            1.0,
            RealtimeClock().now(),
        )
    )
    limits = LlmLimits(daily_tokens_per_user=1000)
    decision = await engine_on(clients, calls, limits).analyze(ctx)
    assert gemini.requests == []
    assert decision.engine == AnalysisEngineKind.RULES
    assert "daily model budget of 1000 tokens is spent" in (decision.fallback_reason or "")
    assert decision.direction == Side.LONG


async def test_the_same_analysis_twice_makes_one_call(gemini: FakeGemini, clients: Clients) -> None:
    calls, cache = MemoryCallLog(), MemoryResponseCache()
    engine = engine_on(clients, calls, cache=cache)
    ctx = await context()
    gemini.then(analysis_answer)
    first = await engine.analyze(ctx)
    again = await engine.analyze(ctx)
    assert len(gemini.requests) == 1 and len(calls.calls) == 1
    assert first.engine == AnalysisEngineKind.GEMINI
    assert again.engine == AnalysisEngineKind.CACHED
    assert (again.input_tokens, again.levels) == (0, first.levels)

    replay = recorded_engine(cache, MODEL, RuleAnalysisEngine())
    replayed = await replay.analyze(ctx)
    assert (replayed.engine, replayed.levels) == (AnalysisEngineKind.CACHED, first.levels)
    unknown = await replay.analyze(await context("return rsi(candles)[-1] < 99"))
    assert unknown.engine == AnalysisEngineKind.RULES
    assert "no recorded gemini-2.5-flash answer" in (unknown.fallback_reason or "")
    assert len(gemini.requests) == 1
