"""The offline analyst: a deterministic score of trend, momentum and volatility, and levels.

It answers when there is no model (no key, a spent budget, a backtest without recorded
answers) in the same shape as the model, so everything after the analysis works the same.
It is a fixed, documented rule set, not a hidden one:

- trend: close against EMA(50), EMA(20) against EMA(50), the slope of EMA(50), ADX(14) above
  25 for a trending market;
- momentum: RSI(14) (oversold is a chance for a long, overbought a danger; mirrored for a
  short), the MACD histogram's sign and turn;
- volatility: ATR(14) in percent of price; a stop of 1.5 ATR that does not fit the trader's
  stop loss is a penalty, a market that does not move is one too.

The score becomes a confidence through a logistic curve (0.05 to 0.95); 0.65 and above
enters, 0.5 and above watches, below rejects. Levels: entry at the last close, the stop at
1.5 ATR (never further than the trader's stop loss allows), take profits at R-multiples of
that risk (the trader's minimum risk/reward, then one and two R more), the 20-candle low and
high as support and resistance. The levels are computed in Decimal at eight significant
digits, so their risk/reward is exactly the multiple and always passes `decision_rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np

from app.domain.decision import DecisionAction, KeyLevels, TradePlan
from app.domain.decision_rules import can_short, max_stop_percent, min_risk_reward
from app.domain.enums import Side
from app.domain.indicators import INDICATORS, CandleArrays
from app.domain.signal import price_of
from app.domain.trader_spec import RiskSettings

MIN_CANDLES = 60
ENTER_AT = 0.65
WATCH_AT = 0.5
ATR_STOP = Decimal("1.5")
SIGNIFICANT_DIGITS = 8
EXTRA_TARGETS = (Decimal(0), Decimal(1), Decimal(2))
SWING = 20


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    action: DecisionAction
    direction: Side
    confidence: float
    reasoning: str
    levels: KeyLevels
    trade_plan: TradePlan
    judged: bool = True  # False: too little history to judge at all (a rejection all the same)


def _last(name: str, candles: CandleArrays, output: str = "value", **params: object) -> float:
    return float(INDICATORS[name](candles, **params)[output][-1])


def _levels(
    direction: Side, candles: CandleArrays, atr: float, risk: RiskSettings
) -> tuple[KeyLevels, Decimal]:
    entry = price_of(float(candles.close[-1]))
    quantum = Decimal(10) ** (entry.adjusted() - SIGNIFICANT_DIGITS)
    widest = entry * max_stop_percent(risk) / 100
    distance = min(price_of(atr) * ATR_STOP, widest).quantize(quantum, rounding=ROUND_DOWN)
    distance = max(distance, quantum)
    sign = 1 if direction == Side.LONG else -1
    multiple = max(min_risk_reward(risk), Decimal("1.5"))
    targets = tuple(entry + sign * distance * (multiple + extra) for extra in EXTRA_TARGETS)
    low = price_of(float(np.min(candles.low[-SWING:])))
    high = price_of(float(np.max(candles.high[-SWING:])))
    levels = KeyLevels(
        entry=entry,
        stop_loss=entry - sign * distance,
        take_profits=targets,
        supports=(low,) if low > 0 else (),
        resistances=(high,) if high > 0 else (),
    )
    return levels, multiple


@dataclass(frozen=True, slots=True)
class Readings:
    """What the rules read off a candle window, whatever the trade: the same for every
    trader judging one symbol at one close, so an engine may compute it once for all."""

    close: float
    ema_fast: float
    ema_slow: float
    slope: float
    adx: float
    rsi: float
    hist: tuple[float, float]  # the MACD histogram's last two values
    atr: float


def read_setup(candles: CandleArrays) -> Readings | None:
    """The indicators of `candles` (oldest first); None with fewer than `MIN_CANDLES`."""
    if len(candles.close) < MIN_CANDLES:
        return None
    slow_line = INDICATORS["ema"](candles, period=50)["value"]
    ema_slow = float(slow_line[-1])
    hist = INDICATORS["macd"](candles)["hist"]
    return Readings(
        close=float(candles.close[-1]),
        ema_fast=_last("ema", candles, period=20),
        ema_slow=ema_slow,
        slope=ema_slow - float(slow_line[-6]),
        adx=_last("adx", candles),
        rsi=_last("rsi", candles),
        hist=(float(hist[-2]), float(hist[-1])),
        atr=_last("atr", candles),
    )


def judge_setup(
    direction: Side,
    candles: CandleArrays,
    risk: RiskSettings,
    symbol: str,
    readings: Readings | None = None,
) -> RuleVerdict:
    """The rule engine's verdict on a `direction` trade on `candles` (oldest first);
    `readings`: `read_setup(candles)`, when the caller has it already."""
    if readings is None:
        readings = read_setup(candles)
    if readings is None:
        return RuleVerdict(
            DecisionAction.BAD_SETUP,
            direction,
            0.0,
            f"only {len(candles.close)} candles; at least {MIN_CANDLES} are needed to judge",
            KeyLevels(),
            TradePlan(),
            judged=False,
        )
    sign = 1.0 if direction == Side.LONG else -1.0
    close, ema_fast, ema_slow = readings.close, readings.ema_fast, readings.ema_slow
    slope, adx, rsi, hist, atr = (
        readings.slope,
        readings.adx,
        readings.rsi,
        readings.hist,
        readings.atr,
    )
    atr_percent = atr / close * 100
    notes: list[str] = []
    score = 0.0

    def factor(points: float, note: str) -> None:
        nonlocal score
        score += points
        notes.append(f"{note} ({points:+g})")

    def side_of(a: float, b: float) -> str:
        return "above" if a > b else "below"

    factor(
        1 if sign * (close - ema_slow) > 0 else -1,
        f"close {close:.6g} {side_of(close, ema_slow)} EMA50 {ema_slow:.6g}",
    )
    factor(
        1 if sign * (ema_fast - ema_slow) > 0 else -1,
        f"EMA20 {side_of(ema_fast, ema_slow)} EMA50",
    )
    with_trade = sign * slope > 0
    factor(0.5 if with_trade else -0.5, f"EMA50 sloping {'with' if with_trade else 'against'} it")
    if adx > 25:
        factor(0.5, f"ADX {adx:.1f}: trending")
    momentum = rsi if direction == Side.LONG else 100 - rsi
    if momentum < 30:
        factor(1, f"RSI {rsi:.1f}: stretched, room to revert")
    elif 40 <= momentum <= 65:
        factor(0.5, f"RSI {rsi:.1f}: healthy momentum")
    elif momentum > 75:
        factor(-1.5, f"RSI {rsi:.1f}: exhausted")
    if math.isfinite(hist[-1]) and math.isfinite(hist[-2]):
        factor(0.5 if sign * hist[-1] > 0 else -0.5, f"MACD histogram {hist[-1]:.4g}")
        factor(0.5 if sign * (hist[-1] - hist[-2]) > 0 else -0.5, "MACD histogram turning")
    stop_fits = float(ATR_STOP) * atr_percent <= float(max_stop_percent(risk))
    if not stop_fits:
        factor(-1, f"ATR {atr_percent:.2f}%: a 1.5 ATR stop exceeds the trader's stop loss")
    elif atr_percent < 0.05:
        factor(-0.5, f"ATR {atr_percent:.3f}%: the market barely moves")
    confidence = round(min(0.95, max(0.05, 1 / (1 + math.exp(-(score - 1) / 1.5)))), 2)
    levels, multiple = _levels(direction, candles, atr, risk)
    if direction == Side.SHORT and not can_short(symbol):
        action = DecisionAction.BAD_SETUP
        notes.append(f"{symbol} is a spot market: it cannot be sold short")
    elif confidence >= ENTER_AT:
        action = DecisionAction.ENTER_TRADE
    elif confidence >= WATCH_AT:
        action = DecisionAction.GOOD_SETUP
    else:
        action = DecisionAction.BAD_SETUP
    reasoning = f"score {score:+g} -> confidence {confidence:.2f}: " + "; ".join(notes)
    plan = TradePlan(
        setup=f"{direction} at {levels.entry}, stop {levels.stop_loss} (1.5 ATR or the "
        f"trader's stop loss), targets at "
        + ", ".join(f"{round(multiple + n, 2):g}" for n in range(2))
        + f" and {round(multiple + 2, 2):g} R",
        invalidation=f"a trade through {levels.stop_loss}",
    )
    return RuleVerdict(action, direction, confidence, reasoning, levels, plan)
