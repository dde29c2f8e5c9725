"""LlmClient: structured Gemini calls with a cache, a budget, bounded concurrency and retries.

One request goes through, in order: the response cache (model, schema version and prompt
hash: a repeated or replayed request makes no call), the user's daily token budget (summed
from the call records; once spent, `BudgetExhaustedError` tells the caller to answer
offline), a slot of the user's and of the process's concurrency (a burst of signals neither
floods the quota nor lets one user starve the others), then the call itself through the
google-genai async client with a response schema, under a timeout.

Retries are ours, not the SDK's `HttpRetryOptions`: the SDK's tenacity loop backs off on its
own schedule and ignores the delay the API asks for in a 429's `RetryInfo` (a quota that
refills in 7 s, or tomorrow), and it hides the attempts from us, while every attempt must
be recorded with its outcome and tokens. So the SDK is told to make exactly one attempt
(which also turns off its implicit retry of connection errors) and this loop retries 429,
5xx and transport errors with exponential back-off and full jitter, honouring the API's
delay, up to `attempts`; a delay longer than `max_retry_delay` fails at once instead of
holding a slot. Other 4xx, blocked prompts and answers, timeouts and answers that do not
parse are not retried: the same request would fail the same way (the analysis engine asks
for a repair with a different prompt instead).

Every attempt is a record (`CallLog`): model, purpose, prompt hash, tokens from the usage
metadata, latency, outcome. Back-off waits on the engine's `Clock`; latency is measured
with a monotonic timer, since it is a duration of real I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import httpx
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, ValidationError

from app.domain.llm import (
    RETRYABLE,
    CallOutcome,
    LlmCall,
    Purpose,
    cache_key,
    day_start,
    parse_duration,
    prompt_hash,
    retry_delay,
)
from app.engine.clock import Clock
from app.engine.llm.ports import CachedAnswer, CallLog, ResponseCache

log = logging.getLogger(__name__)

T = TypeVar("T")
API_VERSION = "v1beta"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
BLOCKING_FINISH = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
ERROR_TEXT = 500
REPAIR_QUOTE = 4000
REPAIR_OF = {
    Purpose.ANALYSIS: Purpose.ANALYSIS_REPAIR,
    Purpose.GENERATION: Purpose.GENERATION_REPAIR,
}


class AnswerError(ValueError):
    """The model's text is not an answer of the requested shape."""


def schema_parser(schema: type[BaseModel]) -> Callable[[str], Any]:
    """Parse and validate an answer against its schema, naming every problem."""

    def parse(text: str) -> BaseModel:
        try:
            return schema.model_validate_json(text)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(part) for part in error['loc']) or 'answer'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            ]
            raise AnswerError("; ".join(problems)) from None

    return parse


@lru_cache(maxsize=64)
def json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The answer schema as JSON Schema, built once per schema (it is costly to build, and a
    burst of analyses builds it for every request)."""
    return schema.model_json_schema()


@lru_cache(maxsize=64)
def response_schema(schema: type[BaseModel]) -> types.Schema:
    """The answer schema in Gemini's `response_schema` form, converted once per schema."""
    return types.Schema.from_json_schema(
        json_schema=types.JSONSchema.model_validate(json_schema(schema))
    )


@dataclass(frozen=True, slots=True)
class LlmRequest:
    purpose: Purpose
    owner_id: int
    model: str
    system: str
    prompt: str
    schema: type[BaseModel]
    schema_version: int
    trader_id: uuid.UUID | None = None
    signal_id: uuid.UUID | None = None
    temperature: float = 0.2

    def digest(self) -> str:
        return prompt_hash(self.system, self.prompt, json_schema(self.schema))

    def repair(self, answer_text: str, problems: str) -> LlmRequest:
        """This request once more, with the model's answer and what is wrong with it."""
        prompt = (
            f"{self.prompt}\n\nYour previous answer:\n{answer_text[:REPAIR_QUOTE]}\n\n"
            f"It cannot be used: {problems}\nAnswer again with the whole JSON object, "
            "correcting exactly these problems."
        )
        return replace(self, purpose=REPAIR_OF.get(self.purpose, self.purpose), prompt=prompt)


@dataclass(frozen=True, slots=True)
class LlmAnswer(Generic[T]):
    """A parsed answer and what it cost; a cached one cost nothing now."""

    value: T
    text: str
    model: str
    prompt_hash: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cached: bool
    attempts: int


class LlmError(Exception):
    """A request that gave no usable answer, with what its attempts cost."""

    def __init__(
        self,
        outcome: CallOutcome | None,
        message: str,
        *,
        prompt_hash: str = "",
        input_tokens: int = 0,
        output_tokens: int = 0,
        latency_ms: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.prompt_hash = prompt_hash
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.latency_ms = latency_ms


class OfflineError(LlmError):
    """No model may answer this request, and none was called: answer offline instead."""


class BudgetExhaustedError(OfflineError):
    """The user's daily tokens are spent."""


class InvalidAnswerError(LlmError):
    """The model answered, but not in the requested shape; `text` is what it said."""

    def __init__(self, text: str, message: str, **cost: Any) -> None:
        super().__init__(CallOutcome.INVALID_ANSWER, message, **cost)
        self.text = text


class Answerer(Protocol):
    """Whatever answers model requests: the live client, or recorded answers in a replay."""

    async def generate(self, request: LlmRequest, parse: Callable[[str], T]) -> LlmAnswer[T]: ...


class GenerateContent(Protocol):
    """The part of google-genai's `client.aio.models` the client uses."""

    async def generate_content(
        self, *, model: str, contents: Any, config: types.GenerateContentConfig
    ) -> types.GenerateContentResponse: ...


@dataclass(frozen=True, slots=True)
class LlmLimits:
    timeout_seconds: float = 30.0
    attempts: int = 4
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_delay: float = 60.0
    concurrency: int = 10
    concurrency_per_user: int = 4
    daily_tokens_per_user: int = 2_000_000


@dataclass(slots=True)
class _Attempt:
    """What one attempt produced, before it is recorded."""

    outcome: CallOutcome
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    text: str = ""
    server_delay: float | None = None
    latency_ms: float = 0.0


@dataclass(slots=True)
class _Spent:
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0

    def add(self, attempt: _Attempt) -> None:
        self.input_tokens += attempt.input_tokens
        self.output_tokens += attempt.output_tokens
        self.latency_ms += attempt.latency_ms
        self.attempts += 1


@dataclass
class _Slots:
    overall: asyncio.Semaphore
    per_user: int
    users: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def hold(self, owner_id: int) -> AsyncIterator[None]:
        own = self.users.setdefault(owner_id, asyncio.Semaphore(self.per_user))
        async with own, self.overall:
            yield


def gemini_models(
    api_key: str, base_url: str | None, timeout_seconds: float
) -> tuple[GenerateContent, Callable[[], Any]]:
    """google-genai's async models API on `base_url` (None: Google's), and how to close it.

    The SDK makes one attempt per call (`attempts=1`, see the module docstring) on the
    documented v1beta path, with the same timeout sent to the server."""
    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version=API_VERSION,
            timeout=int(timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    return client.aio.models, client.aio.aclose


class LlmClient:
    def __init__(
        self,
        models: GenerateContent,
        calls: CallLog,
        cache: ResponseCache,
        clock: Clock,
        limits: LlmLimits | None = None,
        *,
        close: Callable[[], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.models = models
        self.calls = calls
        self.cache = cache
        self.clock = clock
        self.limits = limits or LlmLimits()
        self._close = close
        self._rng = rng or random.Random()
        self._slots = _Slots(
            asyncio.Semaphore(self.limits.concurrency), self.limits.concurrency_per_user
        )

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    async def tokens_today(self, owner_id: int) -> int:
        return await self.calls.tokens_spent(owner_id, day_start(self.clock.now()))

    async def generate(self, request: LlmRequest, parse: Callable[[str], T]) -> LlmAnswer[T]:
        """The parsed answer to `request`, from the cache or from the model.

        Raises `BudgetExhaustedError` (no call made), `InvalidAnswerError` (the answer did
        not parse; its text is attached) or `LlmError` (no answer), each carrying the cost.
        """
        digest = request.digest()
        key = cache_key(request.model, request.schema_version, digest)
        cached = await self.cache.get(key)
        if cached is not None:
            with contextlib.suppress(AnswerError):
                return LlmAnswer(
                    parse(cached.text), cached.text, cached.model, digest, 0, 0, 0.0, True, 0
                )
        await self._check_budget(request.owner_id)
        spent = _Spent()
        async with self._slots.hold(request.owner_id):
            while True:
                attempt = await self._attempt(request)
                spent.add(attempt)
                if attempt.outcome == CallOutcome.OK:
                    try:
                        value = parse(attempt.text)
                    except AnswerError as exc:
                        attempt.outcome, attempt.error = CallOutcome.INVALID_ANSWER, str(exc)
                        await self._record(request, digest, spent.attempts, attempt)
                        raise InvalidAnswerError(
                            attempt.text, str(exc), **_cost(digest, spent)
                        ) from None
                    await self._record(request, digest, spent.attempts, attempt)
                    await self.cache.put(key, self._cached(request, digest, attempt))
                    return LlmAnswer(
                        value,
                        attempt.text,
                        request.model,
                        digest,
                        spent.input_tokens,
                        spent.output_tokens,
                        spent.latency_ms,
                        False,
                        spent.attempts,
                    )
                await self._record(request, digest, spent.attempts, attempt)
                delay = self._retry_in(attempt, spent.attempts)
                if delay is None:
                    raise LlmError(
                        attempt.outcome, _explain(attempt, spent.attempts), **_cost(digest, spent)
                    )
                log.info(
                    "model %s: %s; attempt %d again in %.1f s",
                    request.model,
                    attempt.error,
                    spent.attempts + 1,
                    delay,
                )
                await self.clock.sleep_until(self.clock.now() + round(delay * 1000))

    async def _check_budget(self, owner_id: int) -> None:
        budget = self.limits.daily_tokens_per_user
        spent = await self.tokens_today(owner_id)
        if spent >= budget:
            raise BudgetExhaustedError(
                None,
                f"the user's daily model budget of {budget} tokens is spent ({spent} used today)",
            )

    def _retry_in(self, attempt: _Attempt, attempts: int) -> float | None:
        """Seconds until the next attempt, or None when there is none."""
        if attempt.outcome not in RETRYABLE or attempts >= self.limits.attempts:
            return None
        if attempt.server_delay is not None and attempt.server_delay > self.limits.max_retry_delay:
            return None
        return retry_delay(
            attempts,
            attempt.server_delay,
            initial=self.limits.initial_backoff,
            maximum=self.limits.max_backoff,
            rng=self._rng,
        )

    async def _attempt(self, request: LlmRequest) -> _Attempt:
        config = types.GenerateContentConfig(
            system_instruction=request.system,
            response_mime_type="application/json",
            response_schema=response_schema(request.schema),
            temperature=request.temperature,
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                response = await self.models.generate_content(
                    model=request.model, contents=request.prompt, config=config
                )
            attempt = _read(response)
        except TimeoutError:
            attempt = _Attempt(
                CallOutcome.TIMEOUT, error=f"no answer within {self.limits.timeout_seconds:g} s"
            )
        except errors.APIError as exc:
            attempt = _api_error(exc)
        except (aiohttp.ClientError, httpx.HTTPError, OSError) as exc:
            attempt = _Attempt(CallOutcome.TRANSPORT_ERROR, error=f"{type(exc).__name__}: {exc}")
        attempt.latency_ms = (time.perf_counter() - started) * 1000
        return attempt

    async def _record(
        self, request: LlmRequest, digest: str, number: int, attempt: _Attempt
    ) -> None:
        await self.calls.record(
            LlmCall(
                owner_id=request.owner_id,
                purpose=request.purpose,
                model=request.model,
                prompt_hash=digest,
                attempt=number,
                outcome=attempt.outcome,
                input_tokens=attempt.input_tokens,
                output_tokens=attempt.output_tokens,
                latency_ms=attempt.latency_ms,
                created_at=self.clock.now(),
                error=attempt.error[:ERROR_TEXT] if attempt.error else None,
                trader_id=request.trader_id,
                signal_id=request.signal_id,
            )
        )

    def _cached(self, request: LlmRequest, digest: str, attempt: _Attempt) -> CachedAnswer:
        return CachedAnswer(
            text=attempt.text,
            model=request.model,
            schema_version=request.schema_version,
            prompt_hash=digest,
            input_tokens=attempt.input_tokens,
            output_tokens=attempt.output_tokens,
            created_at=self.clock.now(),
        )


def _cost(digest: str, spent: _Spent) -> dict[str, Any]:
    return {
        "prompt_hash": digest,
        "input_tokens": spent.input_tokens,
        "output_tokens": spent.output_tokens,
        "latency_ms": spent.latency_ms,
    }


def _explain(attempt: _Attempt, attempts: int) -> str:
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    waited = ""
    if attempt.server_delay is not None and attempt.outcome in RETRYABLE:
        waited = f" (the API asks to retry in {attempt.server_delay:g} s)"
    return f"{attempt.outcome}: {attempt.error}{waited}{tried}"


def _read(response: types.GenerateContentResponse) -> _Attempt:
    """The outcome of a 200 answer: its text, or why there is none (a blocked prompt, an
    answer stopped for safety or cut off at the token limit)."""
    usage = response.usage_metadata
    spent = _Attempt(
        CallOutcome.OK,
        input_tokens=(usage.prompt_token_count or 0) if usage else 0,
        output_tokens=(
            (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) if usage else 0
        ),
    )
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = f"{_name(feedback.block_reason)} {feedback.block_reason_message or ''}".strip()
        return replace(
            spent, outcome=CallOutcome.BLOCKED, error=f"the prompt was blocked: {reason}"
        )
    if not response.candidates:
        return replace(spent, outcome=CallOutcome.BLOCKED, error="the answer has no candidates")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason else None
    if finish in BLOCKING_FINISH:
        return replace(
            spent, outcome=CallOutcome.BLOCKED, error=f"the answer was stopped: {finish}"
        )
    if finish == "MAX_TOKENS":
        error = "the answer was cut off at the token limit"
        return replace(spent, outcome=CallOutcome.TRUNCATED, error=error)
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    if not text.strip():
        return replace(spent, outcome=CallOutcome.INVALID_ANSWER, error="the answer is empty")
    return replace(spent, text=text)


def _name(value: object) -> str:
    """An enum of the SDK by its API name (unknown values arrive as plain strings)."""
    return str(getattr(value, "value", value))


def _api_error(exc: errors.APIError) -> _Attempt:
    code = exc.code or 0
    if code == 429:
        outcome = CallOutcome.RATE_LIMITED
    elif code >= 500:
        outcome = CallOutcome.SERVER_ERROR
    else:
        outcome = CallOutcome.CLIENT_ERROR
    message = f"{code} {exc.status or ''}: {exc.message or ''}".strip()
    return _Attempt(outcome, error=message, server_delay=_server_delay(exc))


def _server_delay(exc: errors.APIError) -> float | None:
    """The delay the API asks for: google.rpc.RetryInfo in the error body, else Retry-After."""
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    details = error.get("details", []) if isinstance(error, dict) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == RETRY_INFO:
            delay = parse_duration(detail.get("retryDelay"))
            if delay is not None:
                return delay
    headers = getattr(exc.response, "headers", None) or {}
    after = headers.get("Retry-After")
    try:
        return float(after) if isinstance(after, str) else None
    except ValueError:
        return None
