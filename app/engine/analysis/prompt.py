"""What the model is asked about a signal, the answer schema, and the answer as a Decision.

The prompt is built only from the context (no wall clock, no random), so the same signal on
the same candles gives the same prompt, hence the same prompt hash: a repeated analysis or
a replay finds its recorded answer. The trader-specific rules (its stop loss, its minimum
risk/reward) are stated in the prompt because the answer is checked against them.

The schema is the Gemini structured-output schema (sent as `response_schema`) and, strict,
the validator of the answer: a string where a number belongs is an error, not a guess. The
model gives levels for every decision, rejections too, so that the quality of the setups it
turned down can be measured.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.decision import (
    SCHEMA_VERSION,
    AnalysisEngineKind,
    Decision,
    DecisionAction,
    KeyLevels,
    TradePlan,
)
from app.domain.decision_rules import (
    MAX_ENTRY_DISTANCE_PERCENT,
    MAX_LEVELS,
    MAX_TAKE_PROFITS,
    max_stop_percent,
    min_risk_reward,
    risk_reward,
)
from app.domain.enums import Side
from app.domain.indicators import CandleArrays
from app.domain.llm import Purpose
from app.domain.signal import price_of
from app.domain.trader_spec import RISK_FIELDS
from app.engine.analysis.base import AnalysisContext, rejection
from app.engine.llm.client import LlmAnswer, LlmError, LlmRequest

SYSTEM = f"""You are the market analyst of an automated crypto trading agent. For one signal \
raised by the trader's screening filter, decide with the trader's strategy in mind:
- enter_trade: the setup is valid now; it will be traded at your levels.
- good_setup: promising but not yet; it is re-checked at the next candle close.
- bad_setup: reject it.
Answer with one JSON object of the given schema, and nothing else.
- direction: long, or short only on derivatives markets (symbols with ':').
- confidence: your probability, from 0 to 1, that price reaches the first take profit before \
the stop loss. It is compared with what happens, so calibrate it.
- key_levels, for every decision (a rejected one too: they measure your accuracy): a long \
needs stop_loss < entry < take_profits in ascending order, a short the mirror; at most \
{MAX_TAKE_PROFITS} take profits and {MAX_LEVELS} supports and resistances; entry within \
{MAX_ENTRY_DISTANCE_PERCENT}% of the current price; the stop and the reward must respect the \
trader's rules given with the signal.
- reasoning: the few facts that decided, with their numbers."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


class KeyLevelsAnswer(_Strict):
    entry: float
    stop_loss: float
    take_profits: list[float] = Field(min_length=1, max_length=MAX_TAKE_PROFITS)
    supports: list[float] = Field(max_length=MAX_LEVELS)
    resistances: list[float] = Field(max_length=MAX_LEVELS)


class TradePlanAnswer(_Strict):
    setup: str
    invalidation: str


class AnalysisAnswer(_Strict):
    decision: Literal["enter_trade", "good_setup", "bad_setup"]
    direction: Literal["long", "short"]
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(min_length=1, max_length=4000)
    trade_plan: TradePlanAnswer
    key_levels: KeyLevelsAnswer


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _number(value: float) -> str:
    return format(float(value), ".8g")


def _table(candles: CandleArrays) -> str:
    rows = zip(
        candles.time.tolist(),
        candles.open.tolist(),
        candles.high.tolist(),
        candles.low.tolist(),
        candles.close.tolist(),
        candles.volume.tolist(),
        strict=True,
    )
    return "\n".join(
        ",".join([_time(int(t)), *(_number(v) for v in values)]) for t, *values in rows
    )


def _plain(value: Any) -> Any:
    """JSON of the context: Decimals as strings, floats that are not finite as null."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _earlier(decision: Decision) -> dict[str, Any]:
    levels = decision.levels
    return {
        "at": _time(decision.as_of),
        "decision": decision.action.value,
        "confidence": decision.confidence,
        "reasoning": decision.reasoning,
        "entry": levels.entry,
        "stop_loss": levels.stop_loss,
        "take_profits": list(levels.take_profits),
    }


def context_document(context: AnalysisContext) -> dict[str, Any]:
    signal, trader = context.signal, context.trader
    ticker = context.ticker
    return _plain(
        {
            "signal": {
                "symbol": signal.symbol,
                "interval": signal.interval,
                "side": signal.side.value,
                "price": signal.price,
                "candle": _time(signal.candle_time),
                "score": signal.score,
                "indicators": dict(signal.indicators),
            },
            "market": {
                "price": context.price,
                "as_of": _time(context.as_of),
                "ticker": None
                if ticker is None
                else {
                    "last": ticker.last,
                    "change_24h_percent": ticker.change_pct,
                    "quote_volume_24h": ticker.quote_volume,
                },
            },
            "trader": {
                "name": trader.name,
                "risk": {name: getattr(trader.risk, name) for name in RISK_FIELDS},
                "filter": list(trader.filter_description),
            },
            "open_positions": [
                {
                    "symbol": p.symbol,
                    "side": p.side.value,
                    "entry_price": p.entry_price,
                    "amount": p.amount,
                }
                for p in context.positions
            ],
            "earlier_decisions": [_earlier(d) for d in context.earlier],
        }
    )


def analysis_prompt(context: AnalysisContext) -> str:
    trader = context.trader
    risk = trader.risk
    parts = [
        f"Analyze the {context.signal.side.value} signal on {context.signal.symbol} "
        f"({context.signal.interval}) of the trader {trader.name!r}.",
        "Strategy of the trader: " + (trader.strategy_instructions.strip() or "(none given)"),
        f"Rules of this trader: the stop at most {max_stop_percent(risk)}% from the entry; "
        f"a reward to the first take profit of at least {min_risk_reward(risk)} times the risk.",
    ]
    if context.recheck:
        parts.append(
            f"This is re-check {len(context.earlier)} of a watched signal, at a later candle: "
            "enter_trade if the setup has now triggered, good_setup to keep watching, "
            "bad_setup if it is invalidated."
        )
    parts.append("Context:\n```json\n" + json.dumps(context_document(context), indent=1) + "\n```")
    for interval, candles in context.candles.items():
        parts.append(
            f"Candles {interval}, oldest first (time,open,high,low,close,volume):\n```csv\n"
            + _table(candles)
            + "\n```"
        )
    return "\n\n".join(parts)


def analysis_request(context: AnalysisContext, model: str) -> LlmRequest:
    return LlmRequest(
        purpose=Purpose.ANALYSIS,
        owner_id=context.signal.owner_id,
        model=model,
        system=SYSTEM,
        prompt=analysis_prompt(context),
        schema=AnalysisAnswer,
        schema_version=SCHEMA_VERSION,
        trader_id=context.trader.id,
        signal_id=context.signal.id,
    )


def decision_of(
    answer: AnalysisAnswer,
    context: AnalysisContext,
    answered: LlmAnswer[AnalysisAnswer],
) -> Decision:
    direction = Side(answer.direction)
    levels = KeyLevels(
        entry=price_of(answer.key_levels.entry),
        stop_loss=price_of(answer.key_levels.stop_loss),
        take_profits=tuple(price_of(v) for v in answer.key_levels.take_profits),
        supports=tuple(price_of(v) for v in answer.key_levels.supports),
        resistances=tuple(price_of(v) for v in answer.key_levels.resistances),
    )
    return Decision(
        id=uuid.uuid4(),
        signal_id=context.signal.id,
        trader_id=context.trader.id,
        action=DecisionAction(answer.decision),
        direction=direction,
        confidence=answer.confidence,
        reasoning=answer.reasoning,
        created_at=context.now,
        trade_plan=TradePlan(answer.trade_plan.setup, answer.trade_plan.invalidation),
        levels=levels,
        risk_reward=risk_reward(direction, levels),
        engine=AnalysisEngineKind.CACHED if answered.cached else AnalysisEngineKind.GEMINI,
        model=answered.model,
        prompt_hash=answered.prompt_hash,
        input_tokens=answered.input_tokens,
        output_tokens=answered.output_tokens,
        latency_ms=answered.latency_ms,
        as_of=context.as_of,
    )


def unusable(context: AnalysisContext, model: str, error: LlmError, reason: str) -> Decision:
    """The record of a model that gave no usable answer, with what its requests cost."""
    return replace(
        rejection(
            context,
            AnalysisEngineKind.GEMINI,
            "The model gave no usable answer; nothing is traded.",
            reason,
        ),
        model=model,
        prompt_hash=error.prompt_hash or None,
        input_tokens=error.input_tokens,
        output_tokens=error.output_tokens,
        latency_ms=error.latency_ms,
    )
