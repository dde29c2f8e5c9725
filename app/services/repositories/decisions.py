"""Decisions in the database: every analysis of a signal, and later its outcome.

Rows map to `app.domain.decision.Decision` values here only. Take profits, supports and
resistances are JSON lists of decimal strings, so no digit of a level is lost on the way.
A new decision is due for its first outcome look at once (`outcome_check_at` null); the
outcome stage moves the look to the next candle until the outcome is known.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q

from app.db import models
from app.domain.decision import Decision, DecisionAction, KeyLevels, TradePlan
from app.domain.decision_quality import Label
from app.domain.signal import Signal
from app.engine.clock import to_datetime, to_ms
from app.engine.ports import DueOutcome
from app.services.repositories.rows import insert_each

RISK_REWARD_QUANTUM = Decimal("0.0001")


def _decimals(values: Any) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(value)) for value in values)


def _strings(values: tuple[Decimal, ...]) -> list[str]:
    return [format(value, "f") for value in values]


def decision_of(row: models.Decision) -> Decision:
    return Decision(
        id=row.id,
        signal_id=row.signal_id,
        trader_id=row.trader_id,
        action=row.action,
        direction=row.direction,
        confidence=row.confidence,
        reasoning=row.reasoning,
        created_at=to_ms(row.created_at),
        trade_plan=TradePlan(row.setup, row.invalidation),
        levels=KeyLevels(
            entry=row.entry,
            stop_loss=row.stop_loss,
            take_profits=_decimals(row.take_profits),
            supports=_decimals(row.supports),
            resistances=_decimals(row.resistances),
        ),
        risk_reward=row.risk_reward,
        engine=row.engine,
        model=row.model,
        schema_version=row.schema_version,
        prompt_hash=row.prompt_hash,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        latency_ms=row.latency_ms,
        fallback_reason=row.fallback_reason,
        invalid_reason=row.invalid_reason,
        repairs=row.repairs,
        as_of=to_ms(row.as_of),
    )


def columns_of(decision: Decision) -> dict[str, Any]:
    levels = decision.levels
    reward = decision.risk_reward
    return {
        "id": decision.id,
        "signal_id": decision.signal_id,
        "trader_id": decision.trader_id,
        "action": decision.action,
        "direction": decision.direction,
        "confidence": decision.confidence,
        "reasoning": decision.reasoning,
        "setup": decision.trade_plan.setup,
        "invalidation": decision.trade_plan.invalidation,
        "entry": levels.entry,
        "stop_loss": levels.stop_loss,
        "take_profits": _strings(levels.take_profits),
        "supports": _strings(levels.supports),
        "resistances": _strings(levels.resistances),
        "risk_reward": None if reward is None else reward.quantize(RISK_REWARD_QUANTUM),
        "engine": decision.engine,
        "model": decision.model,
        "schema_version": decision.schema_version,
        "prompt_hash": decision.prompt_hash,
        "input_tokens": decision.input_tokens,
        "output_tokens": decision.output_tokens,
        "latency_ms": decision.latency_ms,
        "fallback_reason": decision.fallback_reason,
        "invalid_reason": decision.invalid_reason,
        "repairs": decision.repairs,
        "as_of": to_datetime(decision.as_of),
        "created_at": to_datetime(decision.created_at),
    }


class DbDecisionRepository:
    async def add(self, decision: Decision) -> None:
        await self.add_many([decision])

    async def add_many(self, decisions: Sequence[Decision]) -> None:
        if decisions:
            await insert_each(models.Decision, [columns_of(d) for d in decisions])

    async def for_signal(self, signal_id: uuid.UUID) -> list[Decision]:
        return (await self.for_signals([signal_id]))[signal_id]

    async def for_signals(
        self, signal_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[Decision]]:
        found: dict[uuid.UUID, list[Decision]] = {signal_id: [] for signal_id in signal_ids}
        if found:
            rows = await models.Decision.filter(signal_id__in=list(found)).order_by(
                "created_at", "id"
            )
            for row in rows:
                found[row.signal_id].append(decision_of(row))
        return found

    async def levels_for(self, signals: Collection[Signal]) -> dict[uuid.UUID, KeyLevels]:
        if not signals:
            return {}
        rows = await models.Decision.filter(signal_id__in=[s.id for s in signals]).order_by(
            "created_at", "id"
        )
        latest = {row.signal_id: row for row in rows}
        return {
            signal_id: decision_of(row).levels
            for signal_id, row in latest.items()
            if row.action == DecisionAction.ENTER_TRADE
        }

    async def outcomes_due(self, now: int, limit: int) -> list[DueOutcome]:
        rows = (
            await models.Decision.filter(
                Q(outcome_check_at=None) | Q(outcome_check_at__lte=to_datetime(now)),
                outcome=None,
            )
            .order_by("created_at", "id")
            .limit(limit)
            .select_related("signal")
        )
        return [
            DueOutcome(decision_of(row), row.signal.symbol, row.signal.interval) for row in rows
        ]

    async def record_outcome(self, decision_id: uuid.UUID, label: Label) -> None:
        await models.Decision.filter(id=decision_id).update(
            outcome=label.outcome,
            outcome_at=None if label.at is None else to_datetime(label.at),
            outcome_candles=label.candles,
            outcome_check_at=None,
        )

    async def check_outcome_later(self, decision_ids: Collection[uuid.UUID], at: int) -> None:
        await models.Decision.filter(id__in=list(decision_ids)).update(
            outcome_check_at=to_datetime(at)
        )
