"""The domain's enums as GraphQL enums, registered with strawberry in one place.

Strawberry marks an enum class as a GraphQL enum and hands back the same class, so the API
annotates its fields with the domain enums themselves: one vocabulary, no second set of
classes to keep in step, and annotations a type checker reads as the types they are.
"""

from __future__ import annotations

import strawberry

from app.domain.decision import AnalysisEngineKind, DecisionAction
from app.domain.decision_quality import Outcome
from app.domain.enums import (
    BacktestAnalysis,
    BacktestStatus,
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
    SignalStatus,
    TraderStatus,
    TradeStatus,
    TradingMode,
)

strawberry.enum(TradingMode, description="demo is paper money, live is real")
for plain in (
    TraderStatus,
    Side,
    SignalStatus,
    TradeStatus,
    ExitReason,
    OrderStatus,
    OrderType,
    OrderSide,
    OrderPurpose,
    Liquidity,
    BacktestStatus,
):
    strawberry.enum(plain)
strawberry.enum(
    DecisionAction, description="enter_trade: trade now; good_setup: watch; bad_setup: reject"
)
strawberry.enum(
    AnalysisEngineKind,
    name="AnalysisEngine",
    description="gemini: the model; rules: the offline rule engine; cached: a "
    "recorded model answer, no call made; filter: no analysis, the trader's filter alone "
    "decides (every signal entered with its stop loss and take profit)",
)
strawberry.enum(
    BacktestAnalysis,
    description="rules: the offline rule engine decides on each signal; filter: no analysis, "
    "every signal is entered with the trader's stop loss and take profit",
)
strawberry.enum(
    Outcome,
    name="DecisionOutcome",
    description="target: the first take profit came first; stop: the stop came first; "
    "neither: not within the horizon; unlabelled: no levels to judge",
)

__all__ = [
    "AnalysisEngineKind",
    "BacktestAnalysis",
    "BacktestStatus",
    "DecisionAction",
    "ExitReason",
    "Liquidity",
    "OrderPurpose",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Outcome",
    "Side",
    "SignalStatus",
    "TradeStatus",
    "TraderStatus",
    "TradingMode",
]
