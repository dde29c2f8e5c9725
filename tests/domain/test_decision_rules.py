"""Decision validation: levels on the right side, a bounded stop, enough reward, in range."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from app.domain.decision import Decision, DecisionAction, KeyLevels
from app.domain.decision_rules import decision_problems, levels_ordered, risk_reward
from app.domain.enums import Side
from app.domain.trader_spec import RiskSettings

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def decision(
    levels: KeyLevels,
    direction: Side = Side.LONG,
    action: DecisionAction = DecisionAction.ENTER_TRADE,
    confidence: float = 0.7,
) -> Decision:
    return Decision(
        id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        trader_id=uuid.uuid4(),
        action=action,
        direction=direction,
        confidence=confidence,
        reasoning="r",
        created_at=0,
        levels=levels,
    )


def long_levels(entry: Decimal, risk: Decimal, multiples: tuple[Decimal, ...]) -> KeyLevels:
    return KeyLevels(entry, entry - risk, tuple(entry + risk * m for m in multiples))


def mirrored(levels: KeyLevels) -> KeyLevels:
    """The short of a long: every level reflected around the entry."""
    assert levels.entry is not None and levels.stop_loss is not None
    entry = levels.entry
    return KeyLevels(
        entry, 2 * entry - levels.stop_loss, tuple(2 * entry - tp for tp in levels.take_profits)
    )


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100000), places=4)
stop_fractions = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.099"), places=3)
first_multiples = st.decimals(min_value=Decimal("1.5"), max_value=Decimal(10), places=2)


@given(prices, stop_fractions, first_multiples)
def test_well_formed_levels_pass_for_long_and_mirrored_short(
    entry: Decimal, fraction: Decimal, first: Decimal
) -> None:
    levels = long_levels(entry, entry * fraction, (first, first + 1, first + 2))
    assert decision_problems(decision(levels), RiskSettings(), entry, SPOT) == []
    assert risk_reward(Side.LONG, levels) == first.quantize(Decimal("0.0001"))
    assume((first + 2) * fraction < 1)  # a short's targets stay above zero
    short = decision(mirrored(levels), Side.SHORT)
    assert decision_problems(short, RiskSettings(), entry, PERP) == []
    assert risk_reward(Side.SHORT, short.levels) == risk_reward(Side.LONG, levels)


@given(prices, stop_fractions, first_multiples)
def test_a_stop_on_the_wrong_side_is_refused(
    entry: Decimal, fraction: Decimal, first: Decimal
) -> None:
    levels = long_levels(entry, entry * fraction, (first,))
    wrong = replace(levels, stop_loss=entry + entry * fraction)
    problems = decision_problems(decision(wrong), RiskSettings(), entry, SPOT)
    assert any("stop < entry < TP1" in p for p in problems)
    assert not levels_ordered(Side.LONG, wrong)
    assert decision_problems(decision(levels, Side.SHORT), RiskSettings(), entry, PERP)


@given(prices, first_multiples)
def test_take_profits_out_of_order_are_refused(entry: Decimal, first: Decimal) -> None:
    risk = entry / 50
    levels = long_levels(entry, risk, (first + 1, first))
    assert decision_problems(decision(levels), RiskSettings(), entry, SPOT)


@given(prices, st.decimals(min_value=Decimal("0.5"), max_value=Decimal("9.9"), places=1))
def test_the_stop_may_be_no_further_than_the_traders_stop_loss(
    entry: Decimal, stop_loss: Decimal
) -> None:
    risk = RiskSettings(stop_loss=stop_loss)
    inside = long_levels(entry, entry * stop_loss / 100 * Decimal("0.9"), (Decimal(2),))
    outside = long_levels(entry, entry * stop_loss / 100 * Decimal("1.1"), (Decimal(2),))
    assert decision_problems(decision(inside), risk, entry, SPOT) == []
    problems = decision_problems(decision(outside), risk, entry, SPOT)
    assert any(f"at most {stop_loss}%" in p for p in problems)


def test_without_a_stop_loss_the_stop_may_lie_10_percent_away() -> None:
    entry = Decimal(100)
    assert not decision_problems(
        decision(long_levels(entry, Decimal("9.9"), (Decimal(2),))), RiskSettings(), entry, SPOT
    )
    problems = decision_problems(
        decision(long_levels(entry, Decimal("10.5"), (Decimal(2),))), RiskSettings(), entry, SPOT
    )
    assert any("at most 10%" in p for p in problems)


@given(st.decimals(min_value=Decimal("0.1"), max_value=Decimal("1.49"), places=2))
def test_a_reward_below_the_minimum_is_refused(first: Decimal) -> None:
    entry = Decimal(100)
    levels = long_levels(entry, Decimal(2), (first,))
    problems = decision_problems(decision(levels), RiskSettings(), entry, SPOT)
    assert any("at least 1.5 is needed" in p for p in problems)
    assert (
        decision_problems(
            decision(levels), RiskSettings(min_risk_reward=Decimal("0.1")), entry, SPOT
        )
        == []
    )


def test_the_traders_own_minimum_risk_reward_applies() -> None:
    entry = Decimal(100)
    levels = long_levels(entry, Decimal(2), (Decimal(2), Decimal(3)))
    strict = RiskSettings(min_risk_reward=Decimal("2.5"))
    assert any(
        "at least 2.5" in p for p in decision_problems(decision(levels), strict, entry, SPOT)
    )


@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda c: not 0 <= c <= 1))
def test_a_confidence_out_of_range_is_refused_for_every_action(confidence: float) -> None:
    for action in DecisionAction:
        problems = decision_problems(
            decision(KeyLevels(), action=action, confidence=confidence),
            RiskSettings(),
            Decimal(1),
            SPOT,
        )
        assert any("confidence" in p for p in problems)


def test_a_rejection_needs_no_levels_and_a_trade_does() -> None:
    bad = decision(KeyLevels(), action=DecisionAction.BAD_SETUP)
    assert decision_problems(bad, RiskSettings(), Decimal(1), SPOT) == []
    for action in (DecisionAction.ENTER_TRADE, DecisionAction.GOOD_SETUP):
        problems = decision_problems(
            decision(KeyLevels(), action=action), RiskSettings(), Decimal(1), SPOT
        )
        assert problems == ["an entry is required to trade"]


def test_a_short_needs_a_market_that_can_be_sold_short() -> None:
    entry = Decimal(100)
    short = decision(mirrored(long_levels(entry, Decimal(2), (Decimal(2),))), Side.SHORT)
    assert decision_problems(short, RiskSettings(), entry, PERP) == []
    assert decision_problems(short, RiskSettings(), entry, SPOT) == [
        "BTC/USDT is a spot market: it cannot be sold short"
    ]


def test_an_entry_far_from_the_price_is_refused() -> None:
    levels = long_levels(Decimal(120), Decimal(2), (Decimal(2),))
    problems = decision_problems(decision(levels), RiskSettings(), Decimal(100), SPOT)
    assert any("from the current price 100" in p for p in problems)


def test_more_than_three_take_profits_are_refused() -> None:
    levels = long_levels(Decimal(100), Decimal(2), tuple(Decimal(m) for m in (2, 3, 4, 5)))
    problems = decision_problems(decision(levels), RiskSettings(), Decimal(100), SPOT)
    assert "at most 3 take profits, got 4" in problems
