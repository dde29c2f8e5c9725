"""The model client: the real google-genai client against the fake Gemini server on loopback.

Every failure mode a model has is scripted on the server, and every attempt must be in the
record with its outcome and tokens: retries on 429 (honouring RetryInfo) and 5xx only, no
retry on other 4xx, timeouts, blocked prompts and answers that do not parse; the cache
answers a repeated request without a call; the budget stops calls once spent; concurrency
is bounded per user and in all.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from app.db.models import LlmCall, LlmResponse, User
from app.domain.llm import CallOutcome, Purpose
from app.domain.llm import LlmCall as CallValue
from app.engine.clock import RealtimeClock, to_ms
from app.engine.llm.client import (
    BudgetExhaustedError,
    InvalidAnswerError,
    LlmClient,
    LlmError,
    LlmLimits,
    LlmRequest,
    gemini_models,
    schema_parser,
)
from app.engine.llm.ports import CachedAnswer
from app.engine.memory import MemoryCallLog, MemoryResponseCache
from app.services.repositories.llm import DbCallLog, DbResponseCache
from tests.analysis.conftest import FAST, Clients
from tests.fakes.gemini import (
    FakeGemini,
    answer,
    blocked_prompt,
    client_error,
    rate_limited,
    server_error,
    slow,
    stopped,
)

MODEL = "gemini-2.5-flash"


class Verdict(BaseModel):
    model_config = ConfigDict(strict=True)
    decision: str
    confidence: float


PARSE = schema_parser(Verdict)
GOOD: dict[str, Any] = {"decision": "enter", "confidence": 0.8}


def request(prompt: str = "analyze BTC", owner_id: int = 1, model: str = MODEL) -> LlmRequest:
    return LlmRequest(Purpose.ANALYSIS, owner_id, model, "You are an analyst.", prompt, Verdict, 1)


def outcomes(calls: MemoryCallLog) -> list[CallOutcome]:
    return [call.outcome for call in calls.calls]


async def test_a_structured_call_speaks_the_api_and_is_recorded(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(answer(GOOD))
    got = await clients.client(calls=calls).generate(request(), PARSE)

    assert got.value == Verdict(**GOOD)
    sent = gemini.requests[0]
    assert sent.model == MODEL
    assert sent.headers["x-goog-api-key"] == "test-gemini-key"
    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["type"] == "OBJECT"
    assert set(config["responseSchema"]["properties"]) == {"decision", "confidence"}
    assert sent.system == "You are an analyst."
    assert sent.prompt == "analyze BTC"
    [call] = calls.calls
    assert call.outcome == CallOutcome.OK
    assert (call.input_tokens, call.output_tokens) == (got.input_tokens, got.output_tokens)
    assert call.input_tokens > 0 and call.output_tokens > 0
    assert call.prompt_hash == got.prompt_hash == request().digest()
    assert call.latency_ms > 0 and call.model == MODEL and call.purpose == Purpose.ANALYSIS


async def test_429_is_retried_after_the_delay_the_api_asks_for(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(rate_limited("0.4s"), answer(GOOD))
    started = time.perf_counter()
    got = await clients.client(calls=calls).generate(request(), PARSE)
    assert time.perf_counter() - started >= 0.4
    assert got.attempts == 2
    assert outcomes(calls) == [CallOutcome.RATE_LIMITED, CallOutcome.OK]
    assert "RESOURCE_EXHAUSTED" in (calls.calls[0].error or "")


async def test_a_429_asking_for_hours_fails_at_once(gemini: FakeGemini, clients: Clients) -> None:
    calls = MemoryCallLog()
    gemini.then(rate_limited("52758s"))
    with pytest.raises(LlmError, match="retry in 52758 s") as failure:
        await clients.client(calls=calls).generate(request(), PARSE)
    assert failure.value.outcome == CallOutcome.RATE_LIMITED
    assert outcomes(calls) == [CallOutcome.RATE_LIMITED]


async def test_5xx_is_retried_with_backoff_until_the_attempts_run_out(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(server_error(503), answer(GOOD))
    assert (await clients.client(calls=calls).generate(request("a"), PARSE)).attempts == 2
    gemini.then(*[server_error(500)] * 4)
    with pytest.raises(LlmError, match="after 4 attempts") as failure:
        await clients.client(calls=calls).generate(request("b"), PARSE)
    assert failure.value.outcome == CallOutcome.SERVER_ERROR
    assert outcomes(calls) == [
        CallOutcome.SERVER_ERROR,
        CallOutcome.OK,
        *[CallOutcome.SERVER_ERROR] * 4,
    ]
    assert [call.attempt for call in calls.calls] == [1, 2, 1, 2, 3, 4]


async def test_other_4xx_are_not_retried(gemini: FakeGemini, clients: Clients) -> None:
    calls = MemoryCallLog()
    gemini.then(client_error("* GenerateContentRequest.model: unexpected model name format"))
    with pytest.raises(LlmError, match="400 INVALID_ARGUMENT") as failure:
        await clients.client(calls=calls).generate(request(), PARSE)
    assert failure.value.outcome == CallOutcome.CLIENT_ERROR
    assert len(gemini.requests) == 1 and outcomes(calls) == [CallOutcome.CLIENT_ERROR]


async def test_a_wrong_key_is_the_apis_error(gemini: FakeGemini) -> None:
    models, close = gemini_models("not-the-key", gemini.base_url, 2.0)
    client = LlmClient(models, MemoryCallLog(), MemoryResponseCache(), RealtimeClock(), FAST)
    try:
        with pytest.raises(LlmError, match="API key not valid"):
            await client.generate(request(), PARSE)
    finally:
        await close()


async def test_a_timeout_is_recorded_and_not_retried(gemini: FakeGemini, clients: Clients) -> None:
    calls = MemoryCallLog()
    limits = LlmLimits(timeout_seconds=0.3, initial_backoff=0.01)
    gemini.then(slow(answer(GOOD), 5.0))
    started = time.perf_counter()
    with pytest.raises(LlmError, match=r"no answer within 0\.3 s") as failure:
        await clients.client(limits, calls=calls).generate(request(), PARSE)
    assert time.perf_counter() - started < 4.0  # cut off long before the answer came
    assert failure.value.outcome == CallOutcome.TIMEOUT
    assert outcomes(calls) == [CallOutcome.TIMEOUT]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (blocked_prompt("SAFETY"), "the prompt was blocked: SAFETY"),
        (blocked_prompt("PROHIBITED_CONTENT"), "the prompt was blocked: PROHIBITED_CONTENT"),
        (stopped("SAFETY"), "the answer was stopped: SAFETY"),
    ],
)
async def test_refusals_and_safety_blocks_are_not_retried(
    gemini: FakeGemini, clients: Clients, reply: object, message: str
) -> None:
    calls = MemoryCallLog()
    gemini.then(reply)  # type: ignore[arg-type]
    with pytest.raises(LlmError, match=message) as failure:
        await clients.client(calls=calls).generate(request(), PARSE)
    assert failure.value.outcome == CallOutcome.BLOCKED
    assert failure.value.input_tokens > 0
    assert outcomes(calls) == [CallOutcome.BLOCKED]
    assert calls.calls[0].input_tokens > 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("I cannot help with trading advice.", "Invalid JSON"),
        ('{"decision": "enter"}', "confidence: Field required"),
        (
            '{"decision": "enter", "confidence": "high"}',
            "confidence: Input should be a valid number",
        ),
        ('{"decision": 3, "confidence": 0.5}', "decision: Input should be a valid string"),
    ],
    ids=["not json", "missing field", "wrong type", "wrong type 2"],
)
async def test_an_answer_that_does_not_parse_is_recorded_with_its_text(
    gemini: FakeGemini, clients: Clients, text: str, problem: str
) -> None:
    calls, cache = MemoryCallLog(), MemoryResponseCache()
    gemini.then(answer(text))
    with pytest.raises(InvalidAnswerError, match=problem) as failure:
        await clients.client(calls=calls, cache=cache).generate(request(), PARSE)
    assert failure.value.text == text
    assert failure.value.output_tokens > 0
    assert outcomes(calls) == [CallOutcome.INVALID_ANSWER]
    assert problem in (calls.calls[0].error or "")
    assert cache.answers == {}


async def test_the_same_request_twice_makes_one_call(gemini: FakeGemini, clients: Clients) -> None:
    calls = MemoryCallLog()
    client = clients.client(calls=calls)
    gemini.then(answer(GOOD), answer(GOOD))
    first = await client.generate(request(), PARSE)
    again = await client.generate(request(), PARSE)
    assert len(gemini.requests) == 1
    assert (again.cached, again.input_tokens, again.value) == (True, 0, first.value)
    await client.generate(request(model="gemini-2.5-pro"), PARSE)
    assert len(gemini.requests) == 2 and len(calls.calls) == 2


async def test_once_the_budget_is_spent_no_call_is_made(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    now = RealtimeClock().now()
    await calls.record(
        CallValue(7, Purpose.ANALYSIS, MODEL, "h", 1, CallOutcome.OK, 900, 100, 5.0, now)
    )
    limits = LlmLimits(daily_tokens_per_user=1000)
    with pytest.raises(BudgetExhaustedError, match="budget of 1000 tokens is spent"):
        await clients.client(limits, calls=calls).generate(request(owner_id=7), PARSE)
    assert gemini.requests == []
    gemini.then(answer(GOOD))
    assert (await clients.client(limits, calls=calls).generate(request(owner_id=8), PARSE)).value


async def test_concurrency_is_bounded_per_user_and_in_all(
    gemini: FakeGemini, clients: Clients
) -> None:
    gemini.respond = lambda _: answer(GOOD)
    gemini.delay = 0.15
    client = clients.client(LlmLimits(concurrency=4, concurrency_per_user=2))
    await asyncio.gather(*(client.generate(request(f"one user {i}"), PARSE) for i in range(6)))
    assert gemini.peak_in_flight == 2
    gemini.peak_in_flight = 0
    await asyncio.gather(
        *(client.generate(request(f"many {i}", owner_id=i % 5), PARSE) for i in range(15))
    )
    assert gemini.peak_in_flight == 4


async def test_the_database_keeps_calls_budget_and_answers(db: str) -> None:
    user = await User.create(name="alice")
    log, cache = DbCallLog(), DbResponseCache()
    now = to_ms(datetime.now(UTC))
    for tokens in (100, 250):
        await log.record(
            CallValue(
                user.id, Purpose.GENERATION, MODEL, "h", 1, CallOutcome.OK, tokens, 10, 1.0, now
            )
        )
    assert await log.tokens_spent(user.id, now - 1000) == 370
    assert await log.tokens_spent(user.id, now + 1000) == 0
    assert await LlmCall.filter(owner_id=user.id).count() == 2
    kept = CachedAnswer('{"a": 1}', MODEL, 1, "h", 5, 6, now)
    await cache.put("k", kept)
    await cache.put("k", CachedAnswer("other", MODEL, 1, "h", 0, 0, now))
    assert await cache.get("k") == kept
    assert await cache.get("missing") is None
    assert await LlmResponse.all().count() == 1
