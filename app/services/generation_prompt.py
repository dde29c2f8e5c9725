"""What the model is told to generate a trader from a sentence, and the answer's schema.

The filter language section is `app.domain.filter_language.filter_language_reference()`,
written from the registries the validator and the sandbox use, and the ranges of the risk
settings are the trader rules' own table, so the prompt cannot promise what the checks
refuse. One template, rendered, shows a complete answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.filter_language import filter_language_reference
from app.domain.filter_validation import MAX_CODE_LENGTH
from app.domain.intervals import INTERVALS
from app.domain.trader_rules import MAX_NAME_LENGTH, RISK_RANGES
from app.domain.trader_templates import TEMPLATES

SCHEMA_VERSION = 1
MAX_INDICATORS = 10
MAX_SYMBOLS = 50


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


class ParamAnswer(_Strict):
    name: str
    value: float


class IndicatorAnswer(_Strict):
    name: str
    params: list[ParamAnswer]


class RiskAnswer(_Strict):
    stop_loss: float
    take_profit: float
    max_positions: int
    position_size_percent: float
    max_drawdown: float
    min_risk_reward: float


class GeneratedAnswer(_Strict):
    suggested_name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str
    filter_code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH)
    filter_description: list[str]
    strategy_instructions: str
    indicators: list[IndicatorAnswer] = Field(max_length=MAX_INDICATORS)
    risk: RiskAnswer
    interval: Literal[INTERVALS]  # type: ignore[valid-type]
    symbols: list[str] = Field(max_length=MAX_SYMBOLS)


def _ranges() -> str:
    lines = [f"- {name}: in {allowed}" for name, allowed in RISK_RANGES.items()]
    lines.append("- max_positions: a whole number, at least 1")
    return "\n".join(lines)


def _example() -> str:
    draft = TEMPLATES["rsi_mean_reversion"].render()
    return (
        f"suggested_name: {draft.name}\ninterval: {draft.interval}\n"
        f"filter_code:\n{draft.filter_code}\n"
        f"filter_description: {list(draft.filter_description)}\n"
        f"indicators: {[i.as_json() for i in draft.indicators]}"
    )


def generation_system() -> str:
    return f"""You design automated crypto trading agents ("traders") from one sentence.
Answer with one JSON object of the given schema, and nothing else:
- suggested_name: short and specific; description: the user's idea in one or two sentences.
- filter_code: the screening filter, in the filter language below. It runs at every candle \
close of the interval on every symbol and must return whether the symbol is a candidate.
- filter_description: one line per condition of the filter, in plain words.
- strategy_instructions: what the analyst should check before entering, when a setup is \
invalid, how to exit; it is given to the analyst of every signal.
- indicators: the indicators to chart beside the candles (names and parameters of the \
indicator helpers below).
- risk, in percent except max_positions and min_risk_reward (the least reward per unit of \
risk to the first target); values outside these ranges are refused:
{_ranges()}
- interval: one of {", ".join(INTERVALS)}; symbols: BASE/QUOTE pairs such as BTC/USDT that \
suit the strategy, or [] for the whole market.

The filter language:
{filter_language_reference()}

An example of the main fields:
{_example()}"""


def generation_prompt(description: str) -> str:
    return f"Create a trader for this description:\n{description.strip()}"
