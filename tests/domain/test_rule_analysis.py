"""The rule engine: deterministic, its levels always valid, its verdicts follow the market."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.decision import Decision, DecisionAction
from app.domain.decision_rules import decision_problems, levels_ordered
from app.domain.enums import Side
from app.domain.rule_analysis import MIN_CANDLES, judge_setup
from app.domain.trader_spec import RiskSettings

HOUR = 3_600_000


@dataclass(frozen=True)
class Series:
    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def series(closes: np.ndarray, spread: float = 0.004) -> Series:
    closes = np.asarray(closes, dtype=np.float64)
    opens = np.concatenate(([closes[0]], closes[:-1]))
    return Series(
        np.arange(len(closes), dtype=np.float64) * HOUR,
        opens,
        np.maximum(opens, closes) * (1 + spread),
        np.minimum(opens, closes) * (1 - spread),
        closes,
        np.full(len(closes), 1000.0),
    )


def walk(seed: int, drift: float, n: int = 150, start: float = 100.0) -> Series:
    steps = np.random.default_rng(seed).normal(drift, 0.01, n)
    return series(start * np.exp(np.cumsum(steps)))


def as_decision(direction: Side, candles: Series, risk: RiskSettings, symbol: str) -> Decision:
    verdict = judge_setup(direction, candles, risk, symbol)
    return Decision(
        id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        trader_id=uuid.uuid4(),
        action=verdict.action,
        direction=verdict.direction,
        confidence=verdict.confidence,
        reasoning=verdict.reasoning,
        created_at=0,
        levels=verdict.levels,
    )


stop_losses = st.one_of(
    st.none(), st.decimals(min_value=Decimal("0.5"), max_value=Decimal(20), places=1)
)
minimums = st.one_of(st.none(), st.decimals(min_value=Decimal(1), max_value=Decimal(5), places=1))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.floats(min_value=-0.01, max_value=0.01),
    st.floats(min_value=0.0001, max_value=50_000),
    st.sampled_from([Side.LONG, Side.SHORT]),
    stop_losses,
    minimums,
)
def test_every_verdict_has_valid_levels_and_passes_the_rules(
    seed: int,
    drift: float,
    start: float,
    side: Side,
    stop_loss: Decimal | None,
    minimum: Decimal | None,
) -> None:
    candles = walk(seed, drift, start=start)
    risk = RiskSettings(stop_loss=stop_loss, min_risk_reward=minimum)
    decision = as_decision(side, candles, risk, "BTC/USDT:USDT")
    assert 0 <= decision.confidence <= 1
    assert levels_ordered(side, decision.levels)
    price = decision.levels.entry
    assert price is not None
    assert decision_problems(decision, risk, price, "BTC/USDT:USDT") == []


def test_it_is_deterministic() -> None:
    candles = walk(3, 0.002)
    first = judge_setup(Side.LONG, candles, RiskSettings(), "BTC/USDT")
    assert judge_setup(Side.LONG, candles, RiskSettings(), "BTC/USDT") == first


def test_an_uptrend_with_healthy_pullbacks_is_entered_long_and_rejected_short() -> None:
    rising = series(100 * np.exp(np.cumsum(np.tile([0.01, 0.008, -0.012], 50))))
    assert judge_setup(Side.LONG, rising, RiskSettings(), "X/USDT").action == (
        DecisionAction.ENTER_TRADE
    )
    assert (
        judge_setup(Side.SHORT, rising, RiskSettings(), "X/USDT:USDT").action
        == DecisionAction.BAD_SETUP
    )


def test_a_downtrend_is_no_long() -> None:
    falling = series(100 * np.exp(np.linspace(0, -0.3, 150)))
    verdict = judge_setup(Side.LONG, falling, RiskSettings(), "X/USDT")
    assert verdict.action == DecisionAction.BAD_SETUP
    assert "EMA50 sloping against it" in verdict.reasoning


def test_a_short_on_spot_is_rejected_with_the_reason() -> None:
    falling = series(100 * np.exp(np.linspace(0, -0.3, 150)))
    verdict = judge_setup(Side.SHORT, falling, RiskSettings(), "X/USDT")
    assert verdict.action == DecisionAction.BAD_SETUP
    assert "cannot be sold short" in verdict.reasoning
    assert levels_ordered(Side.SHORT, verdict.levels)


def test_too_few_candles_is_a_rejection_without_levels() -> None:
    verdict = judge_setup(Side.LONG, walk(1, 0, n=MIN_CANDLES - 1), RiskSettings(), "X/USDT")
    assert verdict.action == DecisionAction.BAD_SETUP
    assert verdict.levels.entry is None


def test_targets_are_r_multiples_of_the_traders_minimum() -> None:
    verdict = judge_setup(
        Side.LONG, walk(5, 0.001), RiskSettings(min_risk_reward=Decimal(2)), "X/USDT"
    )
    levels = verdict.levels
    assert levels.entry is not None and levels.stop_loss is not None
    risk = levels.entry - levels.stop_loss
    assert [(tp - levels.entry) / risk for tp in levels.take_profits] == [2, 3, 4]
