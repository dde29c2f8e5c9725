"""What the analysis of a signal decides: enter, watch or reject, with the levels to trade.

Every analysis engine (Gemini, the offline rule engine, a recorded answer) answers in this
one shape, so the stages after it (the signal monitor, the risk manager, the executor) never
know which engine answered. Prices are Decimals; confidence is a probability in [0, 1]: the
engine's estimate that the setup reaches its first take profit before its stop, whatever it
decided (a rejected setup has a low one), so that the confidence of every decision can be
checked against what the market did afterwards (`app.domain.decision_quality`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from app.domain.enums import Side

SCHEMA_VERSION = 1


class DecisionAction(StrEnum):
    ENTER_TRADE = "enter_trade"
    GOOD_SETUP = "good_setup"
    BAD_SETUP = "bad_setup"


class AnalysisEngineKind(StrEnum):
    """Which engine answered: the model, the offline rules, a recorded model answer, or
    none (`filter`: the trader's filter alone decides, every signal is entered)."""

    GEMINI = "gemini"
    RULES = "rules"
    CACHED = "cached"
    FILTER = "filter"


@dataclass(frozen=True, slots=True)
class KeyLevels:
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profits: tuple[Decimal, ...] = ()
    supports: tuple[Decimal, ...] = ()
    resistances: tuple[Decimal, ...] = ()

    @property
    def first_target(self) -> Decimal | None:
        return self.take_profits[0] if self.take_profits else None


@dataclass(frozen=True, slots=True)
class TradePlan:
    setup: str = ""
    invalidation: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """One analysis of one signal, as recorded: the verdict and who gave it, at what cost.

    `created_at` is the engine clock's time (epoch ms) of the decision; `as_of` the close time
    of the newest candle of the signal's interval it saw, from which its outcome is judged.
    `fallback_reason` says why the configured engine did not answer (the rules stood in for
    a spent token budget); `invalid_reason` why an answer was not usable, which makes the
    decision a `bad_setup`; `repairs` how many repair requests it took.
    """

    id: uuid.UUID
    signal_id: uuid.UUID
    trader_id: uuid.UUID
    action: DecisionAction
    direction: Side
    confidence: float
    reasoning: str
    created_at: int
    trade_plan: TradePlan = field(default_factory=TradePlan)
    levels: KeyLevels = field(default_factory=KeyLevels)
    risk_reward: Decimal | None = None
    engine: AnalysisEngineKind = AnalysisEngineKind.RULES
    model: str | None = None
    schema_version: int = SCHEMA_VERSION
    prompt_hash: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    fallback_reason: str | None = None
    invalid_reason: str | None = None
    repairs: int = 0
    as_of: int = 0
