"""Where model calls are recorded and model answers cached: the database live, memory in a
backtest (`app.engine.memory`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.domain.llm import LlmCall


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A model's answer as it was received, with what it cost when it was made."""

    text: str
    model: str
    schema_version: int
    prompt_hash: str
    input_tokens: int
    output_tokens: int
    created_at: int


class CallLog(Protocol):
    async def record(self, call: LlmCall) -> None: ...

    async def tokens_spent(self, owner_id: int, since: int) -> int:
        """Input and output tokens of the user's calls recorded at or after `since`."""
        ...


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer) -> None:
        """Keep `answer` under `key`; an answer already kept there stays."""
        ...
