"""What is recorded of every model call, and the arithmetic around it: hashes and back-off.

A model call costs money and can fail in many ways, so each one (each HTTP attempt) is a
record: who it was for, why (`purpose`), which model, the hash of exactly what was sent,
the tokens the API reported, how long it took and how it ended. The same records answer
the per-user daily token budget, so there is one source of truth for what a user spent.

The prompt hash covers everything that determines the answer (model aside): the system
instruction, the prompt and the response schema. The cache key adds the model and the
schema version, so a repeated or replayed request finds its recorded answer and a changed
schema or model never serves a stale one.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DAY_MS = 86_400_000


class CallOutcome(StrEnum):
    OK = "ok"
    INVALID_ANSWER = "invalid_answer"
    BLOCKED = "blocked"
    TRUNCATED = "truncated"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport_error"


# Outcomes worth another attempt of the same request: the API (or the network on the way)
# says "later", not "never".
RETRYABLE = frozenset(
    {CallOutcome.RATE_LIMITED, CallOutcome.SERVER_ERROR, CallOutcome.TRANSPORT_ERROR}
)


class Purpose(StrEnum):
    ANALYSIS = "analysis"
    ANALYSIS_REPAIR = "analysis_repair"
    GENERATION = "generation"
    GENERATION_REPAIR = "generation_repair"


@dataclass(frozen=True, slots=True)
class LlmCall:
    """One attempt at one request; `created_at` is the engine clock's time (epoch ms)."""

    owner_id: int
    purpose: Purpose
    model: str
    prompt_hash: str
    attempt: int
    outcome: CallOutcome
    input_tokens: int
    output_tokens: int
    latency_ms: float
    created_at: int
    error: str | None = None
    trader_id: uuid.UUID | None = None
    signal_id: uuid.UUID | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def prompt_hash(system: str, prompt: str, schema: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"system": system, "prompt": prompt, "schema": schema}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_key(model: str, schema_version: int, prompt_digest: str) -> str:
    return hashlib.sha256(f"{model}\n{schema_version}\n{prompt_digest}".encode()).hexdigest()


def day_start(now: int) -> int:
    """The start of the UTC day of `now` (epoch ms): budgets are per calendar day."""
    return now - now % DAY_MS


def retry_delay(
    attempt: int,
    server_delay: float | None,
    *,
    initial: float,
    maximum: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt 1 is the first request).

    The API's own delay (RetryInfo, Retry-After) wins when it gives one: it knows when the
    quota refills. Otherwise exponential back-off with full jitter, so that many callers
    rejected together do not come back together."""
    if server_delay is not None:
        return server_delay
    ceiling = min(maximum, initial * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)


def parse_duration(text: object) -> float | None:
    """A protobuf Duration as JSON writes it ("7s", "3.700s"), in seconds; None if not one."""
    if not isinstance(text, str) or not text.endswith("s"):
        return None
    try:
        seconds = float(text[:-1])
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
