"""Model calls and cached model answers in the database (`llm_calls`, `llm_responses`).

The call log is also the budget: what a user spent today is the sum of the tokens of their
calls since the start of the UTC day, one indexed query. A cached answer is written once
per key (a concurrent writer of the same key loses quietly: the answers are equivalent).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count, Sum

from app.db import models
from app.domain.llm import LlmCall
from app.engine.clock import to_datetime, to_ms
from app.engine.llm.ports import CachedAnswer


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's model calls since a moment, and their tokens."""

    since: int
    calls: int
    input_tokens: int
    output_tokens: int


async def calls_since(owner_id: int, since: int) -> Usage:
    rows = (
        await models.LlmCall.filter(owner_id=owner_id, created_at__gte=to_datetime(since))
        .annotate(calls=Count("id"), inputs=Sum("input_tokens"), outputs=Sum("output_tokens"))
        .values("calls", "inputs", "outputs")
    )
    row = rows[0] if rows else {}
    return Usage(
        since,
        int(row.get("calls") or 0),
        int(row.get("inputs") or 0),
        int(row.get("outputs") or 0),
    )


class DbCallLog:
    async def record(self, call: LlmCall) -> None:
        await models.LlmCall.create(
            owner_id=call.owner_id,
            trader_id=call.trader_id,
            signal_id=call.signal_id,
            purpose=call.purpose,
            model=call.model,
            prompt_hash=call.prompt_hash,
            attempt=call.attempt,
            outcome=call.outcome,
            error=call.error,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            latency_ms=call.latency_ms,
            created_at=to_datetime(call.created_at),
        )

    async def tokens_spent(self, owner_id: int, since: int) -> int:
        usage = await calls_since(owner_id, since)
        return usage.input_tokens + usage.output_tokens


class DbResponseCache:
    async def get(self, key: str) -> CachedAnswer | None:
        row = await models.LlmResponse.get_or_none(key=key)
        if row is None:
            return None
        return CachedAnswer(
            text=row.text,
            model=row.model,
            schema_version=row.schema_version,
            prompt_hash=row.prompt_hash,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            created_at=to_ms(row.created_at),
        )

    async def put(self, key: str, answer: CachedAnswer) -> None:
        try:
            await models.LlmResponse.create(
                key=key,
                model=answer.model,
                schema_version=answer.schema_version,
                prompt_hash=answer.prompt_hash,
                text=answer.text,
                input_tokens=answer.input_tokens,
                output_tokens=answer.output_tokens,
                created_at=to_datetime(answer.created_at),
            )
        except IntegrityError:
            return
