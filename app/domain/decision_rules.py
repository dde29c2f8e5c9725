"""What makes a decision tradable: levels on the right side, a bounded stop, enough reward.

Every engine's answer passes these rules before anything acts on it, because the model's
levels are untrusted input: a long needs stop < entry < TP1 < TP2 < TP3 (a short the
mirror), a stop no further from the entry than the trader's stop loss (10% without one), an
entry within 10% of the current price, and a reward to the first take profit of at least the
trader's minimum risk/reward (1.5 without one). A `bad_setup` trades nothing, so only its
confidence is checked. The rules are pure: the analysis engines use them to ask for one
repair, the rule engine's own levels are tested against them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise

from app.domain.decision import Decision, DecisionAction, KeyLevels
from app.domain.enums import Side
from app.domain.trader_spec import RiskSettings

DEFAULT_MAX_STOP_PERCENT = Decimal(10)
DEFAULT_MIN_RISK_REWARD = Decimal("1.5")
MAX_ENTRY_DISTANCE_PERCENT = Decimal(10)
MAX_TAKE_PROFITS = 3
MAX_LEVELS = 10
RISK_REWARD_QUANTUM = Decimal("0.0001")
HUNDRED = Decimal(100)


def max_stop_percent(risk: RiskSettings) -> Decimal:
    """How far from the entry a stop may lie, in percent of the entry."""
    return risk.stop_loss if risk.stop_loss is not None else DEFAULT_MAX_STOP_PERCENT


def min_risk_reward(risk: RiskSettings) -> Decimal:
    return risk.min_risk_reward if risk.min_risk_reward is not None else DEFAULT_MIN_RISK_REWARD


def can_short(symbol: str) -> bool:
    """Whether the market can be sold short: derivatives (`BTC/USDT:USDT`), not spot."""
    return ":" in symbol


def _ascending(values: Sequence[Decimal]) -> bool:
    return all(a < b for a, b in pairwise(values))


def levels_ordered(direction: Side, levels: KeyLevels) -> bool:
    """stop < entry < TP1 < TP2 < TP3 for a long, the mirror for a short; every level needed
    to judge a trade (entry, stop, a first target) present and positive."""
    if levels.entry is None or levels.stop_loss is None or not levels.take_profits:
        return False
    chain = [levels.stop_loss, levels.entry, *levels.take_profits]
    if any(value <= 0 for value in chain):
        return False
    return _ascending(chain if direction == Side.LONG else chain[::-1])


def risk_reward(direction: Side, levels: KeyLevels) -> Decimal | None:
    """Reward to the first take profit per unit of risk to the stop; None without both."""
    entry, stop, target = levels.entry, levels.stop_loss, levels.first_target
    if entry is None or stop is None or target is None or entry == stop:
        return None
    sign = 1 if direction == Side.LONG else -1
    reward, risk = sign * (target - entry), sign * (entry - stop)
    if risk <= 0:
        return None
    return (reward / risk).quantize(RISK_REWARD_QUANTUM)


def stop_percent(levels: KeyLevels) -> Decimal | None:
    if levels.entry is None or levels.stop_loss is None or levels.entry <= 0:
        return None
    return abs(levels.entry - levels.stop_loss) / levels.entry * HUNDRED


def _level_problems(direction: Side, levels: KeyLevels, price: Decimal) -> list[str]:
    if levels.entry is None:
        return ["an entry is required to trade"]
    if levels.stop_loss is None:
        return ["a stop loss is required to trade"]
    if not levels.take_profits:
        return ["at least one take profit is required to trade"]
    problems = []
    if len(levels.take_profits) > MAX_TAKE_PROFITS:
        problems.append(f"at most {MAX_TAKE_PROFITS} take profits, got {len(levels.take_profits)}")
    if not levels_ordered(direction, levels):
        order = (
            "stop < entry < TP1 < TP2 < TP3"
            if direction == Side.LONG
            else ("stop > entry > TP1 > TP2 > TP3")
        )
        shown = ", ".join(str(tp) for tp in levels.take_profits)
        problems.append(
            f"a {direction} needs {order}; got stop {levels.stop_loss}, entry {levels.entry}, "
            f"take profits {shown}"
        )
    for name, values in (("supports", levels.supports), ("resistances", levels.resistances)):
        if len(values) > MAX_LEVELS:
            problems.append(f"at most {MAX_LEVELS} {name}, got {len(values)}")
        if any(value <= 0 for value in values):
            problems.append(f"{name} must be positive prices")
    return problems or _distance_problems(levels, price)


def _distance_problems(levels: KeyLevels, price: Decimal) -> list[str]:
    assert levels.entry is not None
    if price > 0 and abs(levels.entry - price) / price * HUNDRED > MAX_ENTRY_DISTANCE_PERCENT:
        return [
            f"the entry {levels.entry} is more than {MAX_ENTRY_DISTANCE_PERCENT}% from the "
            f"current price {price}"
        ]
    return []


def decision_problems(
    decision: Decision, risk: RiskSettings, price: Decimal, symbol: str
) -> list[str]:
    """Why `decision` cannot be acted on as it stands; empty when it can.

    `price` is the market price the decision was made at, `symbol` its market (spot markets
    cannot be sold short)."""
    problems = []
    if not (math.isfinite(decision.confidence) and 0 <= decision.confidence <= 1):
        problems.append(f"confidence must be in [0, 1], got {decision.confidence}")
    if decision.action == DecisionAction.BAD_SETUP:
        return problems
    if decision.direction == Side.SHORT and not can_short(symbol):
        problems.append(f"{symbol} is a spot market: it cannot be sold short")
    level_problems = _level_problems(decision.direction, decision.levels, price)
    problems += level_problems
    if level_problems:
        return problems
    limit = max_stop_percent(risk)
    distance = stop_percent(decision.levels)
    if distance is not None and distance > limit:
        problems.append(
            f"the stop is {distance:.2f}% from the entry; the trader allows at most {limit}%"
        )
    reward = risk_reward(decision.direction, decision.levels)
    minimum = min_risk_reward(risk)
    if reward is None or reward < minimum:
        problems.append(
            f"the risk/reward to the first take profit is {reward}; at least {minimum} is needed"
        )
    return problems
