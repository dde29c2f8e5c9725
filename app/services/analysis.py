"""Reads about analysis for the API: decisions and transitions of signals (batched for the
DataLoaders), the decision quality of a trader, and a user's model usage today."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from app.db.models import Decision, SignalTransition
from app.domain.decision import DecisionAction
from app.domain.decision_quality import JudgedDecision, Outcome, QualityReport, summarize
from app.domain.llm import day_start
from app.engine.clock import to_ms
from app.services.repositories.llm import Usage, calls_since


async def decisions_by_signal(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Decision]]:
    grouped: dict[uuid.UUID, list[Decision]] = defaultdict(list)
    for row in await Decision.filter(signal_id__in=list(ids)).order_by("created_at", "id"):
        grouped[row.signal_id].append(row)
    return grouped


async def transitions_by_signal(
    ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, list[SignalTransition]]:
    grouped: dict[uuid.UUID, list[SignalTransition]] = defaultdict(list)
    for row in await SignalTransition.filter(signal_id__in=list(ids)).order_by("at", "id"):
        grouped[row.signal_id].append(row)
    return grouped


async def analysis_quality(
    trader_id: uuid.UUID, start: datetime | None, end: datetime | None
) -> QualityReport:
    """Counts, hit rates and calibration of the trader's decisions made in [start, end)."""
    query = Decision.filter(trader_id=trader_id)
    if start is not None:
        query = query.filter(created_at__gte=start)
    if end is not None:
        query = query.filter(created_at__lt=end)
    rows = await query.values_list("engine", "action", "confidence", "outcome")
    return summarize(
        JudgedDecision(
            str(engine),
            DecisionAction(action),
            float(confidence),
            None if outcome is None else Outcome(outcome),
        )
        for engine, action, confidence, outcome in rows
    )


async def usage_today(owner_id: int, now: datetime | None = None) -> Usage:
    """The user's model calls since the start of the UTC day."""
    return await calls_since(owner_id, day_start(to_ms(now or datetime.now(UTC))))
