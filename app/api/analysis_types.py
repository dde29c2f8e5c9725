"""GraphQL types of analysis: a signal's decisions and status history, decision quality, and
a user's model usage. Each is built from its database row or domain value, and depends on
no other API module, so `Signal` (app.api.types) can show its analyses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from app.api.enums import AnalysisEngineKind, DecisionAction, Outcome, Side, SignalStatus
from app.db import models
from app.domain.decision_quality import CalibrationBucket as BucketValue
from app.domain.decision_quality import OutcomeCounts as CountsValue
from app.domain.decision_quality import QualityReport
from app.engine.clock import to_datetime
from app.services.repositories.decisions import decision_of


@strawberry.type
class KeyLevels:
    entry: Decimal | None
    stop_loss: Decimal | None
    take_profit: list[Decimal] = strawberry.field(description="Up to three, nearest first")
    support: list[Decimal]
    resistance: list[Decimal]


@strawberry.type
class TradePlan:
    setup: str
    invalidation: str


@strawberry.type(description="One analysis of a signal: the decision, its levels, who gave it")
class Analysis:
    id: strawberry.ID
    decision: DecisionAction
    direction: Side
    confidence: float = strawberry.field(
        description="Probability in [0, 1] that the first take profit comes before the stop"
    )
    reasoning: str
    trade_plan: TradePlan
    key_levels: KeyLevels
    risk_reward: Decimal | None = strawberry.field(description="Reward to TP1 per unit of risk")
    engine: AnalysisEngineKind = strawberry.field(description="Which engine answered")
    model: str | None
    schema_version: int
    prompt_hash: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float
    fallback_reason: str | None = strawberry.field(
        description="Why the rule engine answered instead of the model (a spent budget...)"
    )
    invalid_reason: str | None = strawberry.field(
        description="Why the model's answer was unusable; the decision is then bad_setup"
    )
    repairs: int = strawberry.field(description="Repair requests the answer took (0 or 1)")
    as_of: datetime = strawberry.field(description="Close of the newest candle it saw")
    created_at: datetime
    outcome: Outcome | None = strawberry.field(description="Null until known")
    outcome_at: datetime | None

    @classmethod
    def from_model(cls, row: models.Decision) -> Analysis:
        decision = decision_of(row)
        levels = decision.levels
        return cls(
            id=strawberry.ID(str(decision.id)),
            decision=decision.action,
            direction=decision.direction,
            confidence=decision.confidence,
            reasoning=decision.reasoning,
            trade_plan=TradePlan(
                setup=decision.trade_plan.setup, invalidation=decision.trade_plan.invalidation
            ),
            key_levels=KeyLevels(
                entry=levels.entry,
                stop_loss=levels.stop_loss,
                take_profit=list(levels.take_profits),
                support=list(levels.supports),
                resistance=list(levels.resistances),
            ),
            risk_reward=decision.risk_reward,
            engine=decision.engine,
            model=decision.model,
            schema_version=decision.schema_version,
            prompt_hash=decision.prompt_hash,
            input_tokens=decision.input_tokens,
            output_tokens=decision.output_tokens,
            latency_ms=decision.latency_ms,
            fallback_reason=decision.fallback_reason,
            invalid_reason=decision.invalid_reason,
            repairs=decision.repairs,
            as_of=to_datetime(decision.as_of),
            created_at=to_datetime(decision.created_at),
            outcome=row.outcome,
            outcome_at=row.outcome_at,
        )


@strawberry.type
class SignalTransition:
    from_status: SignalStatus
    to_status: SignalStatus
    reason: str | None
    at: datetime

    @classmethod
    def from_model(cls, row: models.SignalTransition) -> SignalTransition:
        return cls(
            from_status=row.from_status, to_status=row.to_status, reason=row.reason, at=row.at
        )


@strawberry.type(description="Outcomes of one engine's decisions of one kind")
class OutcomeCounts:
    engine: str
    decision: DecisionAction
    decisions: int
    pending: int = strawberry.field(description="Not yet known")
    unlabelled: int
    target: int
    stop: int
    neither: int
    hit_rate: float | None = strawberry.field(description="target / (target + stop + neither)")

    @classmethod
    def from_value(cls, counts: CountsValue) -> OutcomeCounts:
        return cls(
            engine=counts.engine,
            decision=counts.action,
            decisions=counts.decisions,
            pending=counts.pending,
            unlabelled=counts.unlabelled,
            target=counts.target,
            stop=counts.stop,
            neither=counts.neither,
            hit_rate=counts.hit_rate,
        )


@strawberry.type(description="Judged decisions whose confidence lies in [low, high)")
class CalibrationBucket:
    engine: str
    low: float
    high: float
    decisions: int
    hits: int
    mean_confidence: float | None
    hit_rate: float | None

    @classmethod
    def from_value(cls, bucket: BucketValue) -> CalibrationBucket:
        return cls(
            engine=bucket.engine,
            low=bucket.low,
            high=bucket.high,
            decisions=bucket.decisions,
            hits=bucket.hits,
            mean_confidence=bucket.mean_confidence,
            hit_rate=bucket.hit_rate,
        )


@strawberry.type
class AnalysisQuality:
    trader_id: strawberry.ID
    horizon_candles: int
    counts: list[OutcomeCounts]
    calibration: list[CalibrationBucket]

    @classmethod
    def from_report(cls, trader_id: str, horizon: int, report: QualityReport) -> AnalysisQuality:
        return cls(
            trader_id=strawberry.ID(trader_id),
            horizon_candles=horizon,
            counts=[OutcomeCounts.from_value(c) for c in report.counts],
            calibration=[CalibrationBucket.from_value(b) for b in report.calibration],
        )


@strawberry.type(description="The caller's model usage since the start of the UTC day")
class LlmUsage:
    engine: AnalysisEngineKind = strawberry.field(description="What analyzes signals now")
    model: str | None
    since: datetime
    calls: int
    input_tokens: int
    output_tokens: int
    daily_token_budget: int
    remaining_tokens: int
