"""The decision of a trader whose filter is its whole strategy: enter every signal.

Some strategies are their filter and their risk settings, nothing more (freqtrade's sample:
enter when RSI(14) is under 30, exit over 70, a 5% stop, a 6% target); an analysis would
only second-guess them, and reject what the strategy takes. This is the verdict for them,
pure: enter at the last close, the stop at the trader's stop loss and the target at its
take profit from there (the levels the trade then places, and that decision quality judges
the entries by; without a stop loss or take profit, or a short's target 100% or more below,
that level is left out). It estimates
nothing, so its confidence is the same 0.5 for every entry: the calibration table shows the
filter's own hit rate in one bucket. A short on a spot market is the one refusal, as with
every engine: a spot market cannot be sold short.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.decision import DecisionAction, KeyLevels, TradePlan
from app.domain.decision_rules import can_short
from app.domain.enums import Side
from app.domain.trader_spec import RiskSettings

CONFIDENCE = 0.5
SIGNIFICANT_DIGITS = 8
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FilterVerdict:
    action: DecisionAction
    levels: KeyLevels
    reasoning: str
    trade_plan: TradePlan


def _at(price: Decimal, percent: Decimal | None, quantum: Decimal) -> Decimal | None:
    """`price` moved by `percent`; None without a percent, or where no price is (a short's
    target 100% or more below)."""
    if percent is None:
        return None
    level = (price * (1 + percent / HUNDRED)).quantize(quantum)
    return level if level > 0 else None


def filter_entry(direction: Side, price: Decimal, risk: RiskSettings, symbol: str) -> FilterVerdict:
    """Enter `direction` at `price` with the trader's stop loss and take profit, or refuse
    a short on a spot market."""
    if direction == Side.SHORT and not can_short(symbol):
        reason = f"{symbol} is a spot market: it cannot be sold short"
        return FilterVerdict(DecisionAction.BAD_SETUP, KeyLevels(), reason, TradePlan())
    sign = 1 if direction == Side.LONG else -1
    quantum = Decimal(10) ** (price.adjusted() - SIGNIFICANT_DIGITS)
    stop = _at(price, None if risk.stop_loss is None else -sign * risk.stop_loss, quantum)
    target = _at(price, None if risk.take_profit is None else sign * risk.take_profit, quantum)
    levels = KeyLevels(
        entry=price,
        stop_loss=stop,
        take_profits=() if target is None else (target,),
    )
    stops = "no stop" if stop is None else f"stop {stop} ({risk.stop_loss}%)"
    targets = "no target" if target is None else f"target {target} ({risk.take_profit}%)"
    reasoning = (
        f"the filter alone decides: every signal is entered ({direction} at {price}, "
        f"{stops}, {targets}, from the trader's risk settings)"
    )
    plan = TradePlan(
        setup=f"{direction} at {price}, {stops}, {targets}",
        invalidation="the trader's stop loss" if stop is not None else "its exit filter",
    )
    return FilterVerdict(DecisionAction.ENTER_TRADE, levels, reasoning, plan)
