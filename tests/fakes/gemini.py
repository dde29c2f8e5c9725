"""A loopback server that answers as the Gemini API does, for the real google-genai client.

It speaks the REST protocol of `POST /v1beta/models/{model}:generateContent`: the API key in
`x-goog-api-key` (a wrong one is the API's 400 API_KEY_INVALID), the request body checked
for the fields the API knows (an unknown one is its 400 "Invalid JSON payload received"),
answers with `candidates`, `usageMetadata` (token counts), `modelVersion` and `responseId`,
and errors in the API's shape (`{"error": {"code", "message", "status", "details"}}`,
`google.rpc.RetryInfo` with a `retryDelay` on 429). Paths other than v1beta's are 404, as
for a model the API does not serve.

Tests script it: `then(*replies)` queues what the next requests get, in order (a reply, or
a function of the request that makes one: an answer,
raw text that is not JSON, a blocked prompt, an answer stopped for safety, a 429 with a
retry delay, a 500, a slow answer that outlasts the client's timeout); once the queue is
empty `respond(request)` answers (by default an error saying nothing was scripted, so an
unexpected call fails loudly). Every request is kept in `requests`.

`python -m tests.fakes.gemini --port N --delay 2` runs it on its own with the `analysis`
responder (a valid trade answer for any analysis prompt), for the analysis benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "test-gemini-key"
PATH = re.compile(r"^/v1beta/models/(?P<model>[A-Za-z0-9._-]+):generateContent$")
REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "generationConfig",
        "safetySettings",
        "tools",
        "toolConfig",
        "cachedContent",
        "labels",
    }
)
CONFIG_FIELDS = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "thinkingConfig",
    }
)
SCHEMA_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    delay: float = 0.0
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Received:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def prompt(self) -> str:
        return "".join(
            part.get("text", "") for content in self.body["contents"] for part in content["parts"]
        )

    @property
    def system(self) -> str:
        instruction = self.body.get("systemInstruction") or {"parts": []}
        return "".join(part.get("text", "") for part in instruction["parts"])


def tokens(text: str) -> int:
    """About four characters a token, as the API counts English text."""
    return max(1, len(text) // 4)


def _error(code: int, status: str, message: str, details: list[Any] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply(code, {"error": error})


def answer(value: Any, *, finish: str = "STOP", delay: float = 0.0) -> Reply:
    """A model answer: `value` as JSON text (a str is sent as written)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return Reply(
        200,
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": finish,
                    "index": 0,
                }
            ],
            "usageMetadata": {"candidatesTokenCount": tokens(text)},
        },
        delay,
    )


def blocked_prompt(reason: str = "SAFETY") -> Reply:
    """The prompt refused before any answer: no candidates, promptFeedback.blockReason."""
    return Reply(
        200,
        {
            "promptFeedback": {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ],
            },
            "usageMetadata": {},
        },
    )


def stopped(finish: str = "SAFETY") -> Reply:
    """An answer the API stopped (finishReason SAFETY and no content)."""
    return Reply(
        200,
        {
            "candidates": [
                {
                    "finishReason": finish,
                    "index": 0,
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}
                    ],
                }
            ],
            "usageMetadata": {},
        },
    )


def rate_limited(retry_delay: str = "0.05s") -> Reply:
    return _error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    )


def server_error(code: int = 500) -> Reply:
    if code == 503:
        return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    return _error(
        code,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )


def client_error(message: str = "Request contains an invalid argument.") -> Reply:
    return _error(400, "INVALID_ARGUMENT", message)


def slow(reply: Reply, seconds: float) -> Reply:
    return Reply(reply.status, reply.body, seconds, reply.raw)


def unscripted(request: Received) -> Reply:
    return _error(500, "INTERNAL", f"fake Gemini: no answer scripted for {request.model}")


def _check_schema(schema: Any, path: str) -> str | None:
    if not isinstance(schema, dict):
        return f"{path}: a schema must be an object"
    kind = str(schema.get("type", "")).upper()
    if kind not in SCHEMA_TYPES and "anyOf" not in schema:
        return f"Invalid value at '{path}.type': \"{schema.get('type')}\""
    for name, child in (schema.get("properties") or {}).items():
        if problem := _check_schema(child, f"{path}.properties[{name}]"):
            return problem
    if kind == "ARRAY" and (problem := _check_schema(schema.get("items"), f"{path}.items")):
        return problem
    return None


def _check_body(body: Any) -> str | None:
    """What the real API refuses in a request body, in its words."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    for name in body:
        if name not in REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
    config = body.get("generationConfig") or {}
    for name in config:
        if name not in CONFIG_FIELDS:
            return (
                f'Invalid JSON payload received. Unknown name "{name}" at '
                f"'generation_config': Cannot find field."
            )
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            return "response_schema is only supported with response_mime_type application/json"
        return _check_schema(config["responseSchema"], "generation_config.response_schema")
    return None


@dataclass
class FakeGemini:
    api_key: str = API_KEY
    respond: Callable[[Received], Reply] = unscripted
    delay: float = 0.0
    script: deque[Reply | Callable[[Received], Reply]] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""
    in_flight: int = 0
    peak_in_flight: int = 0
    _runner: web.AppRunner | None = None

    def then(self, *replies: Reply | Callable[[Received], Reply]) -> FakeGemini:
        self.script.extend(replies)
        return self

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Stopping cancels answers still waiting out their delay (a client that timed out
        # left long ago) instead of waiting for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        found = PATH.match(request.path)
        if found is None or request.method != "POST":
            return self._send(
                _error(404, "NOT_FOUND", f"The requested URL {request.path} was not found.")
            )
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return self._send(
                _error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity.",
                )
            )
        if key != self.api_key:
            return self._send(
                _error(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                )
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._send(client_error("Invalid JSON payload received."))
        if problem := _check_body(body):
            return self._send(client_error(problem))
        received = Received(found["model"], body, dict(request.headers))
        self.requests.append(received)
        scripted = self.script.popleft() if self.script else self.respond
        reply = scripted(received) if callable(scripted) else scripted
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(max(reply.delay, self.delay))
        finally:
            self.in_flight -= 1
        return self._send(reply, received)

    def _send(self, reply: Reply, received: Received | None = None) -> web.Response:
        body = reply.body
        if reply.status == 200 and received is not None and isinstance(body, dict):
            body = json.loads(json.dumps(body))
            usage = body.setdefault("usageMetadata", {})
            usage["promptTokenCount"] = tokens(received.system + received.prompt)
            usage["totalTokenCount"] = usage["promptTokenCount"] + usage.get(
                "candidatesTokenCount", 0
            )
            body["modelVersion"] = received.model
            body["responseId"] = uuid.uuid4().hex[:20]
        return web.json_response(body, status=reply.status)


def prompt_context(request: Received) -> dict[str, Any]:
    """The JSON context block of an analysis prompt."""
    return dict(json.loads(request.prompt.split("```json", 1)[1].split("```", 1)[0]))


def trade(
    request: Received,
    decision: str = "enter_trade",
    *,
    stop_percent: float = 2.0,
    multiples: tuple[float, ...] = (2, 3, 4),
    confidence: float = 0.7,
) -> dict[str, Any]:
    """An analysis answer at the prompt's current price: a stop `stop_percent` away and
    targets at `multiples` of that risk, on the signal's side."""
    context = prompt_context(request)
    price = float(context["market"]["price"])
    side = context["signal"]["side"]
    sign = -1 if side == "short" else 1
    risk = price * stop_percent / 100
    return {
        "decision": decision,
        "direction": side,
        "confidence": confidence,
        "reasoning": "Momentum and trend agree.",
        "trade_plan": {"setup": "breakout", "invalidation": "a close through the stop"},
        "key_levels": {
            "entry": price,
            "stop_loss": price - sign * risk,
            "take_profits": [price + sign * risk * r for r in multiples],
            "supports": [price - risk],
            "resistances": [price + risk],
        },
    }


def analysis_answer(request: Received) -> Reply:
    """A valid answer to any analysis prompt: enter at the current price, 2% stop, targets
    at 2, 3 and 4 R."""
    return answer(trade(request))


def wrong_side(request: Received) -> Reply:
    """An analysis answer whose long has its stop above the entry."""
    body = trade(request)
    body["key_levels"]["stop_loss"] = body["key_levels"]["entry"] * 1.02
    return answer(body)


async def _serve(port: int, delay: float) -> None:
    fake = FakeGemini(respond=analysis_answer, delay=delay)
    await fake.start(port)
    print(fake.base_url, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.delay))


if __name__ == "__main__":
    main()
